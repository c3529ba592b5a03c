/**
 * DARC: the payload archive format of a Depot package. Deliberately tiny (no dependency,
 * nothing to misinterpret): a magic, then entries, then an end marker.
 *
 *   "DARC"                                      4 bytes
 *   entry*:
 *     type        u8   1 = file, 2 = directory
 *     pathLength  u16  big-endian, 1..4096
 *     path        UTF-8, relative, '/'-separated, no '.', '..' or empty segments
 *     mode        u16  permission bits (only 0o777 is honoured on extraction)
 *     size        u48  big-endian; 0 for directories
 *     data        size bytes
 *   end:          u8   0
 *
 * Why not tar: tar has several dialects (ustar, pax, GNU long names), links and devices that
 * an installer must refuse anyway; this format only has the two things an installer needs, and
 * is both written (server) and read (device) by this module.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const ARCHIVE_MAGIC = Buffer.from('DARC', 'latin1');
const MAX_PATH = 4096;
const ENTRY_HEADER = 1 + 2; // type + pathLength; then path, then mode(2) + size(6)

export type ArchiveEntryType = 'file' | 'dir';

export interface ArchiveInput {
  readonly path: string;
  readonly type?: ArchiveEntryType;
  readonly data?: Uint8Array | string;
  readonly mode?: number;
}

export interface ArchiveEntryInfo {
  readonly path: string;
  readonly type: ArchiveEntryType;
  readonly mode: number;
  readonly size: number;
  /** Offset of the data, relative to the start of the archive. */
  readonly dataOffset: number;
}

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
}

/** A path is acceptable if it cannot escape the extraction directory. */
export function validateEntryPath(path: string): string | undefined {
  if (path.length === 0) return 'empty path';
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH) return 'path too long';
  if (path.startsWith('/')) return 'absolute path';
  for (const ch of path) {
    const c = ch.codePointAt(0) ?? 0;
    if (c < 0x20 || c === 0x7f || ch === '\\') return 'forbidden character in path';
  }
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') return `forbidden path segment "${seg}"`;
  }
  return undefined;
}

export function buildArchive(entries: readonly ArchiveInput[]): Buffer {
  const parts: Buffer[] = [ARCHIVE_MAGIC];
  const seen = new Set<string>();
  for (const e of entries) {
    const problem = validateEntryPath(e.path);
    if (problem) throw new ArchiveError(`${e.path}: ${problem}`);
    if (seen.has(e.path)) throw new ArchiveError(`${e.path}: duplicate entry`);
    seen.add(e.path);
    const type = e.type ?? 'file';
    const data = type === 'dir' ? Buffer.alloc(0) : Buffer.from(e.data ?? '');
    const path = Buffer.from(e.path, 'utf8');
    const head = Buffer.alloc(ENTRY_HEADER + path.length + 8);
    head.writeUInt8(type === 'file' ? 1 : 2, 0);
    head.writeUInt16BE(path.length, 1);
    path.copy(head, 3);
    head.writeUInt16BE((e.mode ?? (type === 'dir' ? 0o755 : 0o644)) & 0o777, 3 + path.length);
    head.writeUIntBE(data.length, 5 + path.length, 6);
    parts.push(head, data);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

async function readExactly(fh: FileHandle, position: number, length: number, limit: number): Promise<Buffer> {
  if (position + length > limit) throw new ArchiveError('archive truncated');
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw new ArchiveError('archive truncated');
    got += bytesRead;
  }
  return buf;
}

/**
 * Lists the entries of the archive stored at [offset, offset+length) of an open file,
 * validating the structure (magic, paths, sizes, end marker, no trailing bytes).
 */
export async function listArchive(fh: FileHandle, offset: number, length: number): Promise<ArchiveEntryInfo[]> {
  const end = offset + length;
  const magic = await readExactly(fh, offset, 4, end);
  if (!magic.equals(ARCHIVE_MAGIC)) throw new ArchiveError('not a DARC archive');
  let pos = offset + 4;
  const out: ArchiveEntryInfo[] = [];
  const seen = new Set<string>();
  for (;;) {
    const typeByte = (await readExactly(fh, pos, 1, end))[0];
    if (typeByte === 0) {
      pos += 1;
      break;
    }
    if (typeByte !== 1 && typeByte !== 2) throw new ArchiveError(`unknown entry type ${typeByte}`);
    const pathLen = (await readExactly(fh, pos + 1, 2, end)).readUInt16BE(0);
    if (pathLen === 0 || pathLen > MAX_PATH) throw new ArchiveError('bad path length');
    const path = (await readExactly(fh, pos + 3, pathLen, end)).toString('utf8');
    const problem = validateEntryPath(path);
    if (problem) throw new ArchiveError(`${path}: ${problem}`);
    if (seen.has(path)) throw new ArchiveError(`${path}: duplicate entry`);
    seen.add(path);
    const tail = await readExactly(fh, pos + 3 + pathLen, 8, end);
    const mode = tail.readUInt16BE(0) & 0o777;
    const size = tail.readUIntBE(2, 6);
    const type: ArchiveEntryType = typeByte === 1 ? 'file' : 'dir';
    if (type === 'dir' && size !== 0) throw new ArchiveError(`${path}: directory with data`);
    const dataOffset = pos + 3 + pathLen + 8;
    if (dataOffset + size > end) throw new ArchiveError(`${path}: archive truncated`);
    out.push({ path, type, mode, size, dataOffset: dataOffset - offset });
    pos = dataOffset + size;
  }
  if (pos !== end) throw new ArchiveError('trailing bytes after the end marker');
  return out;
}

/** Extracts the archive at [offset, offset+length) of `file` into `dest` (which must exist and be empty). */
export async function extractArchive(file: string, offset: number, length: number, dest: string): Promise<ArchiveEntryInfo[]> {
  const fh = await open(file, 'r');
  try {
    const entries = await listArchive(fh, offset, length);
    const chunk = Buffer.alloc(64 * 1024);
    for (const e of entries) {
      const target = join(dest, ...e.path.split('/'));
      if (e.type === 'dir') {
        await mkdir(target, { recursive: true, mode: e.mode | 0o700 });
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const out = await open(target, 'wx', e.mode);
      try {
        let done = 0;
        while (done < e.size) {
          const n = Math.min(chunk.length, e.size - done);
          const { bytesRead } = await fh.read(chunk, 0, n, offset + e.dataOffset + done);
          if (bytesRead === 0) throw new ArchiveError('archive truncated');
          await out.write(chunk, 0, bytesRead);
          done += bytesRead;
        }
        await out.chmod(e.mode);
      } finally {
        await out.close();
      }
    }
    return entries;
  } finally {
    await fh.close();
  }
}
