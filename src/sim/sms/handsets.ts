/**
 * Simulated handsets on the lab SMSC: one Kannel fakesmsc process (kannel-extras) connected
 * to bearerbox's fake SMSC port stands for the radio network. What the SMSC "delivers" it
 * prints as `Got message N: <from to type …>`; each line is parsed and handed to the handset
 * whose number it is for, which reassembles concatenated parts, reads WDP ports and decodes
 * WAP Push (WSP) itself. Handsets send MO messages by writing fakesmsc lines on its stdin.
 *
 * Everything a line carries is untrusted: a line that does not parse is counted and kept
 * (`malformed`), never thrown at the handset.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { normalizeNumber } from '../../sms/address.js';
import { percentDecode, percentEncode } from '../../sms/kannel.js';
import { Reassembler, fromUtf16be, type Reassembled } from '../../sms/udh.js';
import { WAP_PUSH_PORT, decodeWspPush, type DecodedWapPush } from '../../sms/wap-push.js';
import { FAKESMSC, waitUntil } from './kannel-lab.js';

/** One SMS as the fake SMSC delivered it. */
export interface SmscLine {
  readonly from: string;
  readonly to: string;
  readonly type: 'text' | 'data' | 'udh';
  readonly udh: Uint8Array | null;
  readonly data: Uint8Array;
}

/** Parses the part of a fakesmsc "Got message" line between < and >. */
export function parseSmscLine(line: string): SmscLine {
  const m = /^(\S+) (\S+) (text|data|udh) (.*)$/s.exec(line);
  if (!m) throw new Error(`not a fake SMSC line: ${JSON.stringify(line.slice(0, 80))}`);
  const [, from, to, type, rest] = m as unknown as [string, string, string, 'text' | 'data' | 'udh', string];
  if (type === 'text') return { from, to, type, udh: null, data: new Uint8Array(Buffer.from(rest, 'latin1')) };
  if (type === 'data') return { from, to, type, udh: null, data: percentDecode(rest) };
  // "udh <udh> <data>" or (Kannel 1.4.5) "udh <udh> data <data>"
  const u = /^(\S+) (?:(?:data|text) )?(\S*)$/.exec(rest);
  if (!u) throw new Error(`not a fake SMSC udh line: ${JSON.stringify(line.slice(0, 80))}`);
  return { from, to, type, udh: percentDecode(u[1]!), data: percentDecode(u[2]!) };
}

export interface HandsetMessage {
  readonly from: string;
  readonly ports: Reassembled['ports'];
  readonly data: Uint8Array;
  readonly parts: number;
  /** For messages without ports: the text (UTF-8, or UTF-16BE when it does not decode as UTF-8). */
  readonly text: string | null;
  /** For messages to the WAP Push port that decode. */
  readonly push: DecodedWapPush | null;
  /** Why a push did not decode. */
  readonly pushError: string | null;
}

export class SimHandset {
  readonly smsReceived: SmscLine[] = [];
  readonly messages: HandsetMessage[] = [];
  private readonly reassembler = new Reassembler();
  private readonly listeners = new Set<(message: HandsetMessage) => void>();

  constructor(
    readonly number: string,
    private readonly network: FakeSmscNetwork,
  ) {}

