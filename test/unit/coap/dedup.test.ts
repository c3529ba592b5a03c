import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DeduplicationStore } from '../../../src/coap/dedup.js';
import type { DedupPeer } from '../../../src/coap/dedup.js';

const newPeer = (): DedupPeer => ({ received: new Map() });

test('a record is found until it expires, and its reply is returned as a copy', () => {
  const store = new DeduplicationStore<DedupPeer>(4, 8, () => undefined);
  const peer = newPeer();
  const ticket = store.add(peer, 10, 1000);
  assert.equal(store.reply(store.find(peer, 10, 0)), undefined, 'no reply yet');
  store.setReply(ticket, Uint8Array.of(1, 2, 3));
  const reply = store.reply(store.find(peer, 10, 999))!;
  assert.deepEqual([...reply], [1, 2, 3]);
  reply[0] = 9;
  assert.deepEqual([...store.reply(store.find(peer, 10, 999))!], [1, 2, 3]);
  assert.equal(store.find(peer, 10, 1000), -1, 'expired at its expiry time');
});

test('replies larger than the inline size are kept whole', () => {
  const store = new DeduplicationStore<DedupPeer>(2, 4, () => undefined);
  const peer = newPeer();
  const t = store.add(peer, 1, 100);
  const big = Uint8Array.from({ length: 50 }, (_, i) => i);
  store.setReply(t, big);
  assert.deepEqual(store.reply(store.find(peer, 1, 0)), big);
});

test('capacity evicts the oldest record and tells when a peer has none left', () => {
  const emptied: DedupPeer[] = [];
  const store = new DeduplicationStore<DedupPeer>(2, 8, (p) => emptied.push(p));
  const a = newPeer();
  const b = newPeer();
  store.add(a, 1, 100);
  store.add(b, 2, 100);
  store.add(b, 3, 100);
  assert.equal(store.find(a, 1, 0), -1);
  assert.deepEqual(emptied, [a]);
  assert.equal(store.size, 2);
});

test('a stale ticket (slot reused) does not overwrite the newer record', () => {
  const store = new DeduplicationStore<DedupPeer>(1, 8, () => undefined);
  const peer = newPeer();
  const old = store.add(peer, 1, 100);
  const fresh = store.add(peer, 2, 100);
  store.setReply(old, Uint8Array.of(0xee));
  assert.equal(store.reply(store.find(peer, 2, 0)), undefined);
  store.setReply(fresh, Uint8Array.of(0xaa));
  assert.deepEqual([...store.reply(store.find(peer, 2, 0))!], [0xaa]);
});

test('a message ID received again after expiry survives the eviction of its older record', () => {
  const store = new DeduplicationStore<DedupPeer>(8, 8, () => undefined);
  const peer = newPeer();
  store.add(peer, 5, 100);
  store.add(peer, 5, 300); // renewed at t=200, after the first record expired
  store.sweep(250);
  assert.equal(store.size, 1);
  assert.notEqual(store.find(peer, 5, 250), -1);
  assert.equal(store.sweep(300), false);
  assert.equal(peer.received.size, 0);
});

test('the reply arena is allocated on the first short reply, not per store (a simulated device has a store of its own)', () => {
  const before = process.memoryUsage().arrayBuffers;
  const stores: DeduplicationStore<DedupPeer>[] = [];
  for (let i = 0; i < 1000; i++) {
    const store = new DeduplicationStore<DedupPeer>(64, 96, () => undefined);
    store.setReply(store.add(newPeer(), 1, 1000), new Uint8Array(200)); // a large reply only
    stores.push(store);
  }
  const grown = process.memoryUsage().arrayBuffers - before;
  // An arena each would be 1,000 × 64 × 96 bytes = 6 MiB.
  assert.ok(grown < 3 * 1024 * 1024, `array buffers grew by ${grown} bytes for 1,000 stores`);
  const store = stores[0]!;
  const peer = newPeer();
  store.setReply(store.add(peer, 2, 1000), Uint8Array.of(7, 8));
  assert.deepEqual([...store.reply(store.find(peer, 2, 0))!], [7, 8]);
});
