/**
 * Trust (issue 16, "Trust first"): does a device hold Depot's root certificate? The inventory's
 * `trustState` (unknown / yes / no) is the operator-facing answer; this module keeps what Depot
 * did about it per device: the push of the root (which channel, when sent, when the device took
 * it) and its confirmation (the device's first TLS session after it). The repository is
 * declared here and implemented by src/store/sqlite/trust.ts, as the other fleet repositories.
 *
 * States of a push record (one per device, the last push):
 *   sent       the root is on its way (an SMS with a one-time link is queued or sent)
 *   pushed     the device took it (fetched the link; or its bootstrap wrote the trust anchor)
 *   confirmed  the device opened a TLS session with Depot after the push (it trusts the root)
 *   failed     the push did not reach the device (SMS failed, link expired unused)
 * No record: unknown (Depot never pushed; the inventory's trustState may still say yes or no).
 */
import { createHash } from 'node:crypto';
import type { Page, PageRequest, TimeInput } from '../store/types.js';

export const TRUST_PUSH_STATES = ['sent', 'pushed', 'confirmed', 'failed'] as const;
export type TrustPushState = (typeof TRUST_PUSH_STATES)[number];

/** How the root went (or was learned to be there). */
export const TRUST_CHANNELS = ['sms-link', 'lwm2m-bootstrap', 'tls-session'] as const;
export type TrustChannel = (typeof TRUST_CHANNELS)[number];

export interface TrustRecord {
  /** The chain's device endpoint (an LwM2M endpoint, or `omadm:<DevId>`). */
  readonly endpoint: string;
  readonly state: TrustPushState;
  readonly channel: TrustChannel;
  /** What happened last, in words (bounded, printable). */
  readonly detail: string | null;
  /** The SMS outbox id of the push (sms-link). */
  readonly messageId: string | null;
  /** SHA-256 (hex) of the root that was pushed: a new root makes old pushes stale. */
  readonly rootSha256: string;
  /** The one-time link: when it stops working, and how often it was fetched. */
  readonly linkExpiresAt: number | null;
  readonly fetches: number;
  readonly sentAt: number | null;
  readonly pushedAt: number | null;
  readonly confirmedAt: number | null;
  readonly updatedAt: number;
}

export interface NewTrustPush {
  readonly endpoint: string;
  readonly state: TrustPushState;
  readonly channel: TrustChannel;
  readonly detail: string | null;
  readonly messageId?: string | null;
  readonly rootSha256: string;
  /** SHA-256 of the link token (the token itself is never stored). */
  readonly tokenHash?: string | null;
  readonly linkExpiresAt?: number | null;
}

export interface TrustPatch {
  readonly state?: TrustPushState;
  readonly detail?: string;
  readonly messageId?: string;
}

export interface TrustFilter extends PageRequest {
  readonly state?: TrustPushState;
}

export interface TrustRepository {
  get(endpoint: string): Promise<TrustRecord | null>;
  /** Starts a new push for the device (replaces its previous record, and with it the old link). */
  start(push: NewTrustPush, now: TimeInput): Promise<TrustRecord>;
  /** Applies `patch` when the record is in one of `from` (null: nothing written); sets pushedAt/confirmedAt on those states. */
  transition(endpoint: string, from: readonly TrustPushState[], patch: TrustPatch, now: TimeInput): Promise<TrustRecord | null>;
  /**
   * Counts one fetch of the link whose token hashes to `tokenHash`, when it still works (not expired,
   * fewer than `maxFetches` fetches, the record not failed); the record moves to `pushed`. Null: refused.
   */
  fetchLink(tokenHash: string, maxFetches: number, now: TimeInput): Promise<TrustRecord | null>;
  list(filter?: TrustFilter): Promise<Page<TrustRecord>>;
}

/** The hash a link token is stored and looked up by. */
export const tokenHashOf = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Colon-separated upper-case hex, as certificate viewers show fingerprints. */
export function fingerprintOf(der: Uint8Array, algorithm: 'sha256' | 'sha1' = 'sha256'): string {
  return createHash(algorithm).update(der).digest('hex').toUpperCase().replace(/(..)(?=.)/g, '$1:');
}

/** PEM of a DER certificate (what a handset's certificate store keeps). */
export function pemOfDer(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