  /** Called for every whole message (a push, a text, other binary data). */
  onMessage(listener: (message: HandsetMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get pushes(): DecodedWapPush[] {
    return this.messages.flatMap((m) => (m.push ? [m.push] : []));
  }

  get texts(): string[] {
    return this.messages.flatMap((m) => (m.text !== null ? [m.text] : []));
  }

  /** Resolves with the first message (already received or arriving) that matches, or rejects after `timeoutMs`. */
  async waitFor(predicate: (m: HandsetMessage) => boolean, timeoutMs = 15_000): Promise<HandsetMessage> {
    let found: HandsetMessage | undefined;
    await waitUntil(`handset ${this.number}: expected message`, () => (found = this.messages.find(predicate)) !== undefined, timeoutMs);
    return found!;
  }

  /** An MO text to `to` (printable ASCII; fakesmsc reads lines of at most 255 characters). */
  sendText(to: string, text: string): void {
    if (!/^[\x20-\x7e]+$/.test(text)) throw new Error('the lab SMSC takes MO texts of printable ASCII only');
    this.network.write(`${this.number} ${to} text ${text}`);
  }

  /** MO 8-bit data (optionally with a UDH). */
  sendData(to: string, data: Uint8Array, udh?: Uint8Array): void {
    this.network.write(udh ? `${this.number} ${to} udh ${percentEncode(udh)} ${percentEncode(data)}` : `${this.number} ${to} data ${percentEncode(data)}`);
  }

  /** @internal */
  deliver(line: SmscLine): void {
    this.smsReceived.push(line);
    const whole = this.reassembler.add({ from: line.from, udh: line.udh, data: line.data });
    if (!whole) return;
    let push: DecodedWapPush | null = null;
    let pushError: string | null = null;
    let text: string | null = null;
    if (whole.ports?.destination === WAP_PUSH_PORT) {
      try {
        push = decodeWspPush(whole.data);
      } catch (error) {
        pushError = (error as Error).message;
      }
    } else if (!whole.ports) {
      const utf8 = new TextDecoder('utf-8', { fatal: false }).decode(whole.data);
      text = utf8.includes('\uFFFD') && whole.data.length % 2 === 0 ? fromUtf16be(whole.data) : utf8;
    }
    const message: HandsetMessage = { from: whole.from, ports: whole.ports, data: whole.data, parts: whole.parts, text, push, pushError };
    this.messages.push(message);
    for (const listener of this.listeners) listener(message);
  }
}

export interface FakeSmscNetworkOptions {
  readonly host?: string;
  readonly port: number;
  /** Default: Kannel's fakesmsc under /usr/lib/kannel/test. */
  readonly fakesmsc?: string;
}

/** The fakesmsc process and the handsets it serves. */
export class FakeSmscNetwork {
  private readonly child: ChildProcess;
  private readonly handsets = new Map<string, SimHandset>();
  private buffer = '';
  private exited = false;
  /** Lines for numbers no handset has. */
  readonly undeliverable: SmscLine[] = [];
  /** "Got message" lines that did not parse. */
  readonly malformed: string[] = [];
  /** Every SMS the SMSC delivered, in order. */
  readonly delivered: SmscLine[] = [];
  private log = '';

  private constructor(options: FakeSmscNetworkOptions) {
    this.child = spawn(options.fakesmsc ?? FAKESMSC, ['-H', options.host ?? '127.0.0.1', '-r', String(options.port)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => this.read(d));
    this.child.stdout!.on('data', (d: Buffer) => this.read(d));
    this.child.stdin!.on('error', () => undefined);
    this.child.on('exit', () => (this.exited = true));
  }

  /** Starts fakesmsc against bearerbox's fake SMSC port; resolves once it has connected. */
  static async connect(options: FakeSmscNetworkOptions & { readonly online?: () => Promise<boolean> }): Promise<FakeSmscNetwork> {
    const network = new FakeSmscNetwork(options);
    await waitUntil('fakesmsc connects to bearerbox', async () => {
      if (network.exited) throw new Error('fakesmsc exited');
      return options.online ? await options.online() : network.log.includes('Connecting to');
    }, 15_000, () => network.log.slice(-2000));
    return network;
  }

  /** The handset with this number (made on first use). */
  handset(number: string): SimHandset {
    const n = normalizeNumber(number);
    let h = this.handsets.get(n);
    if (!h) {
      h = new SimHandset(n, this);
      this.handsets.set(n, h);
    }
    return h;
  }

  /** @internal One MO line to fakesmsc (its stdin lines are at most 255 characters). */
  write(line: string): void {
    if (line.length > 254 || line.includes('\n')) throw new Error('fakesmsc takes MO lines of at most 254 characters');
    if (this.exited) throw new Error('fakesmsc is not running');
    this.child.stdin!.write(line + '\n');
  }

  private read(chunk: Buffer): void {
    this.buffer += chunk.toString('latin1');
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      this.log = (this.log + line + '\n').slice(-10_000);
      const m = /Got message \d+: <(.*)>\s*$/.exec(line);
      if (!m) continue;
      let parsed: SmscLine;
      try {
        parsed = parseSmscLine(m[1]!);
      } catch {
        this.malformed.push(m[1]!);
        continue;
      }
      this.delivered.push(parsed);
      let to: string | undefined;
      try {
        to = normalizeNumber(parsed.to);
      } catch {
        to = undefined;
      }
      const handset = to === undefined ? undefined : this.handsets.get(to);
      if (handset) handset.deliver(parsed);
      else this.undeliverable.push(parsed);
    }
  }

  /** Stops fakesmsc (it aborts on SIGINT in interactive mode; that is its way of ending). */
  async close(): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      this.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      this.child.kill('SIGINT');
    });
  }
}
