// Bounds of the deduplication store (RFC 7252 §4.5: a recipient remembers a message ID for
// EXCHANGE_LIFETIME and answers a duplicate with the same reply). The capacity, per-peer and
// large-reply bounds are Depot's choices (src/coap/dedup.ts header); the expected values here
// follow from those stated bounds, computed by hand.
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DeduplicationStore } from '../../../src/coap/dedup.js';
import type { DedupPeer } from '../../../src/coap/dedup.js';

const newPeer = (): DedupPeer => ({ received: new Map() });
const noop = (): void => undefined;

test('Depot\'s bound: the capacity must be a positive integer', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new DeduplicationStore<DedupPeer>(bad, 8, noop), /^RangeError: deduplication capacity must be a positive integer/, `capacity ${bad}`);
  }
  assert.equal(new DeduplicationStore<DedupPeer>(1, 8, noop).capacity, 1);
});

test('Depot\'s bound: the per-peer capacity must be a positive integer and is at most the capacity', () => {
  for (const bad of [0, -3, 2.5]) {
    assert.throws(() => new DeduplicationStore<DedupPeer>(10, 8, noop, { perPeerCapacity: bad }), /^RangeError: deduplication capacity per peer must be a positive integer/, `perPeerCapacity ${bad}`);
  }
  assert.equal(new DeduplicationStore<DedupPeer>(10, 8, noop, { perPeerCapacity: 1 }).perPeerCapacity, 1);
  assert.equal(new DeduplicationStore<DedupPeer>(10, 8, noop, { perPeerCapacity: 50 }).perPeerCapacity, 10);
  assert.equal(new DeduplicationStore<DedupPeer>(10, 8, noop).perPeerCapacity, 10);
});

test('RFC 7252 §4.5: a ring of capacity 3 keeps exactly the 3 newest message IDs through several wrap-arounds', () => {
  const emptied: DedupPeer[] = [];
  const store = new DeduplicationStore<DedupPeer>(3, 4, (p) => emptied.push(p));
  const peers = [newPeer(), newPeer()];
  for (let id = 0; id < 11; id++) {
    const peer = peers[id % 2]!;
    store.setReply(store.add(peer, id, 1000), Uint8Array.of(id, id));
    assert.equal(store.size, Math.min(id + 1, 3), `size after message ${id}`);
    for (let old = 0; old <= id; old++) {
      const slot = store.find(peers[old % 2]!, old, 0);
      if (old > id - 3) assert.deepEqual([...store.reply(slot)!], [old, old], `message ${old} after ${id}`);
      else assert.equal(slot, -1, `message ${old} evicted after ${id}`);
    }
  }
  assert.deepEqual(emptied, [], 'both peers always keep a record');
  // Expiry also walks the ring oldest-first across the wrap: 8, 9, 10 are left, in slots 2, 0, 1.
  assert.equal(store.sweep(999), true);
  assert.equal(store.sweep(1000), false);
  assert.equal(store.size, 0);
  assert.equal(emptied.length, 2);
});

test('RFC 7252 §4.5: sweeping expires records in arrival order, one expiry time at a time', () => {
  const store = new DeduplicationStore<DedupPeer>(4, 4, noop);
  const peer = newPeer();
  store.add(peer, 1, 10);
  store.add(peer, 2, 20);
  store.add(peer, 3, 30);
  assert.equal(store.sweep(9), true);
  assert.equal(store.size, 3);
  assert.equal(store.sweep(10), true);
  assert.equal(store.size, 2);
  assert.equal(store.find(peer, 1, 0), -1);
  assert.notEqual(store.find(peer, 2, 0), -1);
  // The ring wraps: two more records fill slots 3 and 0; the oldest is still 2 (slot 1).
  store.add(peer, 4, 40);
  store.add(peer, 5, 50);
  assert.equal(store.size, 4);
  store.add(peer, 6, 60); // full: 2 goes
  assert.equal(store.find(peer, 2, 0), -1);
  assert.deepEqual([...peer.received.keys()], [3, 4, 5, 6]);
  assert.equal(store.sweep(45), true);
  assert.deepEqual([...peer.received.keys()], [5, 6]);
});

