import type { MemoryNetwork } from './memory-network.js';

/**
 * Drives async code over a MemoryNetwork: lets promises run, then delivers queued
 * datagrams, until `promise` settles (or the step limit is reached).
 */
export async function pump<T>(network: MemoryNetwork, promise: Promise<T>, steps = 10_000): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  for (let i = 0; i < steps && !settled; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    network.flush();
  }
  if (!settled) throw new Error('pump: promise did not settle');
  return watched;
}

/** Lets pending promise callbacks and queued datagrams run a few rounds. */
export async function drain(network: MemoryNetwork, rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    network.flush();
  }
}
