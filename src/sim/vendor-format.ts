/**
 * A vendor's own package format, for simulated devices that Depot did not build (issue 13):
 * the device's integrity check reads this header, not Depot's. Depot relays such a file as
 * an opaque package, byte for byte; whether it is good is the device's verdict.
 *
 *   "ACMEFW01" (8 bytes) | name length (1) | name | version length (1) | version
 *   | SHA-256 of the body (32) | body
 *
 * A wrong magic, a truncated header or a body whose SHA-256 differs is an integrity failure
 * (Object 9 Update Result 6 / 53, spec §5.1.2.3).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { MANIFEST_FORMAT, type IntegrityVerdict, type Manifest, type TrustStore } from '../pkg/index.js';

export const VENDOR_MAGIC = 'ACMEFW01';

/** Builds a vendor image (what the vendor ships; tests and demos use it). */
export function buildVendorImage(options: { name: string; version: string; body: Uint8Array }): Buffer {
  const name = Buffer.from(options.name, 'utf8');
  const version = Buffer.from(options.version, 'utf8');
  if (name.length < 1 || name.length > 255 || version.length < 1 || version.length > 255) throw new Error('vendor image: name and version take 1-255 bytes');
  const digest = createHash('sha256').update(options.body).digest();
  return Buffer.concat([Buffer.from(VENDOR_MAGIC, 'ascii'), Buffer.of(name.length), name, Buffer.of(version.length), version, digest, options.body]);
}

/** The simulated device's integrity check of a staged vendor image. */
export async function verifyVendorImage(path: string, _trust: TrustStore): Promise<IntegrityVerdict> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    return { ok: false, reason: 'truncated', detail: `cannot read the staged image: ${(error as Error).message}` };
  }
  if (bytes.length < VENDOR_MAGIC.length || bytes.subarray(0, VENDOR_MAGIC.length).toString('latin1') !== VENDOR_MAGIC) {
    return { ok: false, reason: 'bad-magic', detail: `not an ${VENDOR_MAGIC} vendor image (magic)` };
  }
  let at = VENDOR_MAGIC.length;
  const field = (): string | undefined => {
    const len = bytes[at];
    if (len === undefined || len === 0 || at + 1 + len > bytes.length) return undefined;
    const text = bytes.subarray(at + 1, at + 1 + len).toString('utf8');
    at += 1 + len;
    return text;
  };
  const name = field();
  const version = field();
  if (name === undefined || version === undefined || at + 32 > bytes.length) return { ok: false, reason: 'truncated', detail: 'the vendor header is incomplete' };
  const declared = bytes.subarray(at, at + 32).toString('hex');
  const body = bytes.subarray(at + 32);
  const actual = createHash('sha256').update(body).digest('hex');
  if (declared !== actual) return { ok: false, reason: 'hash-mismatch', detail: 'the image body does not match the SHA-256 in its vendor header (corrupted image)' };
  const manifest: Manifest = { format: MANIFEST_FORMAT, name, version, size: body.length, sha256: actual, keyId: 'vendor', signature: '' };
  return { ok: true, path, manifest, payloadOffset: at + 32, entries: [] };
}
