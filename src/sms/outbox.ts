/**
 * The durable SMS outbox: every SMS is stored (sealed, see src/store/sqlite/sms-outbox.ts)
 * before it is handed to the gateway, so a crash, a restart or a gateway outage loses
 * nothing; a job step's idempotency key makes a second request for the same step return
 * the first message instead of sending again.
 *
 * Delivery, per part (segment): pending → submitting → submitted → delivered | failed. A
 * gateway that cannot take a part now (unreachable, 5xx) leaves it pending: the message is
 * tried again after a backoff (doubling from `backoff.baseMs` to `backoff.maxMs`) and the
 * whole dispatcher pauses for as long, so an outage costs one failed request per backoff,
 * not one per queued message. A part whose submit ended without knowing whether the gateway
 * took it (timeout after the request went out, or a restart while submitting) becomes
 * `unknown` and is never resent (a delivery report can still settle it). A gateway refusal
 * fails the message. Messages not submitted within their validity fail with the last error.
 * Submits are paced by a token bucket (`ratePerSecond`), so a wave does not flood the gateway.
 */
import { randomBytes } from 'node:crypto';
import { maskNumber, normalizeNumber, normalizeSender } from './address.js';
import { SmsError } from './errors.js';
import { DLR, type DeliveryReport, type MobileOriginated, type SmsGateway } from './gateway.js';
import { dlrUrl } from './kannel.js';
import { Reassembler, fromUtf16be, segmentBinary, segmentText, type Segment } from './udh.js';
import { wapPushSegments, type WapPushParameters } from './wap-push.js';

export const SMS_MESSAGE_STATES = ['queued', 'submitted', 'delivered', 'failed', 'unknown', 'cancelled'] as const;
export type SmsMessageState = (typeof SMS_MESSAGE_STATES)[number];
export const SMS_SEGMENT_STATES = ['pending', 'submitting', 'submitted', 'delivered', 'failed', 'unknown', 'cancelled'] as const;
export type SmsSegmentState = (typeof SMS_SEGMENT_STATES)[number];
export type SmsKind = 'text' | 'binary' | 'wap-push';

export interface SmsSegmentStatus {
  readonly seq: number;
  readonly state: SmsSegmentState;
  readonly submittedAt: number | null;
  /** The gateway's answer to the submit. */
  readonly reply: string | null;
  /** The last delivery report's type (DLR) and text, and when it came. */
  readonly dlrType: number | null;
  readonly dlrText: string | null;
  readonly dlrAt: number | null;
}

export interface SmsMessageRecord {
  readonly id: string;
  /** The idempotency key (the job step that asked for it). */
  readonly key: string;
  readonly to: string;
  readonly from: string | null;
  readonly kind: SmsKind;
  /** WAP Push content type, else null. */
  readonly contentType: string | null;
  readonly state: SmsMessageState;
  /** Size of the payload in octets (all parts, without UDH). */
  readonly size: number;
  readonly attempts: number;
  readonly nextAttemptAt: number | null;
  readonly lastError: string | null;
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
  /** Send pacing: the group this message was paced in, and the time it was scheduled to go (null: at once). */
  readonly paceGroup: string | null;
  readonly scheduledAt: number | null;
  readonly segments: readonly SmsSegmentStatus[];
}

export interface NewSmsMessage {
  readonly id: string;
  readonly key: string;
  readonly to: string;
  readonly from: string | null;
  readonly kind: SmsKind;
  readonly contentType: string | null;
  readonly segments: readonly Segment[];
  readonly expiresAt: number;
  /** Scheduled one interval after the group's last message (validity counts from then). */
  readonly pace?: { readonly group: string; readonly intervalMs: number };
}

export interface SmsListFilter {
  readonly state?: SmsMessageState;
  readonly to?: string;
  readonly limit?: number;
  /** Cursor: the `next` of the previous page. */
  readonly after?: string;
}

