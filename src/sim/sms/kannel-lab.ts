/**
 * A real Kannel for tests and the demo: bearerbox and smsbox started from the repository's
 * configuration template (config/kannel/lab.conf.in) on free ports in a directory of their
 * own, with the fake SMSC that the simulated handsets (handsets.ts) connect to. Every wait is
 * bounded; stop() ends exactly the processes this lab started (by their pids).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderKannelConfig } from '../../sms/kannel-config.js';

export const BEARERBOX = '/usr/sbin/bearerbox';
export const SMSBOX = '/usr/sbin/smsbox';
/** kannel-extras ships it off the PATH. */
export const FAKESMSC = '/usr/lib/kannel/test/fakesmsc';

export interface KannelLabOptions {
  /** Where Kannel calls Depot back (the API port), e.g. http://127.0.0.1:8080. */
  readonly callbackBase: string;
  readonly callbackSecret: string;
  readonly sendsmsUsername?: string;
  readonly sendsmsPassword?: string;
  /** Default: a new directory under the system temp dir. */
  readonly dir?: string;
  /** Bound on each start-up wait, ms (default 15 s). */
  readonly startTimeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (bound and released: another process could take it, rarely). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, diagnostics: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${diagnostics() ? `\n${diagnostics()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export class KannelLab {
  readonly adminPassword = randomBytes(12).toString('base64url');
  readonly sendsmsUsername: string;
  readonly sendsmsPassword: string;
  private bearerbox: ChildProcess | undefined;
  private smsbox: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly ports: { admin: number; smsbox: number; sendsms: number; fakeSmsc: number },
    options: KannelLabOptions,
    private readonly timeoutMs: number,
  ) {
    this.sendsmsUsername = options.sendsmsUsername ?? 'depot';
    this.sendsmsPassword = options.sendsmsPassword ?? randomBytes(18).toString('base64url');
  }

  /** Renders the configuration and starts bearerbox and smsbox; resolves once smsbox is connected and sendsms answers. */
  static async start(options: KannelLabOptions): Promise<KannelLab> {
    for (const exe of [BEARERBOX, SMSBOX, FAKESMSC]) {
      if (!existsSync(exe)) throw new Error(`${exe} is missing: install the Debian packages kannel and kannel-extras (scripts/ensure-peers.sh)`);
    }
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'depot-kannel-'));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ports = { admin: await freePort(), smsbox: await freePort(), sendsms: await freePort(), fakeSmsc: await freePort() };
    const lab = new KannelLab(dir, join(dir, 'kannel.conf'), ports, options, options.startTimeoutMs ?? 15_000);
    const config = renderKannelConfig({
      adminPort: ports.admin,
      smsboxPort: ports.smsbox,
      sendsmsPort: ports.sendsms,
      fakeSmscPort: ports.fakeSmsc,
      adminPassword: lab.adminPassword,
      sendsmsUsername: lab.sendsmsUsername,
      sendsmsPassword: lab.sendsmsPassword,
      callbackBase: options.callbackBase,
      callbackSecret: options.callbackSecret,
      dir,
    });
    writeFileSync(lab.configFile, config, { mode: 0o600 });
    try {
      await lab.startBearerbox();
      await lab.startSmsbox();
    } catch (error) {
      await lab.stop();
      throw error;
    }
    return lab;
  }

  get sendsmsUrl(): string {
    return `http://127.0.0.1:${this.ports.sendsms}/cgi-bin/sendsms`;
  }

  /** bearerbox's status page (text). */
  async status(): Promise<string> {
    return (await httpGet(`http://127.0.0.1:${this.ports.admin}/status.txt?password=${this.adminPassword}`, 2000)).body;
  }

  /** Whether bearerbox sees the fake SMSC's client (the handsets) connected. */
  async smscOnline(): Promise<boolean> {
    return /\blab\b.*\(online/.test(await this.status());
  }

  private spawn(command: string): ChildProcess {
    const child = spawn(command, [this.configFile], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      this.output = (this.output + d.toString('latin1')).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    return child;
  }

  private diagnostics = (): string => {
    const logs = ['bearerbox.log', 'smsbox.log'].map((f) => {
      try {
        return `${f}:\n${readFileSync(join(this.dir, f), 'utf8').slice(-3000)}`;
      } catch {
        return '';
      }
    });
    return [this.output.slice(-3000), ...logs].join('\n');
  };

  async startBearerbox(): Promise<void> {
    this.bearerbox = this.spawn(BEARERBOX);
    await waitUntil('bearerbox answers on its admin port', async () => (await this.status()).includes('Kannel bearerbox'), this.timeoutMs, this.diagnostics);
  }

  /** Starts smsbox; resolves once bearerbox lists it and its sendsms port answers. */
  async startSmsbox(): Promise<void> {
    this.smsbox = this.spawn(SMSBOX);
    await waitUntil('smsbox connects to bearerbox', async () => /smsbox:\S*, IP 127\.0\.0\.1/.test(await this.status()) || /smsbox.*on-?line/i.test(await this.status()), this.timeoutMs, this.diagnostics);
    await waitUntil('smsbox sendsms answers', async () => (await httpGet(`http://127.0.0.1:${this.ports.sendsms}/cgi-bin/sendsms`, 1000)).status > 0, this.timeoutMs, this.diagnostics);
  }

  /** Stops smsbox only: Depot's submits then fail to connect (the "Kannel down" case). */
  async stopSmsbox(): Promise<void> {
    await stopChild(this.smsbox);
    this.smsbox = undefined;
  }

  async stop(): Promise<void> {
    await stopChild(this.smsbox);
    await stopChild(this.bearerbox, 8000);
    this.smsbox = undefined;
    this.bearerbox = undefined;
  }

  /** The last lines Kannel wrote (for test failure messages). */
  logs(): string {
    return this.diagnostics();
  }
}
