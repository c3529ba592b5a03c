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

test('RFC 7252 §4.5: one peer keeps at most its own bound of records; beyond, its own oldest go, not other peers\' records', () => {
  const emptied: DedupPeer[] = [];
  const store = new DeduplicationStore<DedupPeer>(100, 8, (p) => emptied.push(p), { perPeerCapacity: 3 });
  const quiet = newPeer();
  const flooding = newPeer();
  store.setReply(store.add(quiet, 1, 1000), Uint8Array.of(1));
  for (let id = 0; id < 50; id++) store.setReply(store.add(flooding, id, 1000), new Uint8Array(40).fill(id));
  assert.equal(flooding.received.size, 3);
  assert.deepEqual([...flooding.received.keys()], [47, 48, 49]);
  assert.equal(store.find(flooding, 46, 0), -1);
  assert.deepEqual([...store.reply(store.find(flooding, 49, 0))!], new Array<number>(40).fill(49));
  assert.deepEqual([...store.reply(store.find(quiet, 1, 0))!], [1], 'the quiet peer keeps its record');
  assert.equal(store.size, 4);
  assert.equal(store.largeReplyBytes, 3 * 40, 'replies of ended records are let go');
  assert.equal(store.sweep(1000), false);
  assert.equal(store.size, 0);
  assert.equal(store.largeReplyBytes, 0);
  assert.deepEqual(emptied, [quiet, flooding]);
});

test('RFC 7252 §4.5: a message ID seen again after expiry counts once against its peer\'s bound', () => {
  const store = new DeduplicationStore<DedupPeer>(100, 8, () => undefined, { perPeerCapacity: 2 });
  const peer = newPeer();
  store.add(peer, 1, 100);
  store.add(peer, 2, 100);
  store.add(peer, 1, 300); // at t=200: 1 again, now the newest
  store.add(peer, 3, 300); // the bound: 2 goes, the oldest
  assert.deepEqual([...peer.received.keys()], [1, 3]);
  assert.equal(store.size, 2);
});

test('RFC 7252 §4.5: large replies are kept within a byte budget; beyond it the oldest records go first', () => {
  const store = new DeduplicationStore<DedupPeer>(100, 8, () => undefined, { largeReplyBudget: 250 });
  const peer = newPeer();
  for (let id = 0; id < 5; id++) store.setReply(store.add(peer, id, 1000), new Uint8Array(100));
  assert.ok(store.largeReplyBytes <= 250);
  assert.equal(store.largeReplyBytes, 200);
  assert.deepEqual([...peer.received.keys()], [3, 4]);
  assert.notEqual(store.reply(store.find(peer, 4, 0)), undefined);
  // A reply larger than the whole budget is not kept: its record ends, the others stay.
  store.setReply(store.add(peer, 9, 1000), new Uint8Array(300));
  assert.equal(store.find(peer, 9, 0), -1);
  assert.deepEqual([...peer.received.keys()], [3, 4]);
  assert.equal(store.largeReplyBytes, 200);
});

test('a full store evicting the only record of the peer it is adding to does not report that peer empty (its owner would forget it mid-add)', () => {
  const emptied: DedupPeer[] = [];
  const store = new DeduplicationStore<DedupPeer>(1, 8, (p) => emptied.push(p));
  const peer = newPeer();
  store.add(peer, 1, 100);
  store.add(peer, 2, 100);
  assert.deepEqual(emptied, []);
  assert.deepEqual([...peer.received.keys()], [2]);
  const other = newPeer();
  store.add(other, 1, 100);
  assert.deepEqual(emptied, [peer]);
});