/** The outbox's persistence (declared here, implemented by src/store/sqlite/sms-outbox.ts). */
export interface SmsOutboxRepository {
  /** Stores a new message with its parts pending; an existing key returns that message (`created` false), or CONFLICT when it was for another number. */
  create(message: NewSmsMessage, now: number): Promise<{ record: SmsMessageRecord; created: boolean }>;
  get(id: string): Promise<SmsMessageRecord | null>;
  getByKey(key: string): Promise<SmsMessageRecord | null>;
  /** Newest first. */
  list(filter: SmsListFilter): Promise<{ items: SmsMessageRecord[]; next: string | null }>;
  /** Queued messages whose next attempt is due, in the order they were stored. */
  due(now: number, limit: number): Promise<SmsMessageRecord[]>;
  /** The earliest next attempt of a queued message, or null. */
  nextDueAt(): Promise<number | null>;
  /** A part's octets (opened from their sealed form). */
  segment(id: string, seq: number): Promise<Segment | null>;
  /** Moves a part on and derives the message's state; the reply is the gateway's answer. */
  setSegmentState(id: string, seq: number, state: SmsSegmentState, reply: string | null, now: number): Promise<SmsMessageRecord>;
  /** A failed attempt: the error, and when to try again (null: the message failed for good). */
  recordAttemptFailure(id: string, error: string, nextAttemptAt: number | null, now: number): Promise<SmsMessageRecord>;
  /** Applies a delivery report to a part; null when the message or part is unknown. */
  recordDeliveryReport(report: DeliveryReport, now: number): Promise<SmsMessageRecord | null>;
  /** Queued messages past their validity fail (with their last error). */
  expire(now: number): Promise<SmsMessageRecord[]>;
  /** Parts not yet submitted are cancelled; false when nothing was left to cancel. */
  cancel(id: string, now: number): Promise<SmsMessageRecord | null>;
  /** After a restart: parts left `submitting` become `unknown` (never resent). Returns how many. */
  recoverInterrupted(now: number): Promise<number>;
  /** The next concatenation reference number for a recipient (0..255, cycling). */
  nextConcatRef(to: string): Promise<number>;
}

export interface SmsOutboxOptions {
  readonly repository: SmsOutboxRepository;
  /** Null: messages are stored and wait (the status says SMS is not configured). */
  readonly gateway: SmsGateway | null;
  /** Where the gateway reaches Depot's callbacks (e.g. http://127.0.0.1:8080); null: no delivery reports asked for. */
  readonly callbackBase: string | null;
  /** Signs delivery report URLs; never logged. */
  readonly callbackSecret: string;
  /** Default sender. */
  readonly from?: string;
  /** SMS (parts) per second handed to the gateway, at most (default 10). */
  readonly ratePerSecond?: number;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** How long a message may wait to be submitted (default 24 h). */
  readonly validityMs?: number;
  /** Most parts one message may take (default 32). */
  readonly maxSegments?: number;
  readonly now?: () => number;
  /** Operator log line (never carries a secret or a message body). */
  readonly log?: (line: string) => void;
}

export interface SmsUpdate {
  readonly message: SmsMessageRecord;
  readonly cause: 'created' | 'submitted' | 'retrying' | 'failed' | 'unknown' | 'delivery-report' | 'expired' | 'cancelled';
}

/** A whole MO message (parts reassembled) as Depot's listeners get it. */
export interface ReceivedSms {
  readonly from: string;
  readonly to: string;
  readonly coding: 0 | 1 | 2;
  readonly ports: { readonly destination: number; readonly source: number } | null;
  readonly data: Uint8Array;
  /** The text, for coding 0 and 2 (Kannel hands 7-bit text over as UTF-8). */
  readonly text: string | null;
  readonly at: number;
}

export interface SendCommon {
  readonly to: string;
  /** The idempotency key: one message per job step, ever. */
  readonly jobStep: string;
  readonly from?: string;
  /**
   * Send pacing: at most `perMinute` messages of `group` (e.g. one campaign wave) go per minute,
   * each scheduled (in the store) one interval after the group's previous one.
   */
  readonly pace?: { readonly group: string; readonly perMinute: number };
}

export interface GatewayStatus {
  readonly configured: boolean;
  readonly description: string | null;
  /** Last gateway error (e.g. "cannot reach Kannel sendsms at …: ECONNREFUSED"), cleared by the next success. */
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  /** While set, nothing is submitted (backoff after a gateway error). */
  readonly pausedUntil: number | null;
}

class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly now: () => number,
  ) {
    this.tokens = Math.max(1, rate);
    this.last = now();
  }

  async take(): Promise<void> {
    for (;;) {
      const t = this.now();
      this.tokens = Math.min(Math.max(1, this.rate), this.tokens + ((t - this.last) / 1000) * this.rate);
      this.last = t;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(((1 - this.tokens) / this.rate) * 1000)));
    }
  }
}

const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

export class SmsOutbox {
  private readonly repo: SmsOutboxRepository;
  private readonly now: () => number;
  private readonly bucket: TokenBucket;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly updateListeners = new Set<(update: SmsUpdate) => void>();
  private readonly moListeners = new Set<(sms: ReceivedSms) => void>();
  private readonly reassembler: Reassembler;
  private running = false;
  private pumping: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private gatewayFailures = 0;
  private pausedUntil = 0;
  private lastError: { text: string; at: number } | null = null;

