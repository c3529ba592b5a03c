/**
 * A simulated OMA DM 1.2 phone: the client side of a DM session, written from
 * OMA-TS-DM_Protocol-V1_2 and OMA-TS-DM_Security-V1_2 independently of Depot's server engine
 * (src/omadm/session.ts); it shares only the codecs, the message types and the auth values.
 *
 * One `runSession` is one client-initiated session: Package 1 (Alert 1201 + Replace of
 * ./DevInfo) with MD5 credentials over the last nonce the server gave (or an x-syncml-hmac
 * header), Package 1 again after a 401/407 with the new nonce, then answers to every server
 * message (Get/Replace/Exec/Alert) until the server sends a package of only Status, or aborts.
 *
 * With `server` credentials in its profile the phone also authenticates the server
 * (OMA-TS-DM_Security-V1_2 "Authentication", both ways): each server message must carry a
 * syncml:auth-md5 Cred over the server ID, server password and the nonce the phone gave the server
 * (until the phone accepted one in this session), or an x-syncml-hmac over that nonce on every
 * message of an HMAC session. A missing (407) or wrong (401) one is answered with a Chal carrying a
 * new nonce and nothing of that message is run; after the second refusal the phone ends the
 * session (Alert 1223). Once the server is accepted, the phone's 212 carries a Chal with the next
 * nonce: one nonce per session.
 */
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { AuthType, formatHmacHeader, hmacMac, md5Credential, newNonce, parseHmacHeader, verifyHmac, verifyMd5Credential } from '../../omadm/auth.js';
import { decodeBase64Strict } from '../../omadm/auth.js';
import { AlertCode, StatusCode } from '../../omadm/status-codes.js';
import { SYNCML_DM_WBXML, SYNCML_DM_XML, decodeSyncML, encodeSyncML } from '../../omadm/syncml.js';
import type { AlertCommand, Command, ContainerCommand, Item, ItemCommand, StatusCommand, SyncMLEncoding, SyncMLMessage } from '../../omadm/syncml.js';

export interface DmPhoneProfile {
  readonly deviceId: string;
  readonly username: string;
  readonly password: string;
  readonly encoding: SyncMLEncoding;
  readonly auth: 'md5' | 'hmac';
  /** What the phone announces; it refuses to read anything larger. */
  readonly maxMsgSize?: number;
  /** Send the legacy SyncML media types instead of DM 1.2's. */
  readonly legacyMediaType?: boolean;
  /** The management tree: leaf URI → value. */
  readonly tree: Readonly<Record<string, string>>;
  /** Announced in SyncHdr Meta: the phone takes large objects (DM Protocol "Large Object Handling") up to this size. */
  readonly maxObjSize?: number;
  /** Answers an Alert 1101 (Continue or Abort): the simulated user. Default: continue. */
  readonly userConfirms?: () => boolean;
  /**
   * The server's credentials the phone checks (its DM account's server ID and server password);
   * `nonce` is the first nonce the server must use (provisioned with them, default empty).
   * Without them the phone does not authenticate the server, as before.
   */
  readonly server?: { readonly serverId: string; readonly password: string; readonly nonce?: Uint8Array };
}

/**
 * How a phone's extensions plug in (SCOMO client, notification/provisioning clients): Exec on
 * nodes they own, and Generic Alerts to send in the next session. Kept small on purpose.
 */
export interface DmPhoneExtension {
  /** The Status code for an Exec of `uri`, or undefined when the node is not this extension's. */
  exec?(uri: string, command: ItemCommand, context: { readonly confirmed: boolean | undefined }): number | undefined;
}

export interface DmSessionReport {
  readonly authenticated: boolean;
  readonly messages: number;
  readonly ended: 'completed' | 'server-abort' | 'auth-refused' | 'server-refused';
  /** The phone checked and accepted the server's credentials in this session (only with `server` in the profile). */
  readonly serverAuthenticated?: boolean;
  /** The server's commands as received, for tests. */
  readonly commands: readonly Command[];
}

