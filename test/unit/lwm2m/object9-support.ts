/** Helpers shared by the Object 9 unit tests: keys, packages, temporary directories. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPackage, trustStore, type ArchiveInput, type ScriptName, type TrustStore } from '../../../src/pkg/index.js';
import type { InstanceChange, PackageFetcher, PersistedObject, SoftwareManagementDeps } from '../../../src/lwm2m/objects/software-management/index.js';
import { SoftwareManagement, SimulatedInstaller, FetchError } from '../../../src/lwm2m/objects/software-management/index.js';
import type { ProfileName } from '../../../src/lwm2m/objects/software-management/index.js';
import type { Installer } from '../../../src/lwm2m/objects/software-management/index.js';
import type { Clock } from '../../../src/util/clock.js';

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


/** A fetcher serving packages from memory; `failAt` simulates a dropped connection. */
export class MemoryFetcher implements PackageFetcher {
  readonly files = new Map<string, Buffer>();
  readonly requests: { uri: string; offset: number }[] = [];
  failAt: number | undefined;
  /** Keep failing at failAt on every request (a source that stays down). */
  failAlways = false;
  failWith: FetchError | undefined;
  canResume = true;
  chunkSize = 100;

  supports(uri: string): boolean {
    return uri.startsWith('coap://') || uri.startsWith('http://');
  }
  resumable(): boolean {
    return this.canResume;
  }
  async fetch(uri: string, opts: { offset: number; signal: AbortSignal; onData: (c: Uint8Array) => Promise<boolean> }): Promise<void> {
    this.requests.push({ uri, offset: opts.offset });
    const body = this.files.get(uri);
    if (!body) throw new FetchError('INVALID_URI', `404 ${uri}`);
    for (let i = opts.offset; i < body.length; i += this.chunkSize) {
      if (opts.signal.aborted) return;
      if (this.failAt !== undefined && i >= this.failAt) {
        if (!this.failAlways) this.failAt = undefined;
        throw this.failWith ?? new Error('connection reset');
      }
      if (!(await opts.onData(body.subarray(i, Math.min(body.length, i + this.chunkSize))))) return;
    }
  }
}

export interface Harness {
  readonly obj: SoftwareManagement;
  readonly changes: InstanceChange[];
  readonly saved: PersistedObject[];
  readonly installer: Installer;
  readonly fetcher: MemoryFetcher;
  readonly deps: Omit<SoftwareManagementDeps, 'persist'> & { persist: (o: PersistedObject) => void };
}

/**
 * An Object 9 over a memory fetcher. `resumeDelaysMs` defaults to none: a dropped connection is
 * then the §5.1.1 download-error row at once (in-state resume has its own tests).
 */
export function harness(dir: string, opts: { profile?: ProfileName; quotaBytes?: number; installer?: Installer; installTimeoutMs?: number; clock?: Clock; resumeDelaysMs?: number[] } = {}): Harness {
  const changes: InstanceChange[] = [];
  const saved: PersistedObject[] = [];
  const installer = opts.installer ?? new SimulatedInstaller();
  const fetcher = new MemoryFetcher();
  const deps = {
    dataDir: dir,
    trust: testKeys().trust,
    installer,
    quotaBytes: opts.quotaBytes ?? 1 << 20,
    fetcher,
    ...(opts.profile ? { profile: opts.profile } : {}),
    ...(opts.installTimeoutMs ? { installTimeoutMs: opts.installTimeoutMs } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    resumeDelaysMs: opts.resumeDelaysMs ?? [],
    persist: (o: PersistedObject) => {
      saved.push(JSON.parse(JSON.stringify(o)) as PersistedObject);
    },
  };
  const obj = new SoftwareManagement(deps);
  obj.onChange((c) => changes.push(c));
  return { obj, changes, saved, installer, fetcher, deps };
}
