/**
 * The LwM2M inventory feed (issue 18) over a real SQLite store: a device's Register, its Object 3
 * facts and its Updates within the window are one inventory write with one history entry;
 * facts alone are written as Inventory.fromFacts writes them; flush() writes what waits (the
 * server calls it when it closes); and a contact's soft write is durable across a reopen.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { Inventory } from '../../../src/fleet/inventory.js';
import { Lwm2mInventoryFeed } from '../../../src/fleet/inventory-feed.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { Registration } from '../../../src/store/types.js';
import { openStore, tempDir } from '../store/helpers.js';

function registration(endpoint: string, at: number, over: Partial<Registration> = {}): Registration {
  return {
    id: `id-${endpoint}`,
    endpoint,
    lifetimeSec: 60,
    lwm2mVersion: '1.1',
    binding: 'U',
    smsNumber: null,
    queueMode: false,
    objectLinks: '</1/0>,</3/0>',
    address: { scheme: 'coap', address: '127.0.0.1', port: 5683 },
    identity: null,
    registeredAt: at,
    lastUpdateAt: at,
    expiresAt: at + 60_000,
    ...over,
  };
}

const failOnError = (error: unknown): never => {
  throw error;
};

void test('inventory feed: Register, facts and Update of one device within the window are one write and one history entry, with the latest contact time', async () => {
  const store = openStore();
  const inventory = new Inventory({ repository: store.inventory, now: () => 5_000 });
  // A window no test waits for: only flush() writes here.
  const feed = new Lwm2mInventoryFeed({ inventory, windowMs: 3_600_000, onError: failOnError });
  feed.registration(registration('feed-1', 1_000, { smsNumber: '+4915112345678' }));
  feed.facts('feed-1', { manufacturer: 'Acme', modelNumber: 'R-1', firmwareVersion: '1.0', osVersion: '1.0', extra: {} });
  feed.registration(registration('feed-1', 2_000));
  feed.registration(registration('feed-1', 1_500));
  assert.equal(feed.waiting, 1);
  assert.equal(await inventory.repository.findByIdentity({ lwm2mEndpoint: 'feed-1' }), null, 'nothing written before the window ends');
  await feed.flush();
  assert.equal(feed.waiting, 0);
  const device = await inventory.repository.findByIdentity({ lwm2mEndpoint: 'feed-1' });
  assert.ok(device);
  assert.equal(device.make, 'Acme');
  assert.equal(device.model, 'R-1');
  assert.equal(device.firmware, '1.0');
  assert.equal(device.lastContact.lwm2m, 2_000, 'the latest contact, not the last one reported');
  const history = (await inventory.history(device.id)).items;
  assert.equal(history.length, 1);
  assert.deepEqual(Object.keys(history[0]!.changes).sort(), ['created', 'firmware', 'lwm2mEndpoint', 'make', 'model', 'osVersion']);
});

void test('inventory feed: each written contact is announced with the device record (a marked install waits for it); facts alone are not a contact', async () => {
  const store = openStore();
  const inventory = new Inventory({ repository: store.inventory, now: () => 5_000 });
  const contacts: (string | null)[] = [];
  const feed = new Lwm2mInventoryFeed({ inventory, windowMs: 3_600_000, onError: failOnError, onContact: (device) => contacts.push(device?.id ?? null) });
  feed.facts('feed-c', { manufacturer: 'Acme', modelNumber: 'R-1', extra: {} });
  await feed.flush();
  assert.deepEqual(contacts, []);
  feed.registration(registration('feed-c', 1_000));
  feed.registration(registration('feed-c', 2_000));
  await feed.flush();
  const device = await inventory.repository.findByIdentity({ lwm2mEndpoint: 'feed-c' });
  assert.deepEqual(contacts, [device!.id], 'one announcement per write, with the record the contact reached');
  store.close();
});

void test('inventory feed: facts without a contact in the window are written as fromFacts writes them; device strings are cleaned', async () => {
  const store = openStore();
  const inventory = new Inventory({ repository: store.inventory });
  const feed = new Lwm2mInventoryFeed({ inventory, windowMs: 3_600_000, onError: failOnError });
  feed.facts('feed-2', { manufacturer: '  Acme\u0007 ', modelNumber: null, extra: {} });
  await feed.flush();
  const device = await inventory.repository.findByIdentity({ lwm2mEndpoint: 'feed-2' });
  assert.ok(device);
  assert.equal(device.make, 'Acme\\x07');
  assert.equal(device.model, null);
  assert.deepEqual(device.lastContact, {}, 'a facts read alone records no contact, as before');
});

void test('inventory feed: the window ends by itself, and the write is soft state that survives a reopen of the store', async () => {
  const dataDir = join(tempDir(), 'data');
  const store = openSqliteStore({ dataDir });
  const inventory = new Inventory({ repository: store.inventory });
  const feed = new Lwm2mInventoryFeed({ inventory, windowMs: 5, onError: failOnError });
  feed.registration(registration('feed-3', 7_000));
  for (let i = 0; i < 200 && (await inventory.repository.findByIdentity({ lwm2mEndpoint: 'feed-3' })) === null; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(feed.waiting, 0);
  store.close();
  const again = openSqliteStore({ dataDir });
  try {
    assert.equal((await again.inventory.findByIdentity({ lwm2mEndpoint: 'feed-3' }))?.lastContact.lwm2m, 7_000);
  } finally {
    again.close();
  }
});

void test('inventory feed: more devices than maxPending are written without waiting for the window', async () => {
  const store = openStore();
  const inventory = new Inventory({ repository: store.inventory });
  const feed = new Lwm2mInventoryFeed({ inventory, windowMs: 3_600_000, maxPending: 10, onError: failOnError });
  for (let i = 0; i < 10; i++) feed.registration(registration(`feed-many-${i}`, 1_000 + i));
  assert.equal(feed.waiting, 0, 'the tenth device started the write');
  await feed.flush();
  assert.equal((await inventory.list({ limit: 100 })).items.length, 10);
});
