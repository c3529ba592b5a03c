/**
 * The DM server's side of one OMA DM 1.2 session (OMA-TS-DM_Protocol-V1_2, "Session" and
 * "Packages"), sans-IO: `receive` takes one decoded client message, the device's DM account as
 * the edge found it, and the time, and returns the message to send back and the effects the
 * edge must carry out (facts and nonces to store, results to report) before it sends the reply.
 *
 * What the session keeps: the SessionID, message and command counters, the client's
 * MaxMsgSize, whether the client has authenticated, the commands it sent and not yet heard
 * about, and its queue of commands still to send. Nothing else survives a message.
 */
import { AuthType, decodeBase64Strict, md5Credential, newNonce, parseBasicCredential, verifyHmac, verifyMd5Credential } from './auth.js';
import type { HmacHeader } from './auth.js';
import { AlertCode, StatusCode } from './status-codes.js';
import { encodeSyncML } from './syncml.js';
import type { AlertCommand, Command, ContainerCommand, Item, ItemCommand, Meta, ResultsCommand, StatusCommand, SyncHdr, SyncMLEncoding, SyncMLMessage } from './syncml.js';

const PROTOCOL = 'OMA-TS-DM_Protocol-V1_2';

/** What the server knows of one device's DM account (the edge reads it from the store). */
export interface DmAccount {
  /** DevId, as the device names itself in SyncHdr/Source/LocURI. */
  readonly deviceId: string;
  /** The client credentials: what the device proves it knows. */
  readonly clientUsername: string;
  readonly clientPassword: string;
  /** The nonce Depot gave the device in its last Chal; the device's next MD5 digest or MAC is over it. */
  readonly clientNonce: Uint8Array;
  /**
   * Depot's own credentials towards the device (OMA-TS-DM_Security-V1_2 "Authentication": the
   * server authenticates to the client too): the server ID is the username of its digest, and
   * serverNonce the nonce the device gave in its last Chal for the server.
   */
  readonly serverId?: string;
  readonly serverPassword?: string;
  readonly serverNonce?: Uint8Array;
}

/** Depot's server credentials as one session uses them. */
interface ServerCredentials {
  readonly serverId: string;
  readonly password: string;
  nonce: Uint8Array;
}

/** What the device answered to one job: its Status code (null: no answer), Results (or the Status's Items), and for Sequence/Atomic each child's code. */
export interface JobResult {
  readonly code: number | null;
  readonly items: readonly Item[];
  readonly children?: readonly (number | null)[];
}

export type ServerJobKind = 'Get' | 'Replace' | 'Exec' | 'Add' | 'Delete' | 'Copy' | 'Alert' | 'Sequence' | 'Atomic';

/**
 * A command an operator (or the fact collection, or SCOMO) wants run on the device. Item
 * commands target `uri` with one Item built from data/format/type, or carry `items` as given;
 * Alert sends `alertCode` (the user-interaction alerts 1100-1104) with `items`; Sequence and
 * Atomic carry `children` (RepPro <Sequence>, <Atomic>). `then` runs on the device's answer and
 * may return follow-up jobs, which go out in Depot's next package of the same session (a SCOMO
 * root found, then the install): sans-IO, synchronous.
 */
export interface ServerJob {
  readonly id: string;
  readonly kind: ServerJobKind;
  readonly uri: string;
  readonly data?: string;
  readonly format?: string;
  readonly type?: string;
  /** Exec: echoed by the device in the Generic Alert that reports the asynchronous result. */
  readonly correlator?: string;
  /** Copy: the node copied from. */
  readonly sourceUri?: string;
  readonly alertCode?: number;
  readonly items?: readonly Item[];
  readonly children?: readonly ServerJob[];
  readonly then?: (result: JobResult) => readonly ServerJob[];
}

export type SessionEffect =
  /** Store before replying: the device's next digest is over this nonce (OMA-TS-DM_Security, NextNonce). */
  | { readonly kind: 'client-nonce'; readonly deviceId: string; readonly nonce: Uint8Array }
  | { readonly kind: 'authenticated'; readonly deviceId: string; readonly authType: AuthType }
  /** The edge throttles on these; the reply never says whether the device exists. */
  | { readonly kind: 'auth-failed'; readonly deviceId: string; readonly reason: string; readonly attempt: number; readonly final: boolean }
  /** Store before replying: the nonce the device gave Depot for its next Cred or MAC (server authentication, NextNonce). */
  | { readonly kind: 'server-nonce'; readonly deviceId: string; readonly nonce: Uint8Array }
  /** The device refused Depot's credential (401/407 on SyncHdr): resent over its new nonce, or the session given up. */
  | { readonly kind: 'server-auth-refused'; readonly deviceId: string; readonly code: number; readonly retry: boolean }
  /** Node values of ./DevInfo and ./DevDetail, keyed by URI ("./DevInfo/Man"). */
  | { readonly kind: 'facts'; readonly deviceId: string; readonly facts: Readonly<Record<string, string>> }
  /** code null: sent, but the session ended without the device's Status (the outcome is unknown). */
  | { readonly kind: 'job-result'; readonly deviceId: string; readonly jobId: string; readonly code: number | null; readonly items: readonly Item[]; readonly children?: readonly (number | null)[] }
  /** Store before replying: this job's command is in the reply about to go out (an Exec must be known as sent before it can run). */
  | { readonly kind: 'job-sent'; readonly deviceId: string; readonly jobId: string }
  /** The session ended before this job was sent: it may run in the next session. */
  | { readonly kind: 'job-unsent'; readonly deviceId: string; readonly jobId: string }
  | { readonly kind: 'generic-alert'; readonly deviceId: string; readonly correlator?: string; readonly items: readonly Item[] }
  | { readonly kind: 'protocol-warning'; readonly deviceId: string; readonly text: string }
  | { readonly kind: 'session-ended'; readonly deviceId: string; readonly reason: 'completed' | 'client-abort' | 'server-abort' | 'timeout'; readonly detail?: string };

