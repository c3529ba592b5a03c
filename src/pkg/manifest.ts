/**
 * The Depot package manifest and its Ed25519 signature.
 *
 * Container layout (a ".dpkg" file, also the body of LwM2M Object 9 "Package"):
 *
 *   "DPKG"            4 bytes magic
 *   version           u8 = 1
 *   manifestLength    u32 big-endian, 2..65536
 *   manifest          UTF-8 JSON (see Manifest)
 *   payload           manifest.size bytes: a DARC archive (archive.ts)
 *
 * The signature covers the canonical JSON of the manifest without its `signature` field
 * (keys sorted, no whitespace); the manifest carries the payload's size and SHA-256, so the
 * signature covers the payload too.
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

export const PACKAGE_MAGIC = Buffer.from('DPKG', 'latin1');
export const PACKAGE_FORMAT_VERSION = 1;
export const HEADER_FIXED = 9; // magic + version + manifestLength
export const MAX_MANIFEST = 65536;
export const MANIFEST_FORMAT = 'depot-pkg/1';

export const SCRIPT_NAMES = ['install', 'uninstall', 'activate', 'deactivate'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  /** Package (software component) name, 1..255 bytes: becomes PkgName (9/x/0). */
  readonly name: string;
  /** Version, 1..255 bytes: becomes PkgVersion (9/x/1). */
  readonly version: string;
  /** Payload size in bytes. */
  readonly size: number;
  /** SHA-256 of the payload, lowercase hex. */
  readonly sha256: string;
  /** Identifier of the signing key in the device's trust store. */
  readonly keyId: string;
  /** Ed25519 signature, base64. */
  readonly signature: string;
  /** Paths (inside the payload) of the optional lifecycle scripts, run with /bin/sh. */
  readonly scripts?: Partial<Record<ScriptName, string>>;
}

export type UnsignedManifest = Omit<Manifest, 'signature'>;

/** JSON with object keys sorted at every level: the bytes that get signed. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function signingBytes(m: UnsignedManifest | Manifest): Buffer {
  const { signature: _ignored, ...rest } = m as Manifest;
  return Buffer.from(canonicalJson(rest), 'utf8');
}

export interface Signer {
  readonly keyId: string;
  readonly privateKey: KeyObject | string;
}

export function signManifest(m: UnsignedManifest, signer: Signer): Manifest {
  const key = typeof signer.privateKey === 'string' ? createPrivateKey(signer.privateKey) : signer.privateKey;
  const signature = sign(null, signingBytes(m), key).toString('base64');
  return { ...m, signature };
}

/** Public keys the device trusts, by key id. */
export type TrustStore = ReadonlyMap<string, KeyObject>;

export function trustStore(keys: Record<string, KeyObject | string>): TrustStore {
  return new Map(Object.entries(keys).map(([id, k]) => [id, typeof k === 'string' ? createPublicKey(k) : k]));
}

export function verifySignature(m: Manifest, trust: TrustStore): 'ok' | 'unknown-key' | 'bad-signature' {
  const key = trust.get(m.keyId);
  if (!key) return 'unknown-key';
  let sig: Buffer;
  try {
    sig = Buffer.from(m.signature, 'base64');
  } catch {
    return 'bad-signature';
  }
  try {
    return verify(null, signingBytes(m), key, sig) ? 'ok' : 'bad-signature';
  } catch {
    return 'bad-signature';
  }
}

const isShortString = (v: unknown): v is string =>
  typeof v === 'string' && v.length > 0 && Buffer.byteLength(v, 'utf8') <= 255;

/** Checks the shape of a parsed manifest; returns the problem, or undefined when fine. */
export function manifestProblem(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'manifest is not an object';
  const m = v as Record<string, unknown>;
  if (m['format'] !== MANIFEST_FORMAT) return `unsupported manifest format ${String(m['format'])}`;
  if (!isShortString(m['name'])) return 'name must be a string of 1..255 bytes';
  if (!isShortString(m['version'])) return 'version must be a string of 1..255 bytes';
  const size = m['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return 'size must be a non-negative integer';
  if (typeof m['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(m['sha256'])) return 'sha256 must be 64 lowercase hex digits';
  if (!isShortString(m['keyId'])) return 'keyId must be a string';
  if (typeof m['signature'] !== 'string' || m['signature'].length === 0) return 'signature missing';
  const scripts = m['scripts'];
  if (scripts !== undefined) {
    if (scripts === null || typeof scripts !== 'object' || Array.isArray(scripts)) return 'scripts must be an object';
    for (const [k, p] of Object.entries(scripts)) {
      if (!(SCRIPT_NAMES as readonly string[]).includes(k)) return `unknown script ${k}`;
      if (typeof p !== 'string' || p.length === 0) return `script ${k} must be a path`;
    }
  }
  return undefined;
}

export function encodeHeader(manifest: Manifest): Buffer {
  const json = Buffer.from(JSON.stringify(manifest), 'utf8');
  if (json.length > MAX_MANIFEST) throw new Error('manifest too large');
  const head = Buffer.alloc(HEADER_FIXED);
  PACKAGE_MAGIC.copy(head, 0);
  head.writeUInt8(PACKAGE_FORMAT_VERSION, 4);
  head.writeUInt32BE(json.length, 5);
  return Buffer.concat([head, json]);
}
