/**
 * A simulated OMA DM 1.2 phone: the client side of a DM session, written from
 * OMA-TS-DM_Protocol-V1_2 and OMA-TS-DM_Security-V1_2 independently of Depot's server engine
 * (src/omadm/session.ts); it shares only the codecs, the message types and the auth values.
 *
 * One `runSession` is one client-initiated session: Package 1 (Alert 1201 + Replace of
 * ./DevInfo) with MD5 credentials over the last nonce the server gave (or an x-syncml-hmac
 * header), Package 1 again after a 401/407 with the new nonce, then answers to every server
 * message (Get/Replace/Exec/Alert) until the server sends a package of only Status, or aborts.
 */
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { AuthType, formatHmacHeader, hmacMac, md5Credential } from '../../omadm/auth.js';
import { decodeBase64Strict } from '../../omadm/auth.js';
import { AlertCode, StatusCode } from '../../omadm/status-codes.js';
import { SYNCML_DM_WBXML, SYNCML_DM_XML, decodeSyncML, encodeSyncML } from '../../omadm/syncml.js';
import type { Command, Item, StatusCommand, SyncMLEncoding, SyncMLMessage } from '../../omadm/syncml.js';

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
}

export interface DmSessionReport {
  readonly authenticated: boolean;
  readonly messages: number;
  readonly ended: 'completed' | 'server-abort' | 'auth-refused';
  /** The server's commands as received, for tests. */
  readonly commands: readonly Command[];
}

export interface DmTransport {
  /** POSTs one message; resolves to the response body and its Content-Type. */
  post(url: string, body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; body: Buffer; contentType: string }>;
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
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), contentType: String(res.headers['content-type'] ?? '') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}

const MAX_AUTH_ROUNDS = 3;
const MAX_MESSAGES = 100;

export class DmPhone {
  /** The nonce the server gave in its last Chal (empty until the first one). */
  nonce: Uint8Array = new Uint8Array();
  private readonly tree: Map<string, string>;
  private sessionCounter = 0;

  constructor(
    readonly profile: DmPhoneProfile,
    private readonly transport: DmTransport,
  ) {
    this.tree = new Map(Object.entries(profile.tree));
  }

  get(uri: string): string | undefined {
    return this.tree.get(uri);
  }

  /**
   * `start` is for a session the server asked for by notification (src/sim/omadm/notification-client.ts):
   * its SessionID and Alert 1200 (DM Notification) instead of the phone's own counter and 1201.
   */
  async runSession(serverUrl: string, start: { readonly sessionId?: string; readonly alert?: number } = {}): Promise<DmSessionReport> {
    this.sessionCounter = (this.sessionCounter % 0xffff) + 1;
    const sessionId = start.sessionId ?? this.sessionCounter.toString(16).toUpperCase();
    const alert = start.alert ?? AlertCode.ClientInitiatedManagement;
    let url = serverUrl;
    let msgId = 0;
    let authRounds = 0;
    let authenticated = false;
    const received: Command[] = [];
    let outgoing: Command[] = this.package1(alert);
    let final = true;
    for (let messages = 1; messages <= MAX_MESSAGES; messages++) {
      msgId++;
      const message: SyncMLMessage = {
        header: {
          verDTD: '1.2', verProto: 'DM/1.2', sessionId, msgId: String(msgId),
          target: { locUri: serverUrl }, source: { locUri: this.profile.deviceId },
          // Credentials in every message until the server accepts them (Security "Authentication").
          ...(!authenticated && this.profile.auth === 'md5' ? { cred: { meta: { type: AuthType.Md5, format: 'b64' }, data: md5Credential(this.profile.username, this.profile.password, this.nonce) } } : {}),
          meta: { maxMsgSize: this.profile.maxMsgSize ?? 16 * 1024 },
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
      if (reply.header.respUri !== undefined) url = reply.header.respUri;
      received.push(...reply.commands.filter((c) => c.kind !== 'Status'));

      const hdr = reply.commands.find((c): c is StatusCommand => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.msgRef === String(msgId));
      if (hdr?.chal?.meta.nextNonce !== undefined) this.nonce = decodeBase64Strict(hdr.chal.meta.nextNonce, 'NextNonce');
      if (reply.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.SessionAbort)) return { authenticated, messages, ended: 'server-abort', commands: received };
      if (hdr !== undefined && (hdr.code === StatusCode.InvalidCredentials || hdr.code === StatusCode.MissingCredentials)) {
        if (++authRounds >= MAX_AUTH_ROUNDS) return { authenticated, messages, ended: 'auth-refused', commands: received };
        outgoing = this.package1(alert); // the refused package was not processed: send it again with the new nonce
        final = true;
        continue;
      }
      if (hdr !== undefined && (hdr.code === StatusCode.AuthenticationAccepted || hdr.code === StatusCode.Ok)) authenticated = true;

      const answers = this.answer(reply);
      const hasCommands = reply.commands.some((c) => c.kind !== 'Status');
      // A package with only Status and Final ends the session; the client sends nothing (Protocol "Session Completion").
      if (reply.final && !hasCommands) return { authenticated, messages, ended: 'completed', commands: received };
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
    for (const c of reply.commands) {
      const status = (code: number): StatusCommand => ({ kind: 'Status', cmdId: id(), msgRef, cmdRef: c.cmdId ?? '', cmd: c.kind, code });
      switch (c.kind) {
        case 'Status':
        case 'Results':
          break;
        case 'Get': {
          const uri = c.items[0]?.target?.locUri ?? '';
          const value = this.tree.get(uri);
          out.push(status(value === undefined ? StatusCode.NotFound : StatusCode.Ok));
          if (value !== undefined) out.push({ kind: 'Results', cmdId: id(), msgRef, cmdRef: c.cmdId, items: [{ source: { locUri: uri }, data: value }] });
          break;
        }
        case 'Replace': {
          for (const item of c.items) if (item.target !== undefined && typeof item.data === 'string') this.tree.set(item.target.locUri, item.data);
          out.push(status(StatusCode.Ok));
          break;
        }
        case 'Exec':
          out.push(status(this.tree.has(c.items[0]?.target?.locUri ?? '') ? StatusCode.Ok : StatusCode.NotFound));
          break;
        case 'Alert':
          out.push(status(c.code === AlertCode.NextMessage || c.code === AlertCode.Display ? StatusCode.Ok : StatusCode.OptionalFeatureNotSupported));
          break;
        case 'Unsupported':
          break;
        default:
          out.push(status(StatusCode.OptionalFeatureNotSupported));
      }
    }
    if (!reply.final) out.push({ kind: 'Alert', cmdId: id(), code: AlertCode.NextMessage });
    return out;
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