  constructor(private readonly options: SmsOutboxOptions) {
    this.repo = options.repository;
    this.now = options.now ?? Date.now;
    const rate = options.ratePerSecond ?? 10;
    if (!(rate > 0)) throw new SmsError('NOT_CONFIGURED', 'ratePerSecond must be positive');
    this.bucket = new TokenBucket(rate, this.now);
    this.backoff = { ...(options.backoff ?? { baseMs: 2000, maxMs: 5 * 60_000 }) };
    this.reassembler = new Reassembler(this.now);
    if (options.from !== undefined) normalizeSender(options.from);
  }

  // ---------------------------------------------------------------- sending

  /** A text (GSM 7-bit or UCS-2, concatenated when long). */
  async sendText(request: SendCommon & { readonly text: string }): Promise<SmsMessageRecord> {
    if (typeof request.text !== 'string') throw new SmsError('BAD_MESSAGE', 'text must be a string');
    return this.enqueue(request, 'text', null, (ref) => segmentText(request.text, { ref, maxSegments: this.maxSegments }));
  }

  /** 8-bit data, optionally to application ports (16-bit port addressing), concatenated when long. */
  async sendBinary(request: SendCommon & { readonly data: Uint8Array; readonly ports?: { readonly destination: number; readonly source: number } }): Promise<SmsMessageRecord> {
    if (!(request.data instanceof Uint8Array) || request.data.length === 0) throw new SmsError('BAD_MESSAGE', 'data must be non-empty bytes');
    return this.enqueue(request, 'binary', null, (ref) => segmentBinary(request.data, { ref, maxSegments: this.maxSegments, ...(request.ports ? { ports: request.ports } : {}) }));
  }

  /**
   * WAP Push over SMS (WDP 9200 → 2948, WSP Push PDU): what the OMA DM notification
   * (application/vnd.syncml.notification, application id x-wap-application:syncml.dm) and the
   * Client Provisioning bootstrap (application/vnd.wap.connectivity-wbxml with SEC and MAC) travel in.
   */
  async wapPush(request: SendCommon & { readonly contentType: string; readonly parameters?: WapPushParameters; readonly applicationId?: string | number; readonly body: Uint8Array }): Promise<SmsMessageRecord> {
    if (!(request.body instanceof Uint8Array)) throw new SmsError('BAD_MESSAGE', 'body must be bytes');
    const message = {
      contentType: request.contentType,
      body: request.body,
      ...(request.parameters ? { parameters: request.parameters } : {}),
      ...(request.applicationId !== undefined ? { applicationId: request.applicationId } : {}),
    };
    return this.enqueue(request, 'wap-push', request.contentType, (ref) => {
      const segments = wapPushSegments(message, ref);
      if (segments.length > this.maxSegments) throw new SmsError('BAD_MESSAGE', `the push needs ${segments.length} SMS; at most ${this.maxSegments} are allowed`);
      return segments;
    });
  }

  private get maxSegments(): number {
    return this.options.maxSegments ?? 32;
  }

  private async enqueue(request: SendCommon, kind: SmsKind, contentType: string | null, build: (ref: number) => Segment[]): Promise<SmsMessageRecord> {
    const to = normalizeNumber(request.to);
    if (typeof request.jobStep !== 'string' || !KEY_PATTERN.test(request.jobStep)) throw new SmsError('BAD_MESSAGE', 'jobStep (the idempotency key) must be 1 to 200 printable characters without spaces');
    const from = request.from !== undefined ? normalizeSender(request.from) : (this.options.from ?? null);
    const existing = await this.repo.getByKey(request.jobStep);
    if (existing) {
      if (existing.to !== to) throw new SmsError('CONFLICT', `job step ${request.jobStep} already sent its SMS to another number`);
      return existing;
    }
    if (request.pace !== undefined && (typeof request.pace.group !== 'string' || !KEY_PATTERN.test(request.pace.group) || !(request.pace.perMinute > 0 && request.pace.perMinute <= 60_000))) {
      throw new SmsError('BAD_MESSAGE', 'pace is { group: 1 to 200 printable characters, perMinute: more than 0, at most 60000 }');
    }
    let segments = build(0);
    if (segments.length > 1) segments = build(await this.repo.nextConcatRef(to));
    const now = this.now();
    const { record, created } = await this.repo.create(
      { id: randomBytes(12).toString('base64url'), key: request.jobStep, to, from, kind, contentType, segments, expiresAt: now + (this.options.validityMs ?? 24 * 3600_000), ...(request.pace ? { pace: { group: request.pace.group, intervalMs: 60_000 / request.pace.perMinute } } : {}) },
      now,
    );
    if (created) {
      this.emit({ message: record, cause: 'created' });
      this.kick();
    }
    return record;
  }