test('Depot\'s bound: a reply of exactly the inline size is kept inline; one byte more counts against the large-reply budget', () => {
  const store = new DeduplicationStore<DedupPeer>(4, 4, noop, { largeReplyBudget: 100 });
  const peer = newPeer();
  store.setReply(store.add(peer, 1, 1000), Uint8Array.of(1, 2, 3, 4));
  assert.equal(store.largeReplyBytes, 0);
  assert.deepEqual([...store.reply(store.find(peer, 1, 0))!], [1, 2, 3, 4]);
  store.setReply(store.add(peer, 2, 1000), Uint8Array.of(1, 2, 3, 4, 5));
  assert.equal(store.largeReplyBytes, 5);
  assert.deepEqual([...store.reply(store.find(peer, 2, 0))!], [1, 2, 3, 4, 5]);
  // An empty reply is a reply (e.g. an empty ACK), not "no reply yet".
  store.setReply(store.add(peer, 3, 1000), new Uint8Array(0));
  assert.deepEqual([...store.reply(store.find(peer, 3, 0))!], []);
});

test('Depot\'s bound: a reply exactly the size of the budget is kept; a record\'s new reply replaces its old large one', () => {
  const store = new DeduplicationStore<DedupPeer>(4, 2, noop, { largeReplyBudget: 10 });
  const peer = newPeer();
  const t = store.add(peer, 1, 1000);
  store.setReply(t, new Uint8Array(10).fill(7));
  assert.equal(store.largeReplyBytes, 10);
  assert.deepEqual([...store.reply(store.find(peer, 1, 0))!], new Array<number>(10).fill(7));
  store.setReply(t, Uint8Array.of(9));
  assert.equal(store.largeReplyBytes, 0, 'the large copy is let go');
  assert.deepEqual([...store.reply(store.find(peer, 1, 0))!], [9]);
});

test('Depot\'s bound: a reply larger than the whole budget ends its record, and a peer left with none is reported empty', () => {
  const emptied: DedupPeer[] = [];
  const store = new DeduplicationStore<DedupPeer>(4, 2, (p) => emptied.push(p), { largeReplyBudget: 10 });
  const peer = newPeer();
  const t = store.add(peer, 1, 1000);
  assert.equal(store.size, 1);
  store.setReply(t, new Uint8Array(11));
  assert.equal(store.find(peer, 1, 0), -1);
  assert.equal(peer.received.size, 0);
  assert.deepEqual(emptied, [peer]);
  assert.equal(store.size, 0);
  assert.equal(store.largeReplyBytes, 0);
  assert.equal(store.sweep(0), false, 'the ended slot leaves the ring when the tail passes');
});

test('RFC 7252 §4.5 (safe requests may be processed again): release ends the record\'s reply; a stale ticket releases nothing', () => {
  const store = new DeduplicationStore<DedupPeer>(1, 8, noop);
  const peer = newPeer();
  const old = store.add(peer, 1, 1000);
  const fresh = store.add(peer, 2, 1000); // same slot, newer sequence number
  assert.equal(old.slot, fresh.slot);
  store.setReply(fresh, Uint8Array.of(5));
  store.release(old);
  assert.deepEqual([...store.reply(store.find(peer, 2, 0))!], [5], 'the stale ticket changed nothing');
  store.release(fresh);
  assert.equal(store.find(peer, 2, 0), -1);
});

test('release of a large reply gives its bytes back to the budget', () => {
  const store = new DeduplicationStore<DedupPeer>(4, 2, noop, { largeReplyBudget: 100 });
  const peer = newPeer();
  const t = store.add(peer, 1, 1000);
  store.setReply(t, new Uint8Array(40));
  assert.equal(store.largeReplyBytes, 40);
  store.release(t);
  assert.equal(store.largeReplyBytes, 0);
  assert.equal(store.find(peer, 1, 0), -1);
});

