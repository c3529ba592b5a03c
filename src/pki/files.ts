/**
 * File helpers for key material: private directories (0700), atomic writes
 * (util/atomic-file, refusing to replace a file where asked), and permission checks.
 */
import { mkdir, stat, chmod, lstat } from 'node:fs/promises';

import { replaceFileAtomic } from '../util/atomic-file.js';

import { PkiError } from './errors.js';

/** Mode for private keys. */
export const KEY_FILE_MODE = 0o600;
/** Mode for certificates (public, but kept owner-writable only). */
export const CERT_FILE_MODE = 0o644;
/** Mode for directories that hold private keys. */
export const PRIVATE_DIR_MODE = 0o700;

const isPosix = process.platform !== 'win32';

/**
 * Creates `dir` (and parents) if missing and makes sure `dir` itself is 0700.
 * The explicit chmod matters: mkdir's mode is filtered by the umask, and an
 * existing directory keeps whatever mode it had.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const info = await lstat(dir);
  if (!info.isDirectory()) {
    throw new PkiError('IO_ERROR', `${dir} exists and is not a directory`);
  }
  if (isPosix && (info.mode & 0o777) !== PRIVATE_DIR_MODE) await chmod(dir, PRIVATE_DIR_MODE);
}

export interface AtomicWriteOptions {
  /** File mode; the temporary file is created with it, so the data is never more exposed. */
  mode: number;
  /** Refuse to replace an existing file (default false: replace it atomically). */
  exclusive?: boolean;
}

/**
 * Writes `data` to `path` atomically (util/atomic-file): a reader sees either the old file or
 * the complete new one, never a partial write, even across a crash.
 * With `exclusive`, an existing `path` is an error (`FILE_EXISTS`); the check and the
 * rename are not one atomic step, which is fine for a single operator's CLI.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions): Promise<void> {
  if (options.exclusive && (await exists(path))) {
    throw new PkiError('FILE_EXISTS', `${path} already exists (refusing to overwrite it)`);
  }
  await replaceFileAtomic(path, data, options.mode);
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Refuses a private key file that group or others can read or write, as ssh does:
 * a key that has been exposed should not silently keep being used.
 */
export async function assertPrivateFile(path: string): Promise<void> {
  if (!isPosix) return;
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new PkiError(
      'INSECURE_PERMISSIONS',
      `${path} has mode ${mode}; a private key must not be accessible to group or others (chmod 600 ${path})`,
    );
  }
}
