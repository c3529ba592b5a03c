/** The Block1/Block2 option value (RFC 7959 §2.2). */
export interface BlockValue {
  /** Block number. */
  num: number;
  /** More flag. */
  more: boolean;
  /** Size exponent: block size is 2^(szx + 4), 16 to 1024 bytes. */
  szx: number;
}

export const MAX_SZX = 6;

export const blockSize = (szx: number): number => 1 << (szx + 4);

/** The largest SZX whose block size is <= bytes (bytes between 16 and 1024). */
export function szxFor(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 1024 || (bytes & (bytes - 1)) !== 0) {
    throw new RangeError(`block size must be a power of two from 16 to 1024, got ${bytes}`);
  }
  return Math.log2(bytes) - 4;
}

/** Returns undefined for SZX 7 (reserved, §2.2) or a NUM beyond 20 bits. */
export function decodeBlock(value: number): BlockValue | undefined {
  const szx = value & 7;
  if (szx === 7) return undefined;
  return { num: Math.floor(value / 16), more: (value & 8) === 8, szx };
}

export function encodeBlock(block: BlockValue): number {
  if (block.num < 0 || block.num > 0xfffff) throw new RangeError(`block number out of range: ${block.num}`);
  return block.num * 16 + (block.more ? 8 : 0) + block.szx;
}

/** Byte offset of a block. */
export const blockOffset = (b: BlockValue): number => b.num * blockSize(b.szx);
