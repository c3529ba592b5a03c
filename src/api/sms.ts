/**
 * SMS routes (issue 15).
 *
 * Operator routes (bearer token): the outbox (list, filter by state or number; one message;
 * cancel), a text to send by hand, and the endpoint → phone number mapping.
 *
 * Public routes, each authenticating itself:
 * - GET /sms/kannel/dlr: Kannel's delivery reports; the URL Depot gave with each SMS is signed
 *   (HMAC of message and part under the callback secret), see src/sms/kannel.ts.
 * - GET /sms/kannel/mo: MO messages from smsbox's sms-service, `key` = the callback secret.
 * - GET /d/<token>: the SMS link download (the token is the capability), Range-capable.
 * Failed callback authentications are throttled per source address like the bearer token
 * (auth.ts); refused and malformed callbacks get 401 / 400 with what is wrong, never an echo of a secret.
 */
import { sendFileRange } from './file-range.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailureThrottle, sourceKey } from './auth.js';
import type { RouteSpec } from './server.js';
import { normalizeNumber } from '../sms/address.js';
import { SmsError, type SmsErrorCode } from '../sms/errors.js';
import { DLR_PATH, MO_PATH, parseDeliveryReport, parseMobileOriginated, parseRawQuery } from '../sms/kannel.js';
import { SMS_MESSAGE_STATES, type SmsMessageRecord, type SmsMessageState, type SmsOutbox } from '../sms/outbox.js';
import { SMS_LINK_PATH, type SmsLinkDownloads } from '../fleet/methods/sms-link.js';

export interface SmsApiOptions {
  readonly outbox: SmsOutbox;
  /** Authenticates Kannel's callbacks; never logged or answered. */
  readonly callbackSecret: string;
  readonly numbers?: { get(endpoint: string): Promise<string | null>; put(endpoint: string, number: string, now: number): Promise<void>; remove(endpoint: string): Promise<boolean> };
  readonly downloads?: SmsLinkDownloads;
  /** A device reported an SMS link install (the install chain hears it as the device's contact). */
  readonly onInstalled?: (endpoint: string) => void;
  /** LwM2M SMS wake-up (Registration Update Trigger by SMS). */
  readonly wakeUp?: (endpoint: string, jobStep?: string) => Promise<SmsMessageRecord>;
  readonly now: () => number;
}

const STATUS: Record<SmsErrorCode, number> = {
  BAD_NUMBER: 400,
  BAD_MESSAGE: 400,
  BAD_PDU: 400,
  BAD_CALLBACK: 400,
  UNAUTHENTICATED: 401,
  GATEWAY_TEMPORARY: 503,
  GATEWAY_REFUSED: 502,
  GATEWAY_AMBIGUOUS: 502,
  CONFLICT: 409,
  NOT_FOUND: 404,
  NOT_CONFIGURED: 501,
};

const DLR_NAMES: Record<number, string> = { 1: 'delivered', 2: 'undeliverable', 4: 'buffered', 8: 'accepted-by-smsc', 16: 'rejected-by-smsc' };
const isoOrNull = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export function smsMessageJson(m: SmsMessageRecord) {
  return {
    id: m.id,
    jobStep: m.key,
    to: m.to,
    from: m.from,
    kind: m.kind,
    contentType: m.contentType,
    state: m.state,
    size: m.size,
    parts: m.segments.length,
    attempts: m.attempts,
    nextAttemptAt: m.state === 'queued' ? isoOrNull(m.nextAttemptAt) : null,
    pace: m.paceGroup === null ? null : { group: m.paceGroup, scheduledAt: isoOrNull(m.scheduledAt) },
    lastError: m.lastError,
    expiresAt: new Date(m.expiresAt).toISOString(),
    createdAt: new Date(m.createdAt).toISOString(),
    updatedAt: new Date(m.updatedAt).toISOString(),
    finishedAt: isoOrNull(m.finishedAt),
    segments: m.segments.map((g) => ({
      seq: g.seq,
      state: g.state,
      submittedAt: isoOrNull(g.submittedAt),
      gatewayReply: g.reply,
      deliveryReport: g.dlrType === null ? null : { type: g.dlrType, name: DLR_NAMES[g.dlrType] ?? 'unknown', text: g.dlrText, at: isoOrNull(g.dlrAt) },
    })),
  };
}