  // ---------------------------------------------------------------- reading

  /** By message id or idempotency key. */
  async get(idOrKey: string): Promise<SmsMessageRecord | null> {
    return (await this.repo.get(idOrKey)) ?? (await this.repo.getByKey(idOrKey));
  }

  list(filter: SmsListFilter = {}): Promise<{ items: SmsMessageRecord[]; next: string | null }> {
    return this.repo.list(filter);
  }

  async cancel(id: string): Promise<SmsMessageRecord> {
    const record = await this.repo.cancel(id, this.now());
    if (!record) throw new SmsError('NOT_FOUND', `no SMS ${id}`);
    this.emit({ message: record, cause: 'cancelled' });
    return record;
  }

  status(): GatewayStatus {
    const paused = this.pausedUntil > this.now() ? this.pausedUntil : null;
    return { configured: this.options.gateway !== null, description: this.options.gateway?.description ?? null, lastError: this.lastError?.text ?? (this.options.gateway ? null : 'no SMS gateway is configured: messages wait in the outbox'), lastErrorAt: this.lastError?.at ?? null, pausedUntil: paused };
  }

  onUpdate(listener: (update: SmsUpdate) => void): () => void {
    this.updateListeners.add(listener);
    return () => this.updateListeners.delete(listener);
  }

  onMessage(listener: (sms: ReceivedSms) => void): () => void {
    this.moListeners.add(listener);
    return () => this.moListeners.delete(listener);
  }

  // ---------------------------------------------------------------- from the network

  /** A delivery report (already authenticated by its callback); NOT_FOUND for a message or part Depot does not have. */
  async handleDeliveryReport(report: DeliveryReport): Promise<SmsMessageRecord> {
    const record = await this.repo.recordDeliveryReport(report, this.now());
    if (!record) throw new SmsError('NOT_FOUND', `no SMS part ${report.messageId}.${report.seq}`);
    this.emit({ message: record, cause: 'delivery-report' });
    return record;
  }

  /** An MO message part (already authenticated); listeners get whole messages. */
  handleMobileOriginated(mo: MobileOriginated): ReceivedSms | undefined {
    const whole = this.reassembler.add({ from: mo.from, udh: mo.udh, data: mo.data });
    if (!whole) return undefined;
    let text: string | null = null;
    if (mo.coding === 0) text = Buffer.from(whole.data).toString('utf8');
    else if (mo.coding === 2) text = fromUtf16be(whole.data);
    const sms: ReceivedSms = { from: mo.from, to: mo.to, coding: mo.coding, ports: whole.ports, data: whole.data, text, at: mo.at };
    for (const listener of this.moListeners) {
      try {
        listener(sms);
      } catch (error) {
        this.log(`SMS: an MO listener failed: ${(error as Error).message}`);
      }
    }
    return sms;
  }

  // ---------------------------------------------------------------- dispatcher

  /** Recovers parts a restart interrupted and starts dispatching. */
  async start(): Promise<void> {
    if (this.running) return;
    const interrupted = await this.repo.recoverInterrupted(this.now());
    if (interrupted > 0) this.log(`SMS: ${interrupted} part(s) were being submitted when Depot stopped; marked unknown, not resent`);
    this.running = true;
    this.kick();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.pumping;
  }

