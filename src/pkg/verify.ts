/**
 * Package integrity: a staged package is OK when its header is Depot's, its manifest is
 * well formed, the payload has the declared size and SHA-256, the manifest signature
 * verifies with a trusted Ed25519 key, and the payload is a valid DARC archive that holds
 * the scripts the manifest names.
 */
import { open } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { buildArchive, listArchive, ArchiveError, type ArchiveEntryInfo, type ArchiveInput } from './archive.js';
import {
  encodeHeader,
  manifestProblem,
  signManifest,
  verifySignature,
  MANIFEST_FORMAT,
  type Manifest,
  type ScriptName,
  type Signer,
  type TrustStore,
} from './manifest.js';
import { scanPackageFile, type StagedPackage } from './stream.js';

export type IntegrityReason =
  | 'truncated'
  | 'bad-magic'
  | 'unsupported-version'
  | 'manifest-invalid'
  | 'size-mismatch'
  | 'hash-mismatch'
  | 'unknown-key'
  | 'bad-signature'
  | 'archive-invalid';

export interface VerifiedPackage {
  readonly path: string;
  readonly manifest: Manifest;
  /** Offset of the payload (DARC archive) in the file. */
  readonly payloadOffset: number;
  readonly entries: readonly ArchiveEntryInfo[];
}

export type IntegrityVerdict =
  | ({ readonly ok: true } & VerifiedPackage)
  | { readonly ok: false; readonly reason: IntegrityReason; readonly detail: string };

const ko = (reason: IntegrityReason, detail: string): IntegrityVerdict => ({ ok: false, reason, detail });

/** Verifies a package whose bytes went through PackageStagingWriter (hash already computed). */
export async function verifyStaged(staged: StagedPackage, trust: TrustStore): Promise<IntegrityVerdict> {
  const h = staged.header;
  if (!h) return ko('truncated', `only ${staged.bytes} bytes, header incomplete`);
  if (!h.ok) return ko(h.reason === 'unsupported-version' ? 'unsupported-version' : h.reason === 'bad-magic' ? 'bad-magic' : 'manifest-invalid', h.detail);
  let parsed: unknown;
  try {
    parsed = JSON.parse(h.manifestJson);
  } catch {
    return ko('manifest-invalid', 'manifest is not JSON');
  }
  const problem = manifestProblem(parsed);
  if (problem) return ko('manifest-invalid', problem);
  const manifest = parsed as Manifest;
  if (staged.payloadBytes < manifest.size) return ko('truncated', `payload ${staged.payloadBytes} of ${manifest.size} bytes`);
  if (staged.payloadBytes !== manifest.size) return ko('size-mismatch', `payload ${staged.payloadBytes} bytes, manifest says ${manifest.size}`);
  if (staged.payloadSha256 !== manifest.sha256) return ko('hash-mismatch', 'payload SHA-256 differs from the manifest');
  const sig = verifySignature(manifest, trust);
  if (sig !== 'ok') return ko(sig, sig === 'unknown-key' ? `key ${manifest.keyId} is not trusted` : 'manifest signature does not verify');
  let entries: ArchiveEntryInfo[];
  const fh = await open(staged.path, 'r');
  try {
    entries = await listArchive(fh, h.payloadOffset, manifest.size);
  } catch (err) {
    if (err instanceof ArchiveError) return ko('archive-invalid', err.message);
    throw err;
  } finally {
    await fh.close();
  }
  for (const [name, path] of Object.entries(manifest.scripts ?? {})) {
    if (!entries.some((e) => e.type === 'file' && e.path === path)) return ko('archive-invalid', `${name} script ${path} is not in the payload`);
  }
  return { ok: true, path: staged.path, manifest, payloadOffset: h.payloadOffset, entries };
}

/** Verifies a package file from scratch (e.g. after a restart, when the hash state was lost). */
export async function verifyPackageFile(path: string, trust: TrustStore): Promise<IntegrityVerdict> {
  let staged: StagedPackage;
  try {
    staged = await scanPackageFile(path);
  } catch (err) {
    return ko('truncated', `cannot read ${path}: ${String(err)}`);
  }
  return verifyStaged(staged, trust);
}

export interface BuildPackageOptions {
  readonly name: string;
  readonly version: string;
  readonly files: readonly ArchiveInput[];
  readonly scripts?: Partial<Record<ScriptName, string>>;
  readonly signer: Signer;
}

/** Builds and signs a complete package (server side, tests, the simulator). */
export function buildPackage(opts: BuildPackageOptions): Buffer {
  const payload = buildArchive(opts.files);
  const manifest = signManifest(
    {
      format: MANIFEST_FORMAT,
      name: opts.name,
      version: opts.version,
      size: payload.length,
      sha256: createHash('sha256').update(payload).digest('hex'),
      keyId: opts.signer.keyId,
      ...(opts.scripts ? { scripts: opts.scripts } : {}),
    },
    opts.signer,
  );
  return Buffer.concat([encodeHeader(manifest), payload]);
}
