/**
 * Secrets at rest: PSK keys (device and bootstrap) are sealed with AES-256-GCM under a key
 * kept apart from the database file, so a copy of depot.sqlite alone (a backup, a stolen
 * disk image of the database) holds no usable key.
 *
 * The key comes from DEPOT_SECRET_KEY (64 hex digits or base64 of 32 bytes), else from
 * <dataDir>/secrets.key (64 hex digits, mode 0400, made at the first start of a new store).
 * Each sealed value is `01 | nonce (12) | ciphertext | tag (16)`; the associated data names
 * the row (table, kind, identity), so a sealed key moved to another row does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { StoreError } from './errors.js';

export const SECRET_KEY_FILE_NAME = 'secrets.key';
export const SECRET_KEY_ENV = 'DEPOT_SECRET_KEY';

const VERSION = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

export class SecretBox {
  readonly #key: Buffer;

  /** `source` says where the key came from, for operator messages (never the key itself). */
  constructor(
    key: Uint8Array,
    readonly source: string,
  ) {
    if (key.length !== KEY_BYTES) throw new StoreError('SECRET_KEY_INVALID', `the secret key from ${source} must be ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /** Seals `plain` for the row named by `context`. */
  seal(plain: Uint8Array, context: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()]);
  }

  /** The plain bytes, or null when the value was not sealed with this key for this row. */
  open(sealed: Uint8Array, context: string): Buffer | null {
    if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) return null;
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      return null;
    }
  }
}

/** Associated data of a sealed secret: the row it belongs to (the identity last, so the text is unambiguous). */
export function secretContext(table: 'credentials' | 'bootstrap_credentials', kind: string, identity: string): string {
  return `${table}/${kind}/${identity}`;
}

/** A key given as text: 64 hex digits, or base64 (standard or url-safe) of 32 bytes. */
export function parseSecretKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === KEY_BYTES) return key;
  }
  throw new StoreError('SECRET_KEY_INVALID', `the secret key in ${source} must be ${KEY_BYTES} bytes written as 64 hex digits or base64`);
}

export interface SecretKeySource {
  /** The key bytes (32), or undefined when neither the environment nor the key file has one. */
  key: Buffer | undefined;
  /** Where it came from, or where it would be made. */
  source: string;
  keyFile: string;
}

/** Finds the key: `given` (tests, tools), else DEPOT_SECRET_KEY, else the key file. Does not create anything. */
export function findSecretKey(dataDir: string, given: Uint8Array | undefined, env: NodeJS.ProcessEnv = process.env): SecretKeySource {
  const keyFile = join(dataDir, SECRET_KEY_FILE_NAME);
  if (given) return { key: Buffer.from(given), source: 'the secretKey option', keyFile };
  const fromEnv = env[SECRET_KEY_ENV];
  if (fromEnv) return { key: parseSecretKey(fromEnv, SECRET_KEY_ENV), source: SECRET_KEY_ENV, keyFile };
  let text: string;
  try {
    text = readFileSync(keyFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { key: undefined, source: keyFile, keyFile };
    throw new StoreError('STORE_IO', `cannot read the secret key file ${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  return { key: parseSecretKey(text, keyFile), source: keyFile, keyFile };
}

/**
 * Makes a new key file (mode 0400). Written to a temporary name and linked into place, so a
 * process that opens the store at the same moment reads a whole key or none; the first link wins.
 */
export function createSecretKeyFile(keyFile: string): Buffer {
  const temp = `${keyFile}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const key = randomBytes(KEY_BYTES);
  try {
    const fd = openSync(temp, 'wx', 0o400);
    try {
      writeSync(fd, key.toString('hex') + '\n');
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, keyFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return parseSecretKey(readFileSync(keyFile, 'utf8'), keyFile);
    }
    return key;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError('STORE_IO', `cannot create the secret key file ${keyFile}: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(temp, { force: true });
  }
}
