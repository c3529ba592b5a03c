/**
 * A simulated handset's reading of a DM notification (OMA-TS-DM_Notification-V1_2), written from
 * the spec on the device's side: decode package #0, find the account whose ServerID it names,
 * check the digest with that account's server credentials, and ignore it (silently, as the spec
 * says) when anything is wrong. Pure: the handset (provisioning-client.ts) opens the session.
 */
import { type DecodedNotification, type DigestVariant, NotificationFormatError, decodeNotification, sessionIdText, verifyNotification } from '../../omadm/notification.js';
import { PushContentType } from '../../omadm/push-port.js';
import type { DmAccountBootstrap } from '../../omadm/provisioning/document.js';

export type NotificationVerdict =
  | { readonly outcome: 'open-session'; readonly sessionId: string; readonly notification: DecodedNotification }
  | { readonly outcome: 'ignored'; readonly reason: string };

export interface ReceivedPush {
  readonly contentType: string;
  readonly applicationId?: string;
  readonly parameters?: { readonly SEC?: string; readonly MAC?: string };
  readonly body: Uint8Array;
}

/** What the phone does with a push that claims to be a notification. */
export function readNotification(push: ReceivedPush, accounts: readonly DmAccountBootstrap[], digest: DigestVariant = 'standard'): NotificationVerdict {
  if (push.contentType !== PushContentType.DmNotification) return { outcome: 'ignored', reason: `content type ${push.contentType} is not a DM notification` };
  let n: DecodedNotification;
  try {
    n = decodeNotification(push.body);
  } catch (error) {
    if (error instanceof NotificationFormatError) return { outcome: 'ignored', reason: error.message };
    throw error;
  }
  const account = accounts.find((a) => a.serverId === n.serverId);
  if (account === undefined) return { outcome: 'ignored', reason: `no DM account for server ${JSON.stringify(n.serverId.slice(0, 40))}` };
  if (!verifyNotification(n, { password: account.server.secret, nonce: account.server.nonce }, digest)) return { outcome: 'ignored', reason: 'the digest is wrong' };
  return { outcome: 'open-session', sessionId: sessionIdText(n.sessionId), notification: n };
}
