/**
 * A simulated OMA DM phone reached by SMS through the lab Kannel (issue 15): its handset
 * (handsets.ts) gets what the fake SMSC delivers to its number, joins concatenated parts and
 * decodes WDP/WSP with src/sms's decoder; this bridge hands every whole WAP Push to the port
 * 2948 (content type, SEC/MAC parameters, application id, body) to the phone's device side
 * (provisioning-client.ts: a Client Provisioning document with its user's PIN entry, or a DM
 * notification that opens a session). Pushes are handled one at a time per phone, in arrival
 * order, like a handset's push agent does.
 *
 * A text with a link to a certificate (Send certificate, docs/trust.md) goes to the handset's
 * browser and certificate installer: bridgeCertificateLinks.
 *
 * Everything the SMSC delivers is untrusted: a push that does not decode, or anything the
 * phone throws while handling one, becomes an `ignored` event with the reason; it never
 * reaches the test as an exception from an event handler.
 */
import { X509Certificate } from 'node:crypto';
import type { DecodedWapPush } from '../../sms/wap-push.js';
import type { HandsetEvent, SimulatedHandset } from '../omadm/provisioning-client.js';
import type { ReceivedPush } from '../omadm/notification-client.js';
import type { HandsetMessage, SimHandset } from './handsets.js';
import { waitUntil } from './kannel-lab.js';

/** The push as the phone's push agent sees it (what a handset's WAP stack hands its applications). */
export function receivedPushOf(push: DecodedWapPush): ReceivedPush {
  const parameters = {
    ...(push.parameters.SEC === undefined ? {} : { SEC: push.parameters.SEC }),
    ...(push.parameters.MAC === undefined ? {} : { MAC: push.parameters.MAC }),
  };
  return {
    contentType: push.contentType,
    ...(push.applicationId === null ? {} : { applicationId: String(push.applicationId) }),
    ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
    body: push.body,
  };
}

export interface DmPhoneBridge {
  readonly handset: SimHandset;
  readonly phone: SimulatedHandset;
  /** What the phone did with each push it got over SMS, in order. */
  readonly events: readonly HandsetEvent[];
  /** Resolves with the first event (already there or coming) that matches, or rejects after `timeoutMs`. */
  waitForEvent(predicate: (event: HandsetEvent) => boolean, timeoutMs?: number): Promise<HandsetEvent>;
  /** Resolves when every push received so far has been handled. */
  idle(): Promise<void>;
  /** Stops listening (pushes arriving later are left on the handset). */
  stop(): void;
}

/**
 * Connects a phone to its handset: pushes already received and every later one are handed to
 * the phone. Messages that are not WAP Pushes (texts, other ports) are left to other listeners.
 */
export function bridgeDmPhone(handset: SimHandset, phone: SimulatedHandset): DmPhoneBridge {
  const events: HandsetEvent[] = [];
  let queue: Promise<void> = Promise.resolve();
  const handle = (message: HandsetMessage): void => {
    if (message.ports?.destination !== 2948) return;
    queue = queue.then(async () => {
      if (message.push === null) {
        events.push({ kind: 'ignored', reason: `the push does not decode: ${message.pushError ?? 'unknown'}` });
        return;
      }
      try {
        events.push(await phone.receive(receivedPushOf(message.push)));
      } catch (error) {
        events.push({ kind: 'ignored', reason: `the phone failed on the push: ${(error as Error).message}` });
      }
    });
  };
  for (const message of handset.messages) handle(message);
  const stop = handset.onMessage(handle);
  return {
    handset,
    phone,
    events,
    async waitForEvent(predicate, timeoutMs = 20_000) {
      let found: HandsetEvent | undefined;
      await waitUntil(`phone ${handset.number}: expected event`, () => (found = events.find(predicate)) !== undefined, timeoutMs, () => JSON.stringify(events.map((e) => ('reason' in e ? `${e.kind}: ${e.reason}` : e.kind))));
      return found!;
    },
    idle: async () => {
      let seen: Promise<void>;
      do {
        seen = queue;
        await seen;
      } while (seen !== queue);
    },
    stop,
  };
}

/** What a handset did with a text carrying a link to a certificate (Send certificate, docs/trust.md). */
export type CertificateEvent =
  | { readonly kind: 'certificate-installed'; readonly fingerprint: string; readonly subject: string }
  | { readonly kind: 'certificate-refused'; readonly reason: string };

export interface CertificateLinkBridge {
  readonly events: readonly CertificateEvent[];
  waitForEvent(predicate: (event: CertificateEvent) => boolean, timeoutMs?: number): Promise<CertificateEvent>;
  stop(): void;
}

/** Largest certificate the handset's installer takes. */
const MAX_CERTIFICATE_BYTES = 16 * 1024;
const LINK = /\bhttps?:\/\/[\x21-\x7e]{1,300}\/c\/[A-Za-z0-9_-]{16,64}\b/;

/**
 * The handset's browser and certificate installer for Send certificate's text: it opens the link
 * in a text (as a user tapping it), and a download served as application/x-x509-ca-cert (DER, or
 * PEM) that parses as a CA certificate goes to the phone's trust store (`trust.push`, e.g. the
 * untrusting profile's PhoneTrust). Anything else (another content type, not a CA, too large, a
 * 404) is refused with the reason: the text and the download are untrusted like every SMS.
 */
export function bridgeCertificateLinks(handset: SimHandset, trust: { push(rootPem: string): void }, onEvent?: (event: CertificateEvent) => void): CertificateLinkBridge {
  const events: CertificateEvent[] = [];
  let queue: Promise<void> = Promise.resolve();
  const install = async (url: string): Promise<CertificateEvent> => {
    const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
    if (response.status !== 200) return { kind: 'certificate-refused', reason: `the link answered ${response.status}` };
    const type = (response.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-x509-ca-cert') return { kind: 'certificate-refused', reason: `the download is ${type || 'untyped'}, not application/x-x509-ca-cert` };
    const body = Buffer.from(await response.arrayBuffer());
    if (body.length === 0 || body.length > MAX_CERTIFICATE_BYTES) return { kind: 'certificate-refused', reason: `the download is ${body.length} bytes` };
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(body);
    } catch (error) {
      return { kind: 'certificate-refused', reason: `not a certificate: ${(error as Error).message}` };
    }
    if (!cert.ca) return { kind: 'certificate-refused', reason: 'not a CA certificate' };
    trust.push(cert.toString());
    return { kind: 'certificate-installed', fingerprint: cert.fingerprint256, subject: cert.subject };
  };
  const handle = (message: HandsetMessage): void => {
    const url = message.text === null ? undefined : LINK.exec(message.text)?.[0];
    if (url === undefined) return;
    queue = queue.then(async () => {
      let event: CertificateEvent;
      try {
        event = await install(url);
      } catch (error) {
        event = { kind: 'certificate-refused', reason: `the download failed: ${(error as Error).message}` };
      }
      events.push(event);
      onEvent?.(event);
    });
  };
  for (const message of handset.messages) handle(message);
  const stop = handset.onMessage(handle);
  return {
    events,
    async waitForEvent(predicate, timeoutMs = 20_000) {
      let found: CertificateEvent | undefined;
      await waitUntil(`phone ${handset.number}: expected certificate event`, () => (found = events.find(predicate)) !== undefined, timeoutMs, () => JSON.stringify(events));
      return found!;
    },
    stop,
  };
}
