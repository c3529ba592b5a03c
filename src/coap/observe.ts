/** Observe sequence numbers are 24-bit (RFC 7641 §4.4). */
const HALF_RANGE = 1 << 23;
/** §3.4: after 128 s a notification is fresh whatever its number. */
export const OBSERVE_REORDER_WINDOW_MS = 128_000;

/**
 * RFC 7641 §3.4: whether a notification numbered `v2` that arrived at `t2` is newer
 * than the last one (`v1` at `t1`). Times in milliseconds.
 */
export function isFresh(v1: number, t1: number, v2: number, t2: number): boolean {
  return (v1 < v2 && v2 - v1 < HALF_RANGE) || (v1 > v2 && v1 - v2 > HALF_RANGE) || t2 > t1 + OBSERVE_REORDER_WINDOW_MS;
}
