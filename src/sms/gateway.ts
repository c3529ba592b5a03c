/**
 * The seam between the outbox and an SMS gateway: one submit of one SMS (a segment), and
 * what comes back from the network (delivery reports, mobile-originated messages). The
 * production gateway is Kannel (kannel.ts); the outbox knows no gateway's protocol.
 */
import type { Segment } from './udh.js';

export interface SubmitRequest {
  /** E.164, normalised (address.ts). */
  readonly to: string;
  /** Sender (number, short code or alphanumeric); the gateway's default when absent. */
  readonly from?: string;
  readonly segment: Segment;
  /** Where the gateway reports delivery of this SMS (already signed), or null for none. */
  readonly dlrUrl: string | null;
}

export interface SubmitResult {
  /** The gateway's own words (e.g. Kannel's "0: Accepted for delivery"): never a secret. */
  readonly reply: string;
}

export interface SmsGateway {
  /** For operator messages: "Kannel at http://127.0.0.1:13013". Never carries a secret. */
  readonly description: string;
  /**
   * Hands one SMS to the gateway. Throws SmsError GATEWAY_TEMPORARY (not taken: retry),
   * GATEWAY_REFUSED (never retry) or GATEWAY_AMBIGUOUS (may have been taken: never resend).
   */
  submit(request: SubmitRequest): Promise<SubmitResult>;
}

/**
 * Delivery report types, as Kannel numbers them (its dlr-mask bits): 1 delivered to the
 * handset, 2 not deliverable, 4 buffered by the SMSC, 8 accepted by the SMSC, 16 rejected by
 * the SMSC.
 */
export const DLR = { DELIVERED: 1, UNDELIVERABLE: 2, BUFFERED: 4, SMSC_ACCEPTED: 8, SMSC_REJECTED: 16 } as const;
export const DLR_ALL = 31;

export interface DeliveryReport {
  readonly messageId: string;
  readonly seq: number;
  readonly type: number;
  /** The SMSC's words, if any (bounded, printable). */
  readonly text: string | null;
  readonly at: number;
}

export interface MobileOriginated {
  readonly from: string;
  readonly to: string;
  readonly coding: 0 | 1 | 2;
  readonly udh: Uint8Array | null;
  readonly data: Uint8Array;
  readonly at: number;
}