export function smsRoutes(options: SmsApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { outbox, now } = options;
  const throttle = new AuthFailureThrottle();

  /** Runs a handler, answering SmsErrors with their status and code. */
  const guarded =
    (handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      try {
        return await handler(request, reply);
      } catch (error) {
        if (!(error instanceof SmsError)) throw error;
        return reply.code(STATUS[error.code]).send({ error: error.code, message: error.message });
      }
    };

  /** A callback: throttled per source, secret checked first, then parsed. */
  const callback = (handle: (query: Map<string, Uint8Array>) => Promise<unknown>) =>
    guarded(async (request, reply) => {
      const source = sourceKey(request.ip);
      const wait = throttle.lockedFor(source, now());
      if (wait > 0) return reply.code(429).header('retry-after', String(Math.ceil(wait / 1000))).send({ error: 'TOO_MANY_FAILED_AUTHENTICATIONS', message: 'too many refused callbacks from this address; retry later' });
      try {
        const query = parseRawQuery(request.raw.url ?? '');
        return await handle(query);
      } catch (error) {
        if (error instanceof SmsError && error.code === 'UNAUTHENTICATED') throttle.recordFailure(source, now());
        throw error;
      }
    });

  const routes: RouteSpec[] = [
    {
      method: 'GET',
      url: '/api/v1/sms/outbox',
      summary: 'The SMS outbox, newest first (filter by state or number), with the gateway status and its last error',
      query: {
        state: { type: 'string', enum: [...SMS_MESSAGE_STATES] },
        to: { type: 'string', maxLength: 40 },
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
        after: { type: 'string', maxLength: 100 },
      },
      handler: guarded(async (request) => {
        const q = request.query as { state?: SmsMessageState; to?: string; limit?: number; after?: string };
        const result = await outbox.list({ ...(q.state ? { state: q.state } : {}), ...(q.to ? { to: normalizeNumber(q.to, 'to') } : {}), ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) });
        const status = outbox.status();
        return {
          gateway: { configured: status.configured, description: status.description, lastError: status.lastError, lastErrorAt: isoOrNull(status.lastErrorAt), pausedUntil: isoOrNull(status.pausedUntil) },
          messages: result.items.map(smsMessageJson),
          next: result.next,
        };
      }),
    },
    {
      method: 'GET',
      url: '/api/v1/sms/outbox/:id',
      summary: 'One SMS (by id or job step) with its parts, gateway answers and delivery reports',
      params: { id: 'Message id or job step' },
      handler: guarded(async (request) => {
        const id = (request.params as { id: string }).id;
        const message = await outbox.get(id);
        if (!message) throw new SmsError('NOT_FOUND', `no SMS ${id}`);
        return smsMessageJson(message);
      }),
    },
    {
      method: 'POST',
      url: '/api/v1/sms/outbox/:id/cancel',
      summary: 'Cancel the parts of an SMS not yet handed to the gateway',
      params: { id: 'Message id' },
      handler: guarded(async (request) => smsMessageJson(await outbox.cancel((request.params as { id: string }).id))),
    },
    {
      method: 'POST',
      url: '/api/v1/sms/texts',
      summary: 'Send a text (concatenated when long); jobStep makes it idempotent (the same jobStep never sends twice)',
      body: {
        type: 'object',
        required: ['to', 'text', 'jobStep'],
        additionalProperties: false,
        properties: { to: { type: 'string', maxLength: 40 }, text: { type: 'string', minLength: 1, maxLength: 2000 }, jobStep: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      handler: guarded(async (request, reply) => {
        const b = request.body as { to: string; text: string; jobStep: string };
        return reply.code(202).send(smsMessageJson(await outbox.sendText({ to: b.to, text: b.text, jobStep: `api:${b.jobStep}` })));
      }),
    },
    {
      method: 'GET',
      url: DLR_PATH,
      summary: 'Kannel delivery report callback (signed URL given with each SMS; no bearer token)',
      public: true,
      handler: callback(async (query) => {
        const report = parseDeliveryReport(query, options.callbackSecret, now());
        const message = await outbox.handleDeliveryReport(report);
        return { state: message.state };
      }),
    },
    {
      method: 'GET',
      url: MO_PATH,
      summary: "Kannel MO message callback (smsbox sms-service get-url, key = the callback secret; no bearer token); answers an empty body so Kannel sends no reply SMS",
      public: true,
      handler: callback((query) => {
        outbox.handleMobileOriginated(parseMobileOriginated(query, options.callbackSecret, now()));
        return Promise.resolve('');
      }),
    },
  ];

  if (options.numbers) {
    const numbers = options.numbers;
    routes.push(
      {
        method: 'POST',
        url: '/api/v1/sms/numbers',
        summary: "Map a device (endpoint) to its phone number (E.164) for SMS methods",
        body: { type: 'object', required: ['endpoint', 'number'], additionalProperties: false, properties: { endpoint: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$' }, number: { type: 'string', maxLength: 40 } } },
        handler: guarded(async (request) => {
          const b = request.body as { endpoint: string; number: string };
          const number = normalizeNumber(b.number);
          await numbers.put(b.endpoint, number, now());
          return { endpoint: b.endpoint, number };
        }),
      },
      {
        method: 'GET',
        url: '/api/v1/sms/numbers/:endpoint',
        summary: "A device's mapped phone number",
        params: { endpoint: 'Endpoint client name' },
        handler: guarded(async (request) => {
          const endpoint = (request.params as { endpoint: string }).endpoint;
          const number = await numbers.get(endpoint);
          if (!number) throw new SmsError('NOT_FOUND', `no phone number mapped for ${endpoint}`);
          return { endpoint, number };
        }),
      },
    );
  }

  if (options.wakeUp) {
    const wakeUp = options.wakeUp;
    routes.push({
      method: 'POST',
      url: '/api/v1/devices/:endpoint/sms-wakeup',
      summary: 'LwM2M SMS wake-up: send the Registration Update Trigger (/1/x/8) by SMS to a registered device (queue mode or offline) so that it contacts Depot; answers the SMS (follow it in the outbox)',
      params: { endpoint: 'Endpoint client name' },
      handler: guarded(async (request, reply) => {
        // The body is optional ({ "jobStep": "…" } makes the wake-up idempotent).
        const b = (request.body ?? {}) as { jobStep?: unknown };
        if (typeof b !== 'object' || (b.jobStep !== undefined && (typeof b.jobStep !== 'string' || !/^[\x21-\x7e]{1,150}$/.test(b.jobStep)))) throw new SmsError('BAD_MESSAGE', 'the body is {} or { "jobStep": "<1 to 150 printable characters>" }');
        const endpoint = (request.params as { endpoint: string }).endpoint;
        return reply.code(202).send(smsMessageJson(await wakeUp(endpoint, b.jobStep === undefined ? undefined : `api:${b.jobStep}`)));
      }),
    });
  }

  if (options.downloads) {
    const downloads = options.downloads;
    routes.push({
      method: 'GET',
      url: `${SMS_LINK_PATH}/:token`,
      summary: 'SMS link download: the package behind a one-time link (the token is the capability; Range: bytes=N- resumes)',
      public: true,
      params: { token: 'Download token from the SMS' },
      handler: async (request, reply) => {
        const token = (request.params as { token: string }).token;
        const found = await downloads.open(token);
        if (!found) return reply.code(404).send({ error: 'NOT_FOUND', message: 'unknown, expired or used-up download link' });
        return sendFileRange(request, reply, found, { end: (sent) => void downloads.served(token, sent).catch(() => undefined) });
      },
    });
    routes.push({
      method: 'POST',
      url: `${SMS_LINK_PATH}/:token/installed`,
      summary: "SMS link install report: the device's installer says the package it downloaded from this link is installed (the token is the capability; only after the whole download)",
      public: true,
      params: { token: 'Download token from the SMS' },
      handler: async (request, reply) => {
        const token = (request.params as { token: string }).token;
        const reported = await downloads.installed(token);
        if (!reported) return reply.code(404).send({ error: 'NOT_FOUND', message: 'unknown, expired or withdrawn link, or its download is not complete' });
        options.onInstalled?.(reported.endpoint);
        return reply.code(204).send();
      },
    });
  }
  return routes;
}
