/**
 * The install benchmark's package: a signed Depot package of exactly `size` bytes (one file of
 * random bytes, so nothing compresses), signed with a fresh Ed25519 key that the simulated
 * devices trust; and the simulator profile of the fleet that installs it.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { buildPackage } from '../../src/pkg/index.js';

export interface BenchPackage {
  /** The package file, as uploaded to Depot and as served by libcoap. */
  bytes: Buffer;
  sha256: string;
  name: string;
  version: string;
  keyId: string;
  /** SPKI PEM of the signing key (the devices' trust store). */
  publicKeyPem: string;
}

export const PACKAGE_NAME = 'bench-payload';
const KEY_ID = 'depot-bench';

/**
 * Builds a package whose file is `size` bytes: the header (manifest, signature) has a fixed
 * length for a given payload length, so the payload is shrunk by the overhead until the file fits.
 */
export function makeBenchPackage(size: number, version = '1.0.0'): BenchPackage {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const random = randomBytes(size);
  let payloadSize = size;
  let bytes: Buffer = Buffer.alloc(0);
  for (let attempt = 0; attempt < 8; attempt++) {
    bytes = buildPackage({
      name: PACKAGE_NAME,
      version,
      files: [{ path: 'payload.bin', data: random.subarray(0, payloadSize) }],
      signer: { keyId: KEY_ID, privateKey },
    });
    if (bytes.length === size) break;
    payloadSize -= bytes.length - size;
    if (payloadSize <= 0) throw new Error(`a package of ${size} bytes is too small for its header`);
  }
  return {
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    name: PACKAGE_NAME,
    version,
    keyId: KEY_ID,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** A simulator profile (docs/lwm2m-client.md): one model of `count` devices with the sim-good installer. */
export function installProfile(pkg: BenchPackage, count: number): unknown {
  return {
    // Long enough that no periodic Registration Update falls into a run.
    lifetime: 3600,
    trust: { [pkg.keyId]: pkg.publicKeyPem },
    models: [
      {
        manufacturer: 'Bench Devices',
        model: 'BI-1',
        firmwareVersion: '1.0.0',
        osVersion: 'BenchOS 1',
        deviceType: 'bench',
        count,
        behaviours: { installer: 'sim-good' },
      },
    ],
  };
}
