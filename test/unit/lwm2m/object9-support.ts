/** Helpers shared by the Object 9 unit tests: keys, packages, temporary directories. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPackage, trustStore, type ArchiveInput, type ScriptName, type TrustStore } from '../../../src/pkg/index.js';

export interface TestKeys {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly trust: TrustStore;
}

let cached: TestKeys | undefined;
export function testKeys(): TestKeys {
  if (!cached) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    cached = { keyId: 'depot-test', privateKey, publicKey, trust: trustStore({ 'depot-test': publicKey }) };
  }
  return cached;
}

export function otherKeys(): TestKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId: 'depot-test', privateKey, publicKey, trust: trustStore({ 'depot-test': publicKey }) };
}

export function makePackage(opts: {
  name?: string;
  version?: string;
  files?: ArchiveInput[];
  scripts?: Partial<Record<ScriptName, string>>;
  keys?: TestKeys;
} = {}): Buffer {
  const keys = opts.keys ?? testKeys();
  return buildPackage({
    name: opts.name ?? 'app',
    version: opts.version ?? '1.0.0',
    files: opts.files ?? [
      { path: 'bin/app', data: '#!/bin/sh\necho app\n', mode: 0o755 },
      { path: 'README', data: 'hello' },
    ],
    ...(opts.scripts ? { scripts: opts.scripts } : {}),
    signer: { keyId: keys.keyId, privateKey: keys.privateKey },
  });
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'depot-o9-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Splits a buffer into chunks of `size` (Block1-sized writes). */
export function chunks(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}
