/** Shared plumbing for DTLS interop tests: real peer processes, ports, certificates. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

/** Fails (never skips) when a peer binary is missing. */
export function requireBinary(name: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || path === '') throw new Error(`interop peer binary not found: ${name} (install it; see scripts/ensure-peers.sh)`);
  return path;
}

/** An ephemeral UDP port that was free a moment ago. */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export class PeerProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private exited = false;

  constructor(
    readonly command: string,
    readonly args: string[],
  ) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString('latin1')));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString('latin1')));
    this.child.on('exit', () => (this.exited = true));
    this.child.on('error', (e) => (this.stderr += `spawn error: ${e.message}`));
  }

  get output(): string {
    return this.stdout + this.stderr;
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  /** Resolves when stdout+stderr matches, rejects after `timeoutMs` (with the output for diagnosis). */
  async waitFor(pattern: RegExp, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.output)) {
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${pattern} from ${this.command}; output:\n${this.output.slice(-3000)}`);
      await sleep(25);
    }
  }

  async waitExit(timeoutMs = 5000): Promise<number | null> {
    const deadline = Date.now() + timeoutMs;
    while (!this.exited) {
      if (Date.now() > deadline) throw new Error(`timeout waiting for ${this.command} to exit; output:\n${this.output.slice(-3000)}`);
      await sleep(25);
    }
    return this.child.exitCode;
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when `check()` is truthy, polling; rejects after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timeout waiting for ${what}`);
    await sleep(20);
  }
}

export interface TestPki {
  dir: string;
  caPem: string;
  ca: X509Certificate;
  server: { certPath: string; keyPath: string; der: Uint8Array; key: KeyObject };
  client: { certPath: string; keyPath: string; der: Uint8Array; key: KeyObject };
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

/** A P-256 CA plus server and client leaf certificates, made with the openssl CLI in a temp dir. */
export function makeTestPki(): TestPki {
  requireBinary('openssl');
  const dir = mkdtempSync(join(tmpdir(), 'depot-dtls-pki-'));
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(
    ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=Depot Test CA', '-days', '2', '-out', 'ca.pem',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  const leaf = (name: string): TestPki['server'] => {
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`], dir);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}.depot.test`, '-out', `${name}.csr`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`], dir);
    const certPath = join(dir, `${name}.pem`);
    const keyPath = join(dir, `${name}.key`);
    return {
      certPath,
      keyPath,
      der: new Uint8Array(new X509Certificate(readFileSync(certPath)).raw),
      key: createPrivateKey(readFileSync(keyPath)),
    };
  };
  const caPem = join(dir, 'ca.pem');
  return {
    dir,
    caPem,
    ca: new X509Certificate(readFileSync(caPem)),
    server: leaf('server'),
    client: leaf('client'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