export interface SessionConfig {
  /** The server's own URI (SyncHdr/Source of its messages). */
  readonly serverUri: string;
  /** Accept syncml:auth-basic (only where configuration allows it: it sends the password). */
  readonly allowBasic?: boolean;
  /** Idle time after which the session is over (default 5 minutes). */
  readonly timeoutMs?: number;
  /** The same for a session not yet authenticated (default 30 s), so strangers cannot fill the session table for long. */
  readonly unauthenticatedTimeoutMs?: number;
  /** Used when the client announces no MaxMsgSize (default 16 KiB). */
  readonly defaultMaxMsgSize?: number;
  /** What Depot accepts, announced in its header (default 64 KiB). */
  readonly ownMaxMsgSize?: number;
  /** Authentication attempts per session before the server aborts it (default 3). */
  readonly maxAuthAttempts?: number;
  /** Nonce source, for tests. */
  readonly nonce?: () => Uint8Array;
}

export interface ReceiveInput {
  readonly message: SyncMLMessage;
  readonly encoding: SyncMLEncoding;
  /** The account for SyncHdr/Source, or undefined: the reply is the same either way. */
  readonly account: DmAccount | undefined;
  /** The x-syncml-hmac header and the exact body bytes it covers, when the client sent one. */
  readonly hmac?: { readonly header: HmacHeader; readonly body: Uint8Array };
  /** The edge's throttle said no: credentials are not even checked, the answer is the usual 401. */
  readonly throttled?: boolean;
  /** Where the client sends its next message (SyncHdr/RespURI). */
  readonly respUri?: string;
  readonly now: number;
}

export interface ReceiveOutput {
  readonly reply: SyncMLMessage;
  readonly effects: readonly SessionEffect[];
  /** The session is over: the edge forgets it once the reply is sent. */
  readonly ended: boolean;
  /** The reply already encoded in the input's encoding (measuring it against MaxMsgSize did that), when it was. */
  readonly encoded?: Uint8Array;
  /**
   * An HMAC session with server credentials: the edge puts x-syncml-hmac on the reply, computed
   * with these over the encoded body (OMA-TS-DM_Security-V1_2, HMAC in both directions).
   */
  readonly mac?: { readonly username: string; readonly password: string; readonly nonce: Uint8Array };
}

/** Times the device may refuse Depot's own credential in one session before Depot gives up. */
const MAX_SERVER_AUTH_REFUSALS = 3;
/** The longest nonce a device may give Depot (the store bounds it the same). */
const MAX_DEVICE_NONCE = 256;

/** The ./DevInfo and ./DevDetail leaves read at the start of every session (OMA-TS-DM_StdObj). */
export const FACT_URIS = [
  './DevInfo/DevId', './DevInfo/Man', './DevInfo/Mod', './DevInfo/DmV', './DevInfo/Lang',
  './DevDetail/DevTyp', './DevDetail/OEM', './DevDetail/FwV', './DevDetail/SwV', './DevDetail/HwV', './DevDetail/LrgObj',
] as const;

/** The Gets of the facts, made once: their Items are shared by every session's commands (nothing changes them). */
const FACT_JOBS: readonly ServerJob[] = FACT_URIS.map((uri) => ({ id: `fact:${uri}`, kind: 'Get', uri, items: [{ target: { locUri: uri } }] }));

/** Node values are bounded: a fact is a short string. */
const MAX_FACT_LENGTH = 256;

interface Sent {
  readonly msgId: string;
  readonly cmdId: string;
  /** 'child': one command of a Sequence/Atomic job, whose answer goes to `parent`. */
  readonly job: ServerJob | 'fact' | 'alert' | 'child';
  readonly uri?: string;
  results: Item[];
  /** Sequence/Atomic: the container's own code and each child's, and how many answers are still due. */
  code?: number | null;
  children?: (number | null)[];
  open?: number;
  readonly parent?: string;
  readonly index?: number;
  /** A chunk of a large object Depot sends (MoreData): its Status is 213, the job's answer comes with the last chunk. */
  readonly chunk?: boolean;
  /** A large object the device is sending in Results chunks (DM Protocol "Large Object Handling"). */
  partial?: string;
  expectedSize?: number;
  sizeMismatch?: boolean;
}

type Outgoing = StatusCommand | ItemCommand | AlertCommand | ContainerCommand | ResultsCommand;

export class DmServerSession {
  readonly sessionId: string;
  readonly deviceId: string;
  private readonly config: FullConfig;
  private serverMsgId = 0;
  private cmdId = 0;
  private lastClientMsgId = 0;
  private clientMaxMsgSize: number;
  /** The largest object the client takes (SyncHdr Meta MaxObjSize); undefined: it takes no large objects. */
  private clientMaxObjSize: number | undefined;
  /** Jobs whose command can never reach this client (larger than its MaxMsgSize, no large object support): answered 413 by Depot. */
  private readonly refused: ServerJob[] = [];
  /** What Depot answers to each client Results (213 for a chunk, 424 for a size mismatch). */
  private readonly resultsCodes = new WeakMap<ResultsCommand, number>();
  private authenticated = false;
  private authType: AuthType | undefined;
  private authAttempts = 0;
  /** Depot's credentials towards the device, read from the account at the first message; undefined: none. */
  private server: ServerCredentials | undefined;
  private serverCredsRead = false;
  /** The device accepted Depot's Cred (212/200 on its SyncHdr Status): MD5 Cred is no longer sent. */
  private serverAccepted = false;
  private serverRefusals = 0;
  /** Depot's last message's commands, resent as they were when the device refuses Depot's credential. */
  private lastOut: { msgId: string; commands: Outgoing[]; final: boolean } | undefined;
  private lastActivity: number;
  private ended = false;
  private readonly sent = new Map<string, Sent>();
  /** Statuses and commands not yet sent because a message was full (MaxMsgSize). */
  private readonly pending: Outgoing[] = [];
  private readonly jobs: ServerJob[];
  private jobsQueued = false;
  private readonly facts: Record<string, string> = {};

  constructor(sessionId: string, deviceId: string, jobs: readonly ServerJob[], config: SessionConfig, now: number) {
    this.sessionId = sessionId;
    this.deviceId = deviceId;
    this.jobs = [...jobs];
    this.config = withDefaults(config);
    this.clientMaxMsgSize = this.config.defaultMaxMsgSize;
    this.lastActivity = now;
  }

  get isAuthenticated(): boolean {
    return this.authenticated;
  }

