/**
 * File helpers for key material: private directories (0700), atomic writes
 * (temporary file in the same directory, fsync, rename, fsync of the directory),
 * and permission checks.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, rename, stat, unlink, chmod, lstat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

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
 * Writes `data` to `path` atomically: a reader sees either the old file or the
 * complete new one, never a partial write, even across a crash.
 * With `exclusive`, an existing `path` is an error (`FILE_EXISTS`); the check and the
 * rename are not one atomic step, which is fine for a single operator's CLI.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions): Promise<void> {
  if (options.exclusive && (await exists(path))) {
    throw new PkiError('FILE_EXISTS', `${path} already exists (refusing to overwrite it)`);
  }
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  // O_EXCL: never follow or reuse something an attacker placed at the temporary name.
  const handle = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, options.mode);
  try {
    try {
      await handle.writeFile(data);
      // The mode given to open() is filtered by the umask; set it exactly.
      if (isPosix) await handle.chmod(options.mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  if (!isPosix) return;
  let handle;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic.
  } finally {
    await handle?.close();
  }
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
