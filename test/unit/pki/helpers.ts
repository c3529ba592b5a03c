/** Shared helpers for the PKI tests: temporary directories and the openssl CLI. */
import { spawnSync } from 'node:child_process';
import { createHash, type X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the test file ends. */
export function tempDir(prefix = 'depot-pki-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the openssl CLI (no shell) and returns its exit status and output. */
export function openssl(args: string[], input?: string | Buffer): RunResult {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs openssl and fails with its stderr unless it exits 0. */
export function opensslOk(args: string[], input?: string | Buffer): string {
  const r = openssl(args, input);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export function writeTemp(dir: string, name: string, data: string | Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

export function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/**
 * The RFC 5280 method-1 key identifier computed independently of the code under
 * test: SHA-1 over the subjectPublicKey BIT STRING contents, which for an
 * uncompressed P-256 point are the last 65 bytes of the SPKI DER.
 */
export function keyIdOf(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return colonHex(createHash('sha1').update(spki.subarray(spki.length - 65)).digest());
}

export function colonHex(bytes: Uint8Array): string {
  return Buffer.from(bytes)
    .toString('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
}

/**
 * The body of one extension in `openssl x509 -text` output: the lines after
 * "X509v3 <name>:" (with its ": critical" marker returned separately), trimmed.
 */
export function opensslExtension(text: string, name: string): { critical: boolean; value: string } | undefined {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trim().startsWith(`X509v3 ${name}:`));
  if (i < 0) return undefined;
  const critical = lines[i]!.trim().endsWith('critical');
  const indent = lines[i]!.search(/\S/);
  const body: string[] = [];
  for (let j = i + 1; j < lines.length; j++) {
    const line = lines[j]!;
    if (line.search(/\S/) <= indent) break;
    body.push(line.trim());
  }
  return { critical, value: body.join('\n') };
}

export const DAY = 86_400_000;