  /**
   * Whether the next message needs the device's account from the store: until the device has
   * authenticated, and for every message of an HMAC session (each carries its own MAC). An MD5 or
   * Basic session, once authenticated, checks nothing more against the account (its server
   * credentials were read with the first message).
   */
  get needsAccount(): boolean {
    return !this.authenticated || this.authType === AuthType.Hmac;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Operator jobs for this session, given once the device has authenticated (the edge then takes
   * them from their queue, so a stranger's session holds none). They go out with Depot's next
   * package. False if the session is over: the jobs were not taken.
   */
  addJobs(jobs: readonly ServerJob[]): boolean {
    if (this.ended) return false;
    this.jobs.push(...jobs);
    if (this.jobsQueued) for (const job of jobs) this.pending.push(this.command(job));
    return true;
  }

  /** Idle past the timeout: the edge drops the session and carries out the effects this returns (none while it is alive). */
  expire(now: number): SessionEffect[] {
    if (this.ended || now - this.lastActivity < this.idleLimit()) return [];
    return this.close('timeout');
  }

  /** Ends the session from outside (timeout, or the edge replacing it): what became of each job, and the end. */
  close(reason: 'timeout' | 'server-abort', detail?: string): SessionEffect[] {
    if (this.ended) return [];
    const effects: SessionEffect[] = [];
    this.finish(effects);
    effects.push({ kind: 'session-ended', deviceId: this.deviceId, reason, ...(detail === undefined ? {} : { detail }) });
    return effects;
  }

  /** Jobs sent without an answer have an unknown outcome; jobs never sent go back to their queue. */
  private finish(effects: SessionEffect[]): void {
    this.ended = true;
    this.closePackage(effects);
    const reported = new Set<string>();
    for (const c of this.pending) {
      const job = pendingJobs.get(c);
      if (job !== undefined && !job.id.startsWith('fact:')) {
        effects.push({ kind: 'job-unsent', deviceId: this.deviceId, jobId: job.id });
        reported.add(job.id);
      }
    }
    this.pending.length = 0;
    if (!this.jobsQueued) for (const job of this.jobs) if (!reported.has(job.id)) effects.push({ kind: 'job-unsent', deviceId: this.deviceId, jobId: job.id });
    this.jobsQueued = true;
  }

  receive(input: ReceiveInput): ReceiveOutput {
    const out = this.receiveMessage(input);
    // What Depot sent last, to resend over a new nonce if the device refuses Depot's credential.
    // Only a session with server credentials can be refused them: without, the commands are not kept (memory per open session).
    if (!out.ended) this.lastOut = { msgId: out.reply.header.msgId, commands: this.server === undefined ? [] : out.reply.commands.filter((c): c is Outgoing => c.kind !== 'Status'), final: out.reply.final };
    const server = this.server;
    if (server === undefined || !this.authenticated || this.authType !== AuthType.Hmac) return out;
    return { ...out, mac: { username: server.serverId, password: server.password, nonce: server.nonce } };
  }

  /**
   * The device's Status for Depot's last SyncHdr (server authentication, OMA-TS-DM_Security-V1_2
   * and Protocol "Authentication"): a Chal's NextNonce is the nonce for Depot's next credential; 401/407
   * means the device did not accept Depot's credential and processed nothing of that message.
   */
  private serverStatus(message: SyncMLMessage, effects: SessionEffect[]): 'refused' | undefined {
    const last = this.lastOut?.msgId;
    const status = message.commands.find((c): c is StatusCommand => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.msgRef === last);
    if (status === undefined) return undefined;
    const nextNonce = status.chal?.meta.nextNonce;
    if (nextNonce !== undefined) {
      if (this.server === undefined) effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: 'the device challenged Depot, which has no server credentials for it' });
      else {
        let nonce: Uint8Array | undefined;
        try {
          nonce = decodeBase64Strict(nextNonce, 'NextNonce');
        } catch {
          effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: 'the NextNonce of the device\'s Chal for Depot is not base64' });
        }
        // A nonce is a short value (devices use 8 to 32 bytes); a device string is untrusted and goes into the store.
        if (nonce !== undefined && nonce.length > MAX_DEVICE_NONCE) {
          effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: `the NextNonce of the device's Chal for Depot is ${nonce.length} bytes, over ${MAX_DEVICE_NONCE}: ignored` });
        } else if (nonce !== undefined) {
          this.server.nonce = nonce;
          effects.push({ kind: 'server-nonce', deviceId: this.deviceId, nonce });
        }
      }
    }
    if (status.code === StatusCode.InvalidCredentials || status.code === StatusCode.MissingCredentials) return 'refused';
    if (status.code === StatusCode.AuthenticationAccepted || status.code === StatusCode.Ok) this.serverAccepted = true;
    return undefined;
  }

  /** Moves what Depot remembers of a message's commands to the message that resends them. */
  private resent(oldMsgId: string, newMsgId: string): void {
    const prefix = `${oldMsgId}/`;
    for (const [key, sent] of [...this.sent]) {
      if (sent.msgId !== oldMsgId) continue;
      this.sent.delete(key);
      const parent = sent.parent?.startsWith(prefix) === true ? `${newMsgId}/${sent.parent.slice(prefix.length)}` : sent.parent;
      this.sent.set(`${newMsgId}/${sent.cmdId}`, { ...sent, msgId: newMsgId, ...(parent === undefined ? {} : { parent }) });
    }
  }

  private receiveMessage(input: ReceiveInput): ReceiveOutput {
    const { message } = input;
    const effects: SessionEffect[] = [];
    const h = message.header;
    const msgId = h.msgId;
    if (this.ended) return this.abort(input, effects, StatusCode.RequestTimeout, 'the session is over');
    if (input.now - this.lastActivity >= this.idleLimit()) {
      return this.abort(input, effects, StatusCode.RequestTimeout, 'the session timed out', 'timeout');
    }
    this.lastActivity = input.now;
    // MsgID increases by one per message within a session (OMA-TS-DM_RepPro <MsgID>); a repeat is a replay.
    const numeric = /^[0-9]{1,9}$/.test(msgId) ? Number(msgId) : NaN;
    if (!(numeric === this.lastClientMsgId + 1)) {
      return this.abort(input, effects, StatusCode.BadRequest, `MsgID ${JSON.stringify(msgId.slice(0, 20))} does not follow ${this.lastClientMsgId}`);
    }
    this.lastClientMsgId = numeric;
    if (h.meta?.maxMsgSize !== undefined) this.clientMaxMsgSize = Math.max(512, h.meta.maxMsgSize);
    if (h.meta?.maxObjSize !== undefined) this.clientMaxObjSize = h.meta.maxObjSize;
    const account = input.account;
    if (!this.serverCredsRead && account !== undefined) {
      this.serverCredsRead = true;
      if (account.serverId !== undefined && account.serverPassword !== undefined) this.server = { serverId: account.serverId, password: account.serverPassword, nonce: account.serverNonce ?? new Uint8Array() };
    }

    const statuses: StatusCommand[] = [];
    let hdrCode: number = StatusCode.Ok;
    let chal: StatusCommand['chal'];
    if (!this.authenticated || this.authType === AuthType.Hmac) {
      const auth = this.authenticate(input, effects);
      if (auth.ok) {
        hdrCode = this.authenticated && !auth.first ? StatusCode.Ok : StatusCode.AuthenticationAccepted;
        this.authenticated = true;
      } else {
        this.authAttempts++;
        const final = this.authAttempts >= this.config.maxAuthAttempts;
        effects.push({ kind: 'auth-failed', deviceId: this.deviceId, reason: auth.reason, attempt: this.authAttempts, final });
        if (final) return this.abort(input, effects, auth.code, `authentication failed ${this.authAttempts} times`);
        // Security: a fresh challenge with each refusal; the same answer whether or not the device is known.
        const nonce = this.config.nonce();
        if (input.account !== undefined) effects.push({ kind: 'client-nonce', deviceId: this.deviceId, nonce });
        const reply = this.message(input, [this.headerStatus(msgId, auth.code, this.challenge(nonce, input))], true);
        return { reply, effects, ended: false };
      }
      // Rotate the nonce once authenticated: the next session's digest (or this session's next MAC) uses a new one.
      const nonce = this.config.nonce();
      effects.push({ kind: 'client-nonce', deviceId: this.deviceId, nonce });
      chal = this.challenge(nonce, input);
    }
    statuses.push(this.headerStatus(msgId, hdrCode, chal));

    const aborting = message.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.SessionAbort);
    const serverRefused = this.serverStatus(message, effects) === 'refused';
    if (serverRefused) {
      const code = message.commands.find((c): c is StatusCommand => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.msgRef === this.lastOut?.msgId)?.code ?? StatusCode.InvalidCredentials;
      const retry = !aborting && this.server !== undefined && this.serverRefusals + 1 < MAX_SERVER_AUTH_REFUSALS && this.lastOut !== undefined;
      this.serverRefusals++;
      effects.push({ kind: 'server-auth-refused', deviceId: this.deviceId, code, retry });
      // The device ran nothing of the refused message: its jobs were not executed and may run in a later session.
      const refusedMsg = this.lastOut?.msgId;
      if (!retry) {
        for (const [key, sent] of [...this.sent]) {
          if (sent.msgId !== refusedMsg) continue;
          this.sent.delete(key);
          if (typeof sent.job === 'object' && !sent.job.id.startsWith('fact:')) effects.push({ kind: 'job-unsent', deviceId: this.deviceId, jobId: sent.job.id });
        }
      }
      if (aborting) {
        this.finish(effects);
        effects.push({ kind: 'session-ended', deviceId: this.deviceId, reason: 'client-abort', detail: 'the device did not accept Depot\'s server credential' });
        return { reply: this.message(input, statuses, true), effects, ended: true };
      }
      if (!retry) return this.abort(input, effects, StatusCode.Ok, this.server === undefined ? 'the device asks for server credentials Depot does not have for it' : `the device refused Depot's server credential ${this.serverRefusals} times`);
      const old = this.lastOut!;
      // Security "Authentication": the refused message again, now with a Cred (or MAC) over the device's new nonce.
      for (const command of message.commands) {
        if (command.kind === 'Status' && command.msgRef === old.msgId) continue;
        const status = this.handleCommand(command, msgId, effects);
        if (status !== undefined) statuses.push(status);
      }
      const reply = this.message(input, [...statuses, ...old.commands], old.final);
      this.resent(old.msgId, reply.header.msgId);
      return { reply, effects, ended: false };
    }

    let clientAbort = false;
    let wantsNext = false;
    // Results are read before any Status: devices send a Get's Status before or after its Results.
    for (const command of message.commands) if (command.kind === 'Results') this.handleResults(command, effects);
    for (const command of message.commands) {
      const status = this.handleCommand(command, msgId, effects);
      if (status !== undefined) statuses.push(status);
      if (command.kind === 'Alert' && command.code === AlertCode.SessionAbort) clientAbort = true;
      if (command.kind === 'Alert' && command.code === AlertCode.NextMessage) wantsNext = true;
    }
    if (clientAbort) {
      this.finish(effects);
      effects.push({ kind: 'session-ended', deviceId: this.deviceId, reason: 'client-abort' });
      return { reply: this.message(input, statuses, true), effects, ended: true };
    }
    if (Object.keys(this.facts).length > 0) {
      effects.push({ kind: 'facts', deviceId: this.deviceId, facts: { ...this.facts } });
      for (const key of Object.keys(this.facts)) delete this.facts[key];
    }

    if (!message.final && !wantsNext) {
      // The client's package goes on (Protocol "Multiple messages in package"): ask for the next message.
      // A message carrying Alert 1222 asks for Depot's next message instead, with or without Final.
      const alert = { kind: 'Alert' as const, cmdId: this.nextCmdId(), code: AlertCode.NextMessage };
      const reply = this.message(input, [...statuses, alert], false);
      this.remember(reply.header.msgId, alert); // the client's Status for it is expected, not a stray
      return { reply, effects, ended: false };
    }
    if (!wantsNext) this.closePackage(effects);
    if (!this.jobsQueued) {
      this.jobsQueued = true;
      for (const job of FACT_JOBS) this.pending.push(this.command(job));
      for (const job of this.jobs) this.pending.push(this.command(job));
    }
    const hasCommands = this.pending.some((c) => c.kind !== 'Status');
    const outgoing = [...statuses, ...this.pending.splice(0)];
    const fitted = this.fit(input, outgoing);
    if (fitted === undefined) {
      // Not even one Status fits the client's MaxMsgSize (a long Target/Source of its own making): nothing sensible can follow.
      return this.abort(input, effects, StatusCode.RequestEntityTooLarge, `the client's MaxMsgSize ${this.clientMaxMsgSize} cannot hold one command (${PROTOCOL})`);
    }
    const { reply, rest, encoded } = fitted;
    this.pending.push(...rest);
    for (const job of this.refused.splice(0)) {
      effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: `job ${job.id} is larger than the client's MaxMsgSize ${this.clientMaxMsgSize} and the client takes no large object of its size (MaxObjSize ${this.clientMaxObjSize ?? 'none'})` });
      this.jobDone(job, { code: StatusCode.RequestEntityTooLarge, items: [] }, effects);
    }
    const more = rest.length > 0;
    for (const c of reply.commands) {
      if (c.kind === 'Status' || c.kind === 'Results') continue;
      this.remember(reply.header.msgId, c as Outgoing);
      const job = pendingJobs.get(c);
      if (job !== undefined && !job.id.startsWith('fact:')) effects.push({ kind: 'job-sent', deviceId: this.deviceId, jobId: job.id });
    }
    // A package with only Status and Final ends the session (Protocol "Session Completion").
    if (!more && !hasCommands) {
      this.ended = true;
      effects.push({ kind: 'session-ended', deviceId: this.deviceId, reason: 'completed' });
      return { reply, effects, ended: true, ...(encoded === undefined ? {} : { encoded }) };
    }
    return { reply, effects, ended: false, ...(encoded === undefined ? {} : { encoded }) };
  }

  private idleLimit(): number {
    return this.authenticated ? this.config.timeoutMs : Math.min(this.config.timeoutMs, this.config.unauthenticatedTimeoutMs);
  }

  /** The server stops the session itself: Alert 1223 with Final (Protocol "Session Abort"). */
  private abort(input: ReceiveInput, effects: SessionEffect[], code: number, detail: string, reason: 'server-abort' | 'timeout' = 'server-abort'): ReceiveOutput {
    if (!this.ended) this.finish(effects);
    effects.push({ kind: 'session-ended', deviceId: this.deviceId, reason, detail });
    const alert = { kind: 'Alert' as const, cmdId: this.nextCmdId(), code: AlertCode.SessionAbort };
    return { reply: this.message(input, [this.headerStatus(input.message.header.msgId, code), alert], true), effects, ended: true };
  }

  private authenticate(input: ReceiveInput, effects: SessionEffect[]): { ok: true; first: boolean } | { ok: false; code: number; reason: string } {
    const { account, message } = input;
    const first = !this.authenticated;
    if (input.throttled === true) return { ok: false, code: StatusCode.InvalidCredentials, reason: 'throttled' };
    if (input.hmac !== undefined) {
      if (account === undefined) return { ok: false, code: StatusCode.InvalidCredentials, reason: 'no such account' };
      if (input.hmac.header.username !== account.clientUsername) return { ok: false, code: StatusCode.InvalidCredentials, reason: 'wrong HMAC username' };
      if (!verifyHmac(input.hmac.header, account.clientPassword, account.clientNonce, input.hmac.body)) return { ok: false, code: StatusCode.InvalidCredentials, reason: 'HMAC not accepted (wrong credential or stale nonce)' };
      this.authType = AuthType.Hmac;
      if (first) effects.push({ kind: 'authenticated', deviceId: this.deviceId, authType: AuthType.Hmac });
      return { ok: true, first };
    }
    if (this.authType === AuthType.Hmac) return { ok: false, code: StatusCode.MissingCredentials, reason: 'HMAC missing from a message of an HMAC session' };
    const cred = message.header.cred;
    if (cred === undefined) return { ok: false, code: StatusCode.MissingCredentials, reason: 'no credentials' };
    const type = cred.meta?.type ?? AuthType.Basic;
    if (account === undefined) return { ok: false, code: StatusCode.InvalidCredentials, reason: 'no such account' };
    let ok: boolean;
    if (type === AuthType.Md5) {
      // The Data is B64 of the digest (Format b64, the only format DM uses for it).
      ok = verifyMd5Credential(cred.data, account.clientUsername, account.clientPassword, account.clientNonce);
    } else if (type === AuthType.Basic) {
      if (!this.config.allowBasic) return { ok: false, code: StatusCode.InvalidCredentials, reason: 'syncml:auth-basic is not allowed' };
      try {
        const { username, password } = parseBasicCredential(cred.data);
        ok = username === account.clientUsername && password === account.clientPassword;
      } catch {
        ok = false;
      }
    } else return { ok: false, code: StatusCode.InvalidCredentials, reason: `unknown authentication type ${JSON.stringify(type.slice(0, 40))}` };
    // A digest over a nonce the device never got (its first round, a lost reply) is just as wrong as a wrong password: MD5 cannot tell them apart.
    if (!ok) return { ok: false, code: StatusCode.InvalidCredentials, reason: type === AuthType.Md5 ? `${type} credential not accepted (wrong credential or stale nonce)` : `wrong ${type} credential` };
    this.authType = type;
    effects.push({ kind: 'authenticated', deviceId: this.deviceId, authType: this.authType });
    return { ok: true, first };
  }

  private challenge(nonce: Uint8Array, input: ReceiveInput): NonNullable<StatusCommand['chal']> {
    const type = input.hmac !== undefined || this.authType === AuthType.Hmac ? AuthType.Hmac : this.config.allowBasic && input.message.header.cred?.meta?.type === AuthType.Basic ? AuthType.Basic : AuthType.Md5;
    return { meta: { type, format: 'b64', nextNonce: Buffer.from(nonce).toString('base64') } };
  }

  private headerStatus(msgId: string, code: number, chal?: StatusCommand['chal']): StatusCommand {
    const h = { kind: 'Status' as const, cmdId: this.nextCmdId(), msgRef: msgId, cmdRef: '0', cmd: 'SyncHdr', code };
    return chal === undefined ? h : { ...h, chal };
  }

  private handleCommand(command: Command, msgId: string, effects: SessionEffect[]): StatusCommand | undefined {
    const status = (cmd: string, cmdRef: string, code: number): StatusCommand => ({ kind: 'Status', cmdId: this.nextCmdId(), msgRef: msgId, cmdRef, cmd, code });
    switch (command.kind) {
      case 'Status':
        this.handleStatus(command, effects);
        return undefined; // Status is never answered (RepPro <Status>).
      case 'Results':
        return status('Results', command.cmdId, this.resultsCodes.get(command) ?? StatusCode.Ok);
      case 'Alert': {
        const code = command.code;
        // 1200: the Package 1 of a session the device opened on a notification (DM Notification).
        if (code === AlertCode.ClientInitiatedManagement || code === AlertCode.ServerInitiatedManagement || code === AlertCode.NextMessage || code === AlertCode.SessionAbort || code === AlertCode.ClientEvent) {
          return status('Alert', command.cmdId, StatusCode.Ok);
        }
        if (code === AlertCode.GenericAlert) {
          effects.push({ kind: 'generic-alert', deviceId: this.deviceId, ...(command.correlator === undefined ? {} : { correlator: command.correlator }), items: command.items ?? [] });
          return status('Alert', command.cmdId, StatusCode.Ok);
        }
        return status('Alert', command.cmdId, StatusCode.OptionalFeatureNotSupported);
      }
      case 'Replace':
        // Package 1 carries the device's ./DevInfo as a Replace (Protocol "Package 1").
        if (command.items.every((i) => i.source?.locUri.startsWith('./DevInfo/') === true)) {
          for (const item of command.items) this.noteFact(item.source!.locUri, item.data);
          return status('Replace', command.cmdId, StatusCode.Ok);
        }
        return status('Replace', command.cmdId, StatusCode.CommandNotAllowed);
      case 'Unsupported':
        // A SyncML DS command: not part of DM (RepPro "Response Status Codes": 406).
        return command.cmdId === undefined ? undefined : status(command.tag, command.cmdId, StatusCode.OptionalFeatureNotSupported);
      default:
        // Depot has no management tree of its own for a device to change.
        return status(command.kind, command.cmdId, StatusCode.CommandNotAllowed);
    }
  }

  private noteFact(uri: string, data: string | Uint8Array | undefined): void {
    if (typeof data !== 'string' || !(FACT_URIS as readonly string[]).includes(uri)) return;
    this.facts[uri] = data.slice(0, MAX_FACT_LENGTH);
  }

  private handleStatus(status: StatusCommand, effects: SessionEffect[]): void {
    if (status.cmd === 'SyncHdr') return;
    const key = `${status.msgRef}/${status.cmdRef}`;
    const sent = this.sent.get(key);
    if (sent === undefined) {
      effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: `Status ${status.code} refers to MsgRef ${status.msgRef.slice(0, 20)} CmdRef ${status.cmdRef.slice(0, 20)}, which Depot never sent` });
      return;
    }
    this.sent.delete(key);
    if (sent.job === 'alert') return;
    if (sent.job === 'fact') {
      if (status.code === StatusCode.Ok) for (const item of sent.results) this.noteFact(sent.uri!, item.data);
      return;
    }
    if (sent.job === 'child') {
      // One command of a Sequence/Atomic: its code is kept until the container has every answer.
      const parent = this.sent.get(sent.parent!);
      if (parent === undefined) return;
      parent.children![sent.index!] = status.code;
      if (sent.results.length > 0 && parent.results.length < 64) parent.results.push(...sent.results.slice(0, 64 - parent.results.length));
      if (--parent.open! === 0) this.settle(sent.parent!, parent, effects);
      return;
    }
    if (sent.chunk === true) {
      // One chunk of Depot's large object: 213 asks for the next; anything else ends the job with that answer.
      if (status.code === StatusCode.ChunkedItemAccepted) return;
      const job = sent.job;
      for (let i = this.pending.length - 1; i >= 0; i--) if (pendingJobs.get(this.pending[i]!) === job) this.pending.splice(i, 1);
      this.jobDone(job, { code: status.code, items: [] }, effects);
      return;
    }
    if (sent.partial !== undefined) {
      // The device is still sending this Get's large object: its answer counts once the last chunk is in.
      sent.code = status.code;
      this.sent.set(key, sent);
      return;
    }
    if (status.items !== undefined && sent.results.length === 0) sent.results.push(...status.items.slice(0, 64)); // Alert 1102-1104 answers
    if (sent.children !== undefined) {
      sent.code = status.code;
      this.sent.set(key, sent);
      if (--sent.open! === 0) this.settle(key, sent, effects);
      return;
    }
    this.jobDone(sent.job, { code: sent.sizeMismatch === true ? StatusCode.SizeMismatch : status.code, items: sent.results }, effects);
  }

  /** A Sequence/Atomic job with all its answers (or the package ended without some). */
  private settle(key: string, sent: Sent, effects: SessionEffect[]): void {
    this.sent.delete(key);
    for (const [k, s] of this.sent) if (s.parent === key) this.sent.delete(k);
    this.jobDone(sent.job as ServerJob, { code: sent.code ?? null, items: sent.results, children: sent.children! }, effects);
  }

  private jobDone(job: ServerJob, result: JobResult, effects: SessionEffect[]): void {
    effects.push({ kind: 'job-result', deviceId: this.deviceId, jobId: job.id, code: result.code, items: result.items, ...(result.children === undefined ? {} : { children: result.children }) });
    // Follow-ups go out in Depot's next package of this session (never after it ended, never on no answer).
    if (this.ended || result.code === null || job.then === undefined) return;
    const next = job.then(result);
    this.jobs.push(...next);
    for (const j of next) this.pending.push(this.command(j));
  }

  private handleResults(results: ResultsCommand, effects: SessionEffect[]): void {
    // Results come before their Status in the same message (Protocol: Results then Status for Get).
    const msgRef = results.msgRef ?? String(this.serverMsgId);
    const key = `${msgRef}/${results.cmdRef}`;
    const sent = this.sent.get(key);
    if (sent === undefined || sent.job === 'alert') {
      effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: `Results refer to MsgRef ${msgRef.slice(0, 20)} CmdRef ${results.cmdRef.slice(0, 20)}, which is no Get Depot sent` });
      return;
    }
    for (const item of results.items) {
      const data = typeof item.data === 'string' ? item.data : item.data === undefined ? '' : Buffer.from(item.data).toString('base64');
      if (item.moreData === true || sent.partial !== undefined) {
        // DM Protocol "Large Object Handling": chunks with MoreData, Size in the first one's Meta; 213 each, reassembled at the last.
        if (sent.partial === undefined) {
          sent.partial = '';
          sent.expectedSize = item.meta?.size;
        }
        sent.partial += data;
        if (Buffer.byteLength(sent.partial) > 4 * 1024 * 1024) {
          sent.sizeMismatch = true;
          sent.partial = '';
        }
        if (item.moreData === true) {
          this.resultsCodes.set(results, StatusCode.ChunkedItemAccepted);
          continue;
        }
        const whole = sent.partial;
        sent.partial = undefined;
        if (sent.sizeMismatch === true || (sent.expectedSize !== undefined && Buffer.byteLength(whole) !== sent.expectedSize)) {
          sent.sizeMismatch = true;
          this.resultsCodes.set(results, StatusCode.SizeMismatch);
          effects.push({ kind: 'protocol-warning', deviceId: this.deviceId, text: `a large object of ${Buffer.byteLength(whole)} bytes does not match its announced Size ${sent.expectedSize ?? '?'}` });
        } else if (sent.results.length < 64) sent.results.push({ ...item, data: whole, ...(item.meta === undefined ? {} : { meta: item.meta }) });
        // The Get's Status may have come with an earlier chunk: the job is answered now.
        if (sent.code !== undefined && typeof sent.job === 'object') {
          this.sent.delete(key);
          this.jobDone(sent.job, { code: sent.sizeMismatch === true ? StatusCode.SizeMismatch : sent.code, items: sent.results }, effects);
        }
        continue;
      }
      if (sent.results.length < 64) sent.results.push(item);
    }
  }

  /** Commands still without a Status when the client's package ends are failed jobs. */
  private closePackage(effects: SessionEffect[]): void {
    for (const [key, sent] of this.sent) {
      if (!this.sent.has(key)) continue;
      this.sent.delete(key);
      if (typeof sent.job !== 'object') continue;
      if (sent.children !== undefined) this.settle(key, sent, effects);
      else this.jobDone(sent.job, { code: null, items: [] }, effects);
    }
  }

  private command(job: ServerJob): Outgoing {
    let cmd: Outgoing;
    if (job.kind === 'Sequence' || job.kind === 'Atomic') {
      cmd = { kind: job.kind, cmdId: '', commands: (job.children ?? []).map((c) => this.command(c) as Command) };
    } else if (job.kind === 'Alert') {
      cmd = { kind: 'Alert', cmdId: '', ...(job.alertCode === undefined ? {} : { code: job.alertCode }), ...(job.items === undefined ? {} : { items: job.items }) };
    } else {
      cmd = { kind: job.kind, cmdId: '', ...(job.correlator === undefined ? {} : { correlator: job.correlator }), items: job.items ?? [itemOf(job)] };
    }
    pendingJobs.set(cmd, job);
    return cmd;
  }

  private remember(msgId: string, command: Outgoing): void {
    const job = pendingJobs.get(command);
    if (command.kind === 'Alert' && job === undefined) {
      this.sent.set(`${msgId}/${command.cmdId}`, { msgId, cmdId: command.cmdId, job: 'alert', results: [] });
      return;
    }
    if (job === undefined) return;
    const isFact = job.id.startsWith('fact:');
    const key = `${msgId}/${command.cmdId}`;
    if (command.kind === 'Sequence' || command.kind === 'Atomic') {
      // The container and each command in it get a Status (RepPro <Sequence>, <Atomic>).
      const n = command.commands.length;
      this.sent.set(key, { msgId, cmdId: command.cmdId, job, results: [], children: new Array<number | null>(n).fill(null), open: n + 1 });
      command.commands.forEach((c, index) => this.sent.set(`${msgId}/${c.cmdId}`, { msgId, cmdId: c.cmdId!, job: 'child', results: [], parent: key, index }));
      return;
    }
    this.sent.set(key, { msgId, cmdId: command.cmdId, job: isFact ? 'fact' : job, uri: job.uri, results: [], ...(chunks.has(command) ? { chunk: true } : {}) });
  }

  private nextCmdId(): string {
    this.cmdId++;
    return String(this.cmdId);
  }

  /**
   * Depot's Cred in SyncHdr (OMA-TS-DM_Security-V1_2, server authentication with syncml:auth-md5):
   * the digest over the server ID, server password and the device's nonce for the server, sent to
   * an authenticated device until it accepts it. Never to a stranger: it would tell the account exists.
   * HMAC sessions carry x-syncml-hmac on the HTTP response instead.
   */
  private serverCred(): Pick<SyncHdr, 'cred'> | undefined {
    const server = this.server;
    if (server === undefined || !this.authenticated || this.authType === AuthType.Hmac || this.serverAccepted) return undefined;
    return { cred: { meta: { type: AuthType.Md5, format: 'b64' }, data: md5Credential(server.serverId, server.password, server.nonce) } };
  }

  private header(input: ReceiveInput): SyncHdr {
    this.serverMsgId++;
    const h = input.message.header;
    return {
      verDTD: '1.2',
      verProto: 'DM/1.2',
      sessionId: this.sessionId,
      msgId: String(this.serverMsgId),
      target: { locUri: h.source.locUri },
      source: { locUri: this.config.serverUri },
      ...(this.serverCred() ?? {}),
      ...(input.respUri === undefined ? {} : { respUri: input.respUri }),
      meta: { maxMsgSize: this.config.ownMaxMsgSize },
    };
  }

  private message(input: ReceiveInput, commands: readonly Outgoing[], final: boolean): SyncMLMessage {
    // CmdIDs are unique within a message; Depot numbers them across the session, which also is.
    return { header: this.header(input), commands: commands.map((c) => (c.cmdId === '' ? this.numbered(c) : c)), final };
  }

  private numbered(c: Outgoing): Outgoing {
    const job = pendingJobs.get(c);
    let copy: Outgoing;
    if (c.kind === 'Sequence' || c.kind === 'Atomic') {
      const cmdId = this.nextCmdId();
      copy = { ...c, cmdId, commands: c.commands.map((child) => this.numbered(child as Outgoing) as Command) };
    } else copy = { ...c, cmdId: this.nextCmdId() };
    if (job !== undefined) pendingJobs.set(copy, job);
    if (chunks.has(c)) chunks.add(copy);
    if (chunkRest.has(c)) chunkRest.add(copy);
    const total = chunkTotal.get(c);
    if (total !== undefined) chunkTotal.set(copy, total);
    return copy;
  }

  /**
   * As many of `outgoing` as fit in the client's MaxMsgSize, in order (RepPro MaxMsgSize: the
   * sender never exceeds it); the rest wait for the client's Alert 1222.
   */
  private fit(input: ReceiveInput, outgoing: Outgoing[]): { reply: SyncMLMessage; rest: Outgoing[]; encoded?: Uint8Array } | undefined {
    const header = this.header(input);
    const numbered = outgoing.map((c) => (c.cmdId === '' ? this.numbered(c) : c));
    const max = this.clientMaxMsgSize;
    const sizeOf = (commands: readonly Outgoing[], final: boolean): number => encodeSyncML({ header, commands, final }, input.encoding).length;
    for (;;) {
      // The usual case: everything fits. The bytes measured are the reply's: the edge sends them as they are.
      const whole = { header, commands: numbered, final: true };
      const encoded = encodeSyncML(whole, input.encoding);
      if (encoded.length <= max) return { reply: whole, rest: [], encoded };
      let n = 0;
      while (n < numbered.length && sizeOf(numbered.slice(0, n + 1), false) <= max) n++;
      if (n === numbered.length) return { reply: { header, commands: numbered, final: false }, rest: [] };
      const next = numbered[n]!;
      const statuses = numbered.filter((c) => c.kind === 'Status');
      const job = pendingJobs.get(next);
      if (next.kind !== 'Status' && job !== undefined && sizeOf([...statuses, next], false) > max) {
        // Larger than any message the client takes: split it (Large Object Handling) or refuse it.
        const split = this.split(next, (cmd) => sizeOf([...numbered.slice(0, n), cmd], false) <= max);
        if (split === 'refused') {
          this.refused.push(job);
          numbered.splice(n, 1);
          continue;
        }
        if (split !== undefined) return { reply: { header, commands: [...numbered.slice(0, n), split.first], final: false }, rest: [split.rest, ...numbered.slice(n + 1)] };
      }
      if (n === 0) return undefined;
      return { reply: { header, commands: numbered.slice(0, n), final: false }, rest: numbered.slice(n) };
    }
  }

  /**
   * DM Protocol "Large Object Handling": an item command whose one Item's Data does not fit goes
   * in chunks, the first with Meta Size (the whole object's bytes) and each but the last with
   * MoreData; the client answers 213 to each. Only for a client that announced MaxObjSize at
   * least the object's size. 'refused' when it cannot go at all; undefined when not even a small
   * chunk fits after what is already in this message (it goes first in the next one).
   */
  private split(command: Outgoing, fits: (cmd: Outgoing) => boolean): { first: Outgoing; rest: Outgoing } | 'refused' | undefined {
    if (command.kind === 'Status' || command.kind === 'Results' || command.kind === 'Alert' || command.kind === 'Sequence' || command.kind === 'Atomic' || command.kind === 'Get') return 'refused';
    return this.splitItem(command as ItemCommand, fits);
  }

  private splitItem(command: ItemCommand, fits: (cmd: Outgoing) => boolean): { first: Outgoing; rest: Outgoing } | 'refused' | undefined {
    const item = command.items.length === 1 ? command.items[0]! : undefined;
    if (item === undefined || typeof item.data !== 'string') return 'refused';
    const data = item.data;
    const continuing = chunkRest.has(command);
    const total = continuing ? (chunkTotal.get(command) ?? Buffer.byteLength(data)) : Buffer.byteLength(data);
    if (this.clientMaxObjSize === undefined || total > this.clientMaxObjSize) return 'refused';
    const chunkOf = (len: number): ItemCommand => ({
      ...command,
      items: [{ ...item, data: data.slice(0, len), moreData: true, ...(continuing ? {} : { meta: { ...item.meta, size: total } }) }],
    });
    let lo = 0;
    let hi = data.length - 1;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(chunkOf(mid))) lo = mid;
      else hi = mid - 1;
    }
    if (lo < 16) return undefined;
    const first = chunkOf(lo);
    const restItem = { ...item, data: data.slice(lo) };
    if (continuing && restItem.meta?.size !== undefined) delete (restItem as { meta?: Meta }).meta;
    const rest: ItemCommand = { ...command, cmdId: '', items: [restItem] };
    const job = pendingJobs.get(command)!;
    pendingJobs.set(first, job);
    pendingJobs.set(rest, job);
    chunks.add(first);
    chunkRest.add(rest);
    chunkTotal.set(rest, total);
    return { first, rest };
  }
}