  /** Dispatches what is due now (new messages call it). */
  kick(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.again) {
        this.again = false;
        this.kick();
      } else {
        void this.schedule();
      }
    });
  }

  /** Resolves when nothing is being dispatched at the moment (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  private async pump(): Promise<void> {
    try {
      for (const expired of await this.repo.expire(this.now())) this.emit({ message: expired, cause: 'expired' });
      const gateway = this.options.gateway;
      if (!gateway) return;
      // A message is dispatched at most once per round (one whose parts cannot move stays queued until its next attempt).
      const seen = new Set<string>();
      for (;;) {
        if (!this.running || this.pausedUntil > this.now()) return;
        const due = (await this.repo.due(this.now(), 50 + seen.size)).filter((m) => !seen.has(m.id));
        if (due.length === 0) return;
        for (const message of due) {
          if (!this.running) return;
          seen.add(message.id);
          if (!(await this.dispatch(gateway, message))) return;
        }
      }
    } catch (error) {
      this.log(`SMS: dispatcher error: ${(error as Error).message}`);
    }
  }

  private async schedule(): Promise<void> {
    if (!this.running) return;
    let next: number | null;
    try {
      next = await this.repo.nextDueAt();
    } catch {
      next = this.now() + 5000;
    }
    if (!this.running || this.pumping) return;
    const now = this.now();
    let at = next === null ? now + 60_000 : Math.max(next, this.pausedUntil);
    at = Math.min(at, now + 60_000);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, at - now));
    this.timer.unref();
  }

  /** Submits the message's pending parts; false when the gateway failed (the dispatcher pauses). */
  private async dispatch(gateway: SmsGateway, message: SmsMessageRecord): Promise<boolean> {
    for (const part of message.segments) {
      if (part.state !== 'pending') continue;
      const segment = await this.repo.segment(message.id, part.seq);
      if (!segment) continue;
      await this.bucket.take();
      if (!this.running) return false;
      await this.repo.setSegmentState(message.id, part.seq, 'submitting', null, this.now());
      const dlr = this.options.callbackBase ? dlrUrl(this.options.callbackBase, this.options.callbackSecret, message.id, part.seq) : null;
      try {
        const result = await gateway.submit({ to: message.to, ...(message.from ? { from: message.from } : {}), segment, dlrUrl: dlr });
        const record = await this.repo.setSegmentState(message.id, part.seq, 'submitted', result.reply, this.now());
        this.gatewayFailures = 0;
        this.lastError = null;
        this.pausedUntil = 0;
        if (record.state !== 'queued') this.emit({ message: record, cause: 'submitted' });
      } catch (error) {
        const e = error instanceof SmsError ? error : new SmsError('GATEWAY_TEMPORARY', `${gateway.description}: ${(error as Error).message}`);
        const now = this.now();
        const where = `SMS ${message.id} part ${part.seq}/${message.segments.length} to ${maskNumber(message.to)}`;
        if (e.code === 'GATEWAY_AMBIGUOUS') {
          const record = await this.repo.setSegmentState(message.id, part.seq, 'unknown', e.message, now);
          this.log(`${where}: ${e.message}; not resent`);
          this.emit({ message: record, cause: 'unknown' });
          continue;
        }
        if (e.code === 'GATEWAY_REFUSED' || e.code === 'BAD_MESSAGE') {
          await this.repo.setSegmentState(message.id, part.seq, 'failed', e.message, now);
          const record = await this.repo.recordAttemptFailure(message.id, e.message, null, now);
          this.log(`${where} failed: ${e.message}`);
          this.emit({ message: record, cause: 'failed' });
          return true;
        }
        await this.repo.setSegmentState(message.id, part.seq, 'pending', null, now);
        this.gatewayFailures++;
        const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(30, Math.max(message.attempts, this.gatewayFailures - 1)));
        const record = await this.repo.recordAttemptFailure(message.id, e.message, now + delay, now);
        this.pausedUntil = now + delay;
        this.lastError = { text: e.message, at: now };
        this.log(`${where}: ${e.message}; trying again in ${Math.round(delay / 100) / 10} s`);
        this.emit({ message: record, cause: 'retrying' });
        return false;
      }
    }
    return true;
  }

  private emit(update: SmsUpdate): void {
    for (const listener of this.updateListeners) {
      try {
        listener(update);
      } catch (error) {
        this.log(`SMS: an update listener failed: ${(error as Error).message}`);
      }
    }
  }

  private log(line: string): void {
    (this.options.log ?? ((l: string) => process.emitWarning(l)))(line);
  }
}

/** How a delivery report moves a part: its new state, or undefined when the part stays as it is. */
export function segmentStateAfterReport(current: SmsSegmentState, type: number): SmsSegmentState | undefined {
  if (current === 'delivered' || current === 'failed' || current === 'cancelled') return undefined;
  if (type === DLR.DELIVERED) return 'delivered';
  if (type === DLR.UNDELIVERABLE || type === DLR.SMSC_REJECTED) return 'failed';
  if (current === 'submitted') return undefined;
  return 'submitted';
}

/** A message's state from its parts' states. */
export function messageStateOf(states: readonly SmsSegmentState[]): SmsMessageState {
  if (states.includes('failed')) return 'failed';
  if (states.every((s) => s === 'delivered')) return 'delivered';
  if (states.includes('cancelled') && !states.some((s) => s === 'pending' || s === 'submitting')) return 'cancelled';
  if (states.some((s) => s === 'pending' || s === 'submitting')) return 'queued';
  if (states.includes('unknown')) return 'unknown';
  return 'submitted';
}