test('within the budget, the oldest records go until a new large reply fits, possibly only down to the new one', () => {
  const store = new DeduplicationStore<DedupPeer>(8, 2, noop, { largeReplyBudget: 30 });
  const a = newPeer();
  const b = newPeer();
  store.setReply(store.add(a, 1, 1000), new Uint8Array(10));
  store.setReply(store.add(b, 2, 1000), new Uint8Array(10));
  store.setReply(store.add(a, 3, 1000), new Uint8Array(10));
  assert.equal(store.largeReplyBytes, 30);
  store.setReply(store.add(b, 4, 1000), new Uint8Array(20)); // 50 > 30: 1 and 2 go (30 → 10 + 20)
  assert.equal(store.largeReplyBytes, 30);
  assert.deepEqual([...a.received.keys()], [3]);
  assert.deepEqual([...b.received.keys()], [4]);
  assert.equal(store.size, 2);
});

test('RFC 7252 §4.5: a message ID received again after its record expired (not yet swept) is one record, not two', () => {
  const store = new DeduplicationStore<DedupPeer>(8, 8, noop);
  const peer = newPeer();
  store.add(peer, 5, 100);
  store.add(peer, 6, 300);
  store.add(peer, 5, 400); // at t=200: 5 again
  assert.equal(store.size, 2);
  assert.deepEqual([...peer.received.keys()], [6, 5], 'oldest first: 5 is now the newest');
});

test('a reply for a record its peer\'s bound already ended is not kept (no bytes counted)', () => {
  const store = new DeduplicationStore<DedupPeer>(8, 2, noop, { perPeerCapacity: 1 });
  const peer = newPeer();
  const first = store.add(peer, 1, 1000);
  store.add(peer, 2, 1000); // the bound of 1 ends record 1
  store.setReply(first, new Uint8Array(40));
  assert.equal(store.largeReplyBytes, 0);
  assert.equal(store.find(peer, 1, 0), -1);
  assert.equal(store.size, 1);
});

test('a reply over the whole budget ends only its own record: a peer with others left is not reported empty', () => {
  const emptied: DedupPeer[] = [];
  const store = new DeduplicationStore<DedupPeer>(8, 2, (p) => emptied.push(p), { largeReplyBudget: 10 });
  const peer = newPeer();
  store.add(peer, 1, 1000);
  store.setReply(store.add(peer, 2, 1000), new Uint8Array(11));
  assert.deepEqual(emptied, []);
  assert.deepEqual([...peer.received.keys()], [1]);
});

test('making room for a large reply may evict the record itself: then nothing is kept, and newer records stay', () => {
  const store = new DeduplicationStore<DedupPeer>(8, 2, noop, { largeReplyBudget: 30 });
  const peer = newPeer();
  const x = store.add(peer, 1, 1000); // oldest, no reply yet
  store.setReply(store.add(peer, 2, 1000), new Uint8Array(25));
  store.setReply(x, new Uint8Array(10)); // 25 + 10 > 30: the oldest (x itself) goes
  assert.equal(store.find(peer, 1, 0), -1);
  assert.equal(store.largeReplyBytes, 25);
  assert.equal(store.reply(store.find(peer, 2, 0))!.length, 25);
  assert.equal(store.size, 1);
});

test('sweeping an empty store changes nothing: the ring still holds exactly capacity records afterwards', () => {
  const store = new DeduplicationStore<DedupPeer>(2, 2, noop);
  const a = newPeer();
  const b = newPeer();
  assert.equal(store.sweep(10), false);
  assert.equal(store.size, 0);
  store.add(a, 1, 1000);
  store.add(b, 2, 1000);
  store.add(a, 3, 1000); // full: the oldest (a's 1) goes
  assert.equal(store.size, 2);
  assert.equal(store.find(a, 1, 0), -1);
  assert.deepEqual([...a.received.keys()], [3]);
  assert.notEqual(store.find(b, 2, 0), -1);
});