/** Chunks of a large object Depot sends, each but the last (their Status is 213). */
const chunks = new WeakSet<object>();
/** The remainder of a large object after a chunk (no Size of its own: the first chunk had it). */
const chunkRest = new WeakSet<object>();
const chunkTotal = new WeakMap<object, number>();

type FullConfig = Required<Omit<SessionConfig, 'allowBasic'>> & { allowBasic: boolean };
/** Each SessionConfig with its defaults, made once per config object: an edge passes the same one to every session. */
const fullConfigs = new WeakMap<SessionConfig, FullConfig>();

function withDefaults(config: SessionConfig): FullConfig {
  let full = fullConfigs.get(config);
  if (full === undefined) {
    full = {
      serverUri: config.serverUri,
      allowBasic: config.allowBasic ?? false,
      timeoutMs: config.timeoutMs ?? 5 * 60_000,
      unauthenticatedTimeoutMs: config.unauthenticatedTimeoutMs ?? 30_000,
      defaultMaxMsgSize: config.defaultMaxMsgSize ?? 16 * 1024,
      ownMaxMsgSize: config.ownMaxMsgSize ?? 64 * 1024,
      maxAuthAttempts: config.maxAuthAttempts ?? 3,
      nonce: config.nonce ?? (() => newNonce()),
    };
    fullConfigs.set(config, full);
  }
  return full;
}

/** The one Item of an item command built from a job's uri, sourceUri, data, format and type. */
function itemOf(job: ServerJob): Item {
  const meta: Meta | undefined = job.format !== undefined || job.type !== undefined ? { ...(job.format === undefined ? {} : { format: job.format }), ...(job.type === undefined ? {} : { type: job.type }) } : undefined;
  return { target: { locUri: job.uri }, ...(job.sourceUri === undefined ? {} : { source: { locUri: job.sourceUri } }), ...(job.data === undefined ? {} : { data: job.data }), ...(meta === undefined ? {} : { meta }) };
}

/** Which job a not-yet-sent command carries (kept beside the command, not in the message model). */
const pendingJobs = new WeakMap<object, ServerJob>();

/** Reads a nonce from the base64 in a NextNonce (for clients and tests). */
export function nonceFromChallenge(nextNonce: string): Uint8Array {
  return decodeBase64Strict(nextNonce, 'NextNonce');
}