export interface DmTransport {
  /** POSTs one message; resolves to the response body and its Content-Type. */
  post(url: string, body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; body: Buffer; contentType: string; hmac?: string }>;
}

/** HTTPS trusting the given roots (Depot's CA), or plain HTTP for lab URLs. */
export function httpTransport(ca?: string | readonly string[]): DmTransport {
  return {
    post(url, body, headers) {
      return new Promise((resolve, reject) => {
        const u = new URL(url);
        const make = u.protocol === 'https:' ? httpsRequest : httpRequest;
        const req = make(u, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, ...(u.protocol === 'https:' && ca !== undefined ? { ca: typeof ca === 'string' ? ca : [...ca] } : {}) }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          const hmac = res.headers['x-syncml-hmac'];
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), contentType: String(res.headers['content-type'] ?? ''), ...(typeof hmac === 'string' ? { hmac } : {}) }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}

const MAX_AUTH_ROUNDS = 3;
/** Server credentials refused this many times in a session: the phone ends it. */
const MAX_SERVER_AUTH_ROUNDS = 2;
const MAX_MESSAGES = 100;

export class DmPhone {
  /** The nonce the server gave in its last Chal (empty until the first one). */
  nonce: Uint8Array = new Uint8Array();
  /** The nonce the phone gave the server in its last Chal: the server's next Cred or MAC must be over it. */
  serverNonce: Uint8Array;
  /** Every server nonce this phone issued, oldest first (for tests of the rotation). */
  readonly serverNonces: Uint8Array[] = [];
  private readonly tree: Map<string, string>;
  /** Interior nodes added by the server (Add with Format node); others are implied by their leaves. */
  private readonly interior = new Set<string>();
  private sessionCounter = 0;
  private readonly extensions: DmPhoneExtension[] = [];
  /** Generic Alerts not yet acknowledged by the server (sent in every session until a 200 comes back). */
  private readonly outbox: AlertCommand[] = [];
  /** A large object being received: the target URI, the data so far and the announced Size. */
  private incoming: { uri: string; data: string; size: number | undefined } | undefined;
  /** What the user answered to the last Alert 1101 of the message being processed. */
  private confirmed: boolean | undefined;

  constructor(
    readonly profile: DmPhoneProfile,
    private readonly transport: DmTransport,
  ) {
    this.tree = new Map(Object.entries(profile.tree));
    this.serverNonce = profile.server?.nonce ?? new Uint8Array();
  }

  /** Whether a server message proves the server knows its password (Security "Authentication", server side). */
  private serverProved(reply: SyncMLMessage, hmac: string | undefined, body: Uint8Array): { ok: boolean; code: number } {
    const server = this.profile.server!;
    if (this.profile.auth === 'hmac') {
      if (hmac === undefined) return { ok: false, code: StatusCode.MissingCredentials };
      try {
        const header = parseHmacHeader(hmac);
        return { ok: header.username === server.serverId && verifyHmac(header, server.password, this.serverNonce, body), code: StatusCode.InvalidCredentials };
      } catch {
        return { ok: false, code: StatusCode.InvalidCredentials };
      }
    }
    const cred = reply.header.cred;
    if (cred === undefined) return { ok: false, code: StatusCode.MissingCredentials };
    if ((cred.meta?.type ?? AuthType.Basic) !== AuthType.Md5) return { ok: false, code: StatusCode.InvalidCredentials };
    return { ok: verifyMd5Credential(cred.data, server.serverId, server.password, this.serverNonce), code: StatusCode.InvalidCredentials };
  }

  /** A fresh nonce for the server's next credential, sent in a Chal (NextNonce, b64). */
  private challengeServer(): NonNullable<StatusCommand['chal']> {
    this.serverNonce = newNonce();
    this.serverNonces.push(this.serverNonce);
    return { meta: { type: this.profile.auth === 'hmac' ? AuthType.Hmac : AuthType.Md5, format: 'b64', nextNonce: Buffer.from(this.serverNonce).toString('base64') } };
  }

  get(uri: string): string | undefined {
    return this.tree.get(uri);
  }

  /** Sets a leaf (extensions keep their state in the tree, as a real DM client does). */
  set(uri: string, value: string): void {
    this.tree.set(uri, value);
  }

  delete(uri: string): void {
    for (const key of [...this.tree.keys()]) if (key === uri || key.startsWith(`${uri}/`)) this.tree.delete(key);
    for (const key of [...this.interior]) if (key === uri || key.startsWith(`${uri}/`)) this.interior.delete(key);
  }

  /** A node exists: a leaf, an interior node added, or one implied by a leaf below it. */
  has(uri: string): boolean {
    if (this.tree.has(uri) || this.interior.has(uri)) return true;
    const prefix = `${uri}/`;
    for (const key of this.tree.keys()) if (key.startsWith(prefix)) return true;
    for (const key of this.interior) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** Child names of an interior node, sorted. */
  children(uri: string): string[] {
    const prefix = `${uri}/`;
    const names = new Set<string>();
    for (const key of [...this.tree.keys(), ...this.interior]) if (key.startsWith(prefix)) names.add(key.slice(prefix.length).split('/')[0]!);
    return [...names].sort();
  }

  /** Adds an interior node (and the ones above it). */
  addNode(uri: string): void {
    const parts = uri.split('/');
    for (let i = 2; i <= parts.length; i++) this.interior.add(parts.slice(0, i).join('/'));
  }

  extend(extension: DmPhoneExtension): void {
    this.extensions.push(extension);
  }

  /** Queues a Generic Alert (1226) for the next session; it is sent until the server answers 200. */
  queueGenericAlert(correlator: string | undefined, item: Item): void {
    this.outbox.push({ kind: 'Alert', cmdId: '', code: AlertCode.GenericAlert, ...(correlator === undefined ? {} : { correlator }), items: [item] });
  }

  get pendingAlerts(): number {
    return this.outbox.length;
  }

  /**
   * One session. `start` is for a session the server asked for by notification
   * (src/sim/omadm/notification-client.ts): its SessionID and Alert 1200 (DM Notification)
   * instead of the phone's own counter and 1201; `serverInitiated` alone asks for the 1200.
   */
  async runSession(serverUrl: string, start: { readonly sessionId?: string; readonly alert?: number; readonly serverInitiated?: boolean } = {}): Promise<DmSessionReport> {
    this.sessionCounter = (this.sessionCounter % 0xffff) + 1;
    const sessionId = start.sessionId ?? this.sessionCounter.toString(16).toUpperCase();
    const alert = start.alert ?? (start.serverInitiated === true ? AlertCode.ServerInitiatedManagement : AlertCode.ClientInitiatedManagement);
    let url = serverUrl;
    let msgId = 0;
    let authRounds = 0;
    let authenticated = false;
    let serverAuthenticated = false;
    let serverRounds = 0;
    const received: Command[] = [];
    const alerts = [...this.outbox];
    const alertCmdIds = new Map<string, AlertCommand>();
    const pkg1 = (): Command[] => {
      const cmds = this.package1(alert);
      alertCmdIds.clear();
      for (const a of alerts) {
        const cmdId = String(cmds.length + 1);
        alertCmdIds.set(cmdId, a);
        cmds.push({ ...a, cmdId });
      }
      return cmds;
    };
    let outgoing: Command[] = pkg1();
    let final = true;
    for (let messages = 1; messages <= MAX_MESSAGES; messages++) {
      msgId++;
      const message: SyncMLMessage = {
        header: {
          verDTD: '1.2', verProto: 'DM/1.2', sessionId, msgId: String(msgId),
          target: { locUri: serverUrl }, source: { locUri: this.profile.deviceId },
          // Credentials in every message until the server accepts them (Security "Authentication").
          ...(!authenticated && this.profile.auth === 'md5' ? { cred: { meta: { type: AuthType.Md5, format: 'b64' }, data: md5Credential(this.profile.username, this.profile.password, this.nonce) } } : {}),
          meta: { maxMsgSize: this.profile.maxMsgSize ?? 16 * 1024, ...(this.profile.maxObjSize === undefined ? {} : { maxObjSize: this.profile.maxObjSize }) },
        },
        commands: outgoing,
        final,
      };
      const body = encodeSyncML(message, this.profile.encoding);
      const headers: Record<string, string> = { 'content-type': this.mediaType() };
      if (this.profile.auth === 'hmac') headers['x-syncml-hmac'] = formatHmacHeader({ algorithm: 'MD5', username: this.profile.username, mac: hmacMac(this.profile.username, this.profile.password, this.nonce, body) });
      const res = await this.transport.post(url, body, headers);
      if (res.status !== 200) throw new Error(`the DM server answered HTTP ${res.status}`);
      if (res.body.length > (this.profile.maxMsgSize ?? 16 * 1024)) throw new Error(`the DM server sent ${res.body.length} bytes, over MaxMsgSize`);
      const reply = decodeSyncML(res.body, this.profile.encoding);
      const report = (ended: DmSessionReport['ended']): DmSessionReport => ({ authenticated, messages, ended, commands: received, ...(this.profile.server === undefined ? {} : { serverAuthenticated }) });
      if (reply.header.respUri !== undefined) url = reply.header.respUri;
      const clientRefused = reply.commands.some((c) => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.msgRef === String(msgId) && (c.code === StatusCode.InvalidCredentials || c.code === StatusCode.MissingCredentials));
      const serverAbort = reply.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.SessionAbort);
      let serverHdr: { code: number; chal?: NonNullable<StatusCommand['chal']> } | undefined;
      if (this.profile.server !== undefined && !clientRefused && !serverAbort && (this.profile.auth === 'hmac' || !serverAuthenticated)) {
        const proof = this.serverProved(reply, res.hmac, res.body);
        if (!proof.ok) {
          // Nothing of this message runs. A new nonce, in case the server's was only stale; a second refusal ends the session.
          serverRounds++;
          const refusal: StatusCommand = { kind: 'Status', cmdId: '1', msgRef: reply.header.msgId, cmdRef: '0', cmd: 'SyncHdr', code: proof.code, chal: this.challengeServer() };
          if (serverRounds >= MAX_SERVER_AUTH_ROUNDS) {
            msgId++;
            const abort: SyncMLMessage = {
              header: { verDTD: '1.2', verProto: 'DM/1.2', sessionId, msgId: String(msgId), target: { locUri: serverUrl }, source: { locUri: this.profile.deviceId } },
              commands: [refusal, { kind: 'Alert', cmdId: '2', code: AlertCode.SessionAbort }],
              final: true,
            };
            const abortBody = encodeSyncML(abort, this.profile.encoding);
            const abortHeaders: Record<string, string> = { 'content-type': this.mediaType() };
            if (this.profile.auth === 'hmac') abortHeaders['x-syncml-hmac'] = formatHmacHeader({ algorithm: 'MD5', username: this.profile.username, mac: hmacMac(this.profile.username, this.profile.password, this.nonce, abortBody) });
            await this.transport.post(url, abortBody, abortHeaders).catch(() => undefined);
            return report('server-refused');
          }
          const hdr = reply.commands.find((c): c is StatusCommand => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.msgRef === String(msgId));
          if (hdr?.chal?.meta.nextNonce !== undefined) this.nonce = decodeBase64Strict(hdr.chal.meta.nextNonce, 'NextNonce');
          if (hdr !== undefined && (hdr.code === StatusCode.AuthenticationAccepted || hdr.code === StatusCode.Ok)) authenticated = true;
          outgoing = [refusal];
          final = true;
          continue;
        }
        if (!serverAuthenticated) {
          serverAuthenticated = true;
          // Accepted: 212 with the nonce for the server's next credential (rotated every session).
          serverHdr = { code: StatusCode.AuthenticationAccepted, chal: this.challengeServer() };
        }
      }
      received.push(...reply.commands.filter((c) => c.kind !== 'Status'));

      const hdr = reply.commands.find((c): c is StatusCommand => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.msgRef === String(msgId));
      if (hdr?.chal?.meta.nextNonce !== undefined) this.nonce = decodeBase64Strict(hdr.chal.meta.nextNonce, 'NextNonce');
      if (serverAbort) return report('server-abort');
      if (hdr !== undefined && (hdr.code === StatusCode.InvalidCredentials || hdr.code === StatusCode.MissingCredentials)) {
        if (++authRounds >= MAX_AUTH_ROUNDS) return report('auth-refused');
        outgoing = pkg1(); // the refused package was not processed: send it again with the new nonce
        final = true;
        continue;
      }
      if (hdr !== undefined && (hdr.code === StatusCode.AuthenticationAccepted || hdr.code === StatusCode.Ok)) authenticated = true;
      // A Generic Alert the server answered 200 is delivered (DM Protocol "Generic Alert": the client keeps it until then).
      if (msgId === 1 || authenticated) {
        for (const c of reply.commands) {
          if (c.kind !== 'Status' || c.cmd !== 'Alert' || c.code !== StatusCode.Ok) continue;
          const alert = alertCmdIds.get(c.cmdRef);
          const i = alert === undefined ? -1 : this.outbox.indexOf(alert);
          if (i >= 0) this.outbox.splice(i, 1);
        }
      }

      const answers = this.answer(reply);
      if (serverHdr !== undefined) answers[0] = { ...(answers[0] as StatusCommand), ...serverHdr };
      const hasCommands = reply.commands.some((c) => c.kind !== 'Status');
      // A package with only Status and Final ends the session; the client sends nothing (Protocol "Session Completion").
      if (reply.final && !hasCommands) return report('completed');
      outgoing = answers;
      final = true;
    }
    throw new Error(`session longer than ${MAX_MESSAGES} messages`);
  }

  private mediaType(): string {
    if (this.profile.legacyMediaType === true) return this.profile.encoding === 'xml' ? 'application/vnd.syncml+xml' : 'application/vnd.syncml+wbxml';
    return this.profile.encoding === 'xml' ? SYNCML_DM_XML : SYNCML_DM_WBXML;
  }

  private package1(alert: number): Command[] {
    const devInfo: Item[] = ['DevId', 'Man', 'Mod', 'DmV', 'Lang']
      .map((leaf) => `./DevInfo/${leaf}`)
      .filter((uri) => this.tree.has(uri))
      .map((uri) => ({ source: { locUri: uri }, data: this.tree.get(uri)! }));
    const alertCommand: Command = { kind: 'Alert', cmdId: '1', code: alert };
    // A Replace needs at least one Item (RepPro <Replace>): a phone with no ./DevInfo sends only the Alert.
    return devInfo.length === 0 ? [alertCommand] : [alertCommand, { kind: 'Replace', cmdId: '2', items: devInfo }];
  }

  /** Status for the header and each command, Results for Gets, Alert 1222 if the server's package goes on. */
  private answer(reply: SyncMLMessage): Command[] {
    const out: Command[] = [];
    let cmdId = 0;
    const id = (): string => String(++cmdId);
    const msgRef = reply.header.msgId;
    out.push({ kind: 'Status', cmdId: id(), msgRef, cmdRef: '0', cmd: 'SyncHdr', code: StatusCode.Ok });
    this.confirmed = undefined;
    for (const c of reply.commands) this.run(c, msgRef, out, id);
    if (!reply.final) out.push({ kind: 'Alert', cmdId: id(), code: AlertCode.NextMessage });
    return out;
  }

  /** Runs one server command; pushes its Status (and Results); returns the Status code. */
  private run(c: Command, msgRef: string, out: Command[], id: () => string, skip = false): number | undefined {
    const status = (code: number, items?: Item[]): number => {
      out.push({ kind: 'Status', cmdId: id(), msgRef, cmdRef: c.cmdId ?? '', cmd: c.kind === 'Unsupported' ? c.tag : c.kind, code, ...(items === undefined ? {} : { items }) });
      return code;
    };
    if (c.kind === 'Status' || c.kind === 'Results' || c.kind === 'Unsupported') return undefined;
    if (skip) return status(StatusCode.NotExecuted);
    if ((c.kind === 'Add' || c.kind === 'Replace') && c.items.length === 1 && (c.items[0]!.moreData === true || this.incoming !== undefined)) {
      // Large Object Handling: chunks are kept (213) until the one without MoreData; then the Size must match.
      const item = c.items[0]!;
      const uri = item.target?.locUri ?? '';
      const data = typeof item.data === 'string' ? item.data : '';
      if (this.incoming === undefined) {
        if (this.profile.maxObjSize === undefined) return status(StatusCode.OptionalFeatureNotSupported);
        if ((item.meta?.size ?? 0) > this.profile.maxObjSize) return status(StatusCode.RequestEntityTooLarge);
        this.incoming = { uri, data: '', size: item.meta?.size };
      } else if (this.incoming.uri !== uri) {
        this.incoming = undefined;
        return status(StatusCode.IncompleteCommand);
      }
      this.incoming.data += data;
      if (item.moreData === true) return status(StatusCode.ChunkedItemAccepted);
      const whole = this.incoming;
      this.incoming = undefined;
      if (whole.size !== undefined && Buffer.byteLength(whole.data) !== whole.size) return status(StatusCode.SizeMismatch);
      return this.run({ ...c, items: [{ ...item, data: whole.data, moreData: false }] }, msgRef, out, id);
    }
    switch (c.kind) {
      case 'Get': {
        const raw = c.items[0]?.target?.locUri ?? '';
        const [uri, query] = raw.split('?') as [string, string | undefined];
        if (query === 'list=Struct') {
          // DM 1.2 Protocol "Get ?list=Struct": one Item per node of the subtree, without Data.
          const base = uri === '.' || uri === '' ? '.' : uri;
          if (base !== '.' && !this.has(base)) return status(StatusCode.NotFound);
          const nodes = new Set<string>([base]);
          for (const key of [...this.tree.keys(), ...this.interior]) {
            if (base !== '.' && !key.startsWith(`${base}/`)) continue;
            const parts = key.split('/');
            for (let i = 2; i <= parts.length; i++) nodes.add(parts.slice(0, i).join('/'));
          }
          const code = status(StatusCode.Ok);
          out.push({ kind: 'Results', cmdId: id(), msgRef, cmdRef: c.cmdId, items: [...nodes].sort().slice(0, 60).map((n) => ({ source: { locUri: n } })) });
          return code;
        }
        const value = this.tree.get(uri);
        if (value === undefined && this.has(uri)) {
          // An interior node's value is its child names (Format node).
          const code = status(StatusCode.Ok);
          out.push({ kind: 'Results', cmdId: id(), msgRef, cmdRef: c.cmdId, items: [{ source: { locUri: uri }, meta: { format: 'node' }, data: this.children(uri).join('/') }] });
          return code;
        }
        const code = status(value === undefined ? StatusCode.NotFound : StatusCode.Ok);
        if (value !== undefined) out.push({ kind: 'Results', cmdId: id(), msgRef, cmdRef: c.cmdId, items: [{ source: { locUri: uri }, data: value }] });
        return code;
      }
      case 'Replace': {
        for (const item of c.items) if (item.target !== undefined && typeof item.data === 'string') this.tree.set(item.target.locUri, item.data);
        return status(StatusCode.Ok);
      }
      case 'Add': {
        let code: number = StatusCode.Ok;
        for (const item of c.items) {
          const uri = item.target?.locUri;
          if (uri === undefined) { code = StatusCode.IncompleteCommand; continue; }
          if (this.has(uri)) { code = StatusCode.AlreadyExists; continue; }
          const parent = uri.slice(0, uri.lastIndexOf('/'));
          if (parent !== '.' && !this.has(parent)) { code = StatusCode.NotFound; continue; }
          if (item.meta?.format === 'node') this.interior.add(uri);
          else this.tree.set(uri, typeof item.data === 'string' ? item.data : '');
        }
        return status(code);
      }
      case 'Delete': {
        let code: number = StatusCode.Ok;
        for (const item of c.items) {
          const uri = item.target?.locUri ?? '';
          if (!this.has(uri)) code = StatusCode.NotFound;
          else this.delete(uri);
        }
        return status(code);
      }
      case 'Copy': {
        const item = c.items[0];
        const from = item?.source?.locUri;
        const to = item?.target?.locUri;
        if (from === undefined || to === undefined) return status(StatusCode.IncompleteCommand);
        const value = this.tree.get(from);
        if (value === undefined) return status(StatusCode.NotFound);
        const existed = this.tree.has(to);
        this.tree.set(to, value);
        return status(existed ? StatusCode.Ok : StatusCode.ItemAdded);
      }
      case 'Exec': {
        const uri = c.items[0]?.target?.locUri ?? '';
        for (const ext of this.extensions) {
          const code = ext.exec?.(uri, c, { confirmed: this.confirmed });
          if (code !== undefined) return status(code);
        }
        return status(this.tree.has(uri) ? StatusCode.Ok : StatusCode.NotFound);
      }
      case 'Alert': {
        if (c.code === AlertCode.ContinueOrAbort) {
          // Protocol "User Interaction": 200 to go on, 304 when the user says no.
          this.confirmed = this.profile.userConfirms?.() ?? true;
          return status(this.confirmed ? StatusCode.Ok : StatusCode.NotModified);
        }
        if (c.code === AlertCode.TextInput) return status(StatusCode.Ok, [{ data: 'yes' }]);
        if (c.code === AlertCode.SingleChoice || c.code === AlertCode.MultipleChoice) return status(StatusCode.Ok, [{ data: '1' }]);
        return status(c.code === AlertCode.NextMessage || c.code === AlertCode.Display ? StatusCode.Ok : StatusCode.OptionalFeatureNotSupported);
      }
      case 'Sequence':
        return this.runContainer(c, msgRef, out, id, status);
      case 'Atomic':
        return this.runContainer(c, msgRef, out, id, status);
      default:
        return status(StatusCode.OptionalFeatureNotSupported);
    }
  }

  /**
   * Sequence: in order, and after a failure the rest are not executed (215). Atomic: all or
   * nothing: on a failure the tree goes back to what it was, executed commands get 216 (rolled
   * back), the Atomic 507 (RepPro <Atomic>, <Sequence>).
   */
  private runContainer(c: ContainerCommand, msgRef: string, out: Command[], id: () => string, status: (code: number) => number): number {
    const atomic = c.kind === 'Atomic';
    const snapshot = atomic ? { tree: new Map(this.tree), interior: new Set(this.interior) } : undefined;
    const containerAt = out.length;
    const code = status(StatusCode.Ok);
    const firstChild = out.length;
    let failed = false;
    for (const child of c.commands) {
      const r = this.run(child, msgRef, out, id, failed);
      if (r !== undefined && !failed && (r < 200 || r >= 300)) failed = true;
    }
    if (atomic && failed && snapshot) {
      this.tree.clear();
      for (const [k, v] of snapshot.tree) this.tree.set(k, v);
      this.interior.clear();
      for (const k of snapshot.interior) this.interior.add(k);
      for (let i = firstChild; i < out.length; i++) {
        const s = out[i]!;
        if (s.kind === 'Status' && s.code >= 200 && s.code < 300) out[i] = { ...s, code: StatusCode.AtomicRollBackOk };
      }
      out[containerAt] = { ...(out[containerAt] as StatusCommand), code: StatusCode.AtomicFailed };
      return StatusCode.AtomicFailed;
    }
    return code;
  }
}

/** A small DM tree for simulated phone `index`. */
export function phoneTree(deviceId: string, index: number): Record<string, string> {
  return {
    './DevInfo/DevId': deviceId,
    './DevInfo/Man': index % 2 === 0 ? 'Acme' : 'Globex',
    './DevInfo/Mod': `Model ${1 + (index % 3)}`,
    './DevInfo/DmV': '1.2',
    './DevInfo/Lang': 'en-US',
    './DevDetail/DevTyp': 'phone',
    './DevDetail/OEM': 'Acme OEM',
    './DevDetail/FwV': `fw-${index % 5}`,
    './DevDetail/SwV': 'Android 4.4',
    './DevDetail/HwV': 'rev B',
    './DevDetail/LrgObj': 'false',
  };
}
