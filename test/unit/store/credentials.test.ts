import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { inspect } from 'node:util';

import { SecretKey, StoreError, type Credential, type PskCredential } from '../../../src/store/index.js';
import { T0, openStore, storeError } from './helpers.js';

const KEY = Uint8Array.from(Buffer.from('d3adbeef0badf00dc0ffee1234567890', 'hex'));
const KEY2 = Uint8Array.from(Buffer.from('aa55aa55aa55aa55aa55aa55aa55aa55', 'hex'));

/** Every way the key bytes could show up in text. */
function encodings(key: Uint8Array): string[] {
  const b = Buffer.from(key);
  return [
    b.toString('hex'),
    b.toString('hex').toUpperCase(),
    b.toString('base64'),
    b.toString('base64url'),
    [...b].map((x) => x.toString(16).padStart(2, '0')).join(' '), // <Buffer d3 ad ...>
    [...b].join(', '), // Uint8Array(16) [ 211, 173, ... ]
    [...b].join(','), // JSON of a Uint8Array's values
    b.toString('latin1'),
  ];
}

function assertNoKey(text: string, key: Uint8Array, what: string): void {
  for (const e of encodings(key)) assert.ok(!text.includes(e), `${what} contains the key (${e}): ${text}`);
}

void test('credentials: bind a PSK and look it up by identity; the key comes back only through reveal()', async () => {
  const { credentials } = openStore();
  const bound = await credentials.bind('dev-1', { kind: 'psk', identity: 'dev-1-id', key: KEY }, T0);
  assert.equal(bound.kind, 'psk');
  const found = await credentials.findPsk('dev-1-id');
  assert.ok(found);
  assert.deepEqual(
    { kind: found.kind, identity: found.identity, endpoint: found.endpoint, createdAt: found.createdAt, updatedAt: found.updatedAt },
    { kind: 'psk', identity: 'dev-1-id', endpoint: 'dev-1', createdAt: T0, updatedAt: T0 },
  );
  assert.ok(found.key instanceof SecretKey);
  assert.deepEqual(found.key.reveal(), KEY);
  assert.equal(found.key.length, 16);
  assert.equal(found.key.equals(KEY), true);
  assert.equal(found.key.equals(KEY2), false);
  assert.equal(await credentials.findPsk('unknown'), null);
  assert.equal(await credentials.findPsk('DEV-1-ID'), null); // identities are exact
  // What the DTLS server plugs in as pskLookup:
  const pskLookup = async (identity: string): Promise<Uint8Array | undefined> => (await credentials.findPsk(identity))?.key.reveal();
  assert.deepEqual(await pskLookup('dev-1-id'), KEY);
  assert.equal(await pskLookup('nobody'), undefined);
});

void test('credentials: the key is redacted in JSON.stringify, util.inspect, String() and template literals', async () => {
  const { credentials } = openStore();
  const bound = await credentials.bind('dev-1', { kind: 'psk', identity: 'dev-1-id', key: KEY }, T0);
  const found = (await credentials.findPsk('dev-1-id'))!;
  for (const record of [bound, found]) {
    const json = JSON.stringify(record);
    assert.deepEqual(JSON.parse(json), {
      kind: 'psk',
      identity: 'dev-1-id',
      endpoint: 'dev-1',
      createdAt: T0,
      updatedAt: T0,
      key: '[redacted]',
    });
    const shown = inspect(record, { depth: 10, showHidden: true, getters: true });
    assertNoKey(shown, KEY, 'inspect');
    assert.match(shown, /key: SecretKey\(\[redacted\], 16 bytes\)/);
    assertNoKey(JSON.stringify({ list: [record] }), KEY, 'nested JSON');
    const pk = record as PskCredential;
    assert.equal(String(pk.key), '[redacted]');
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- the point of the test
    assert.equal(`${pk.key}`, '[redacted]');
    assertNoKey(inspect(await credentials.listByEndpoint('dev-1'), { depth: 10 }), KEY, 'inspect of a list');
  }
  // The caller's buffer is copied: changing it does not change the stored or returned key.
  const mine = Uint8Array.from(KEY2);
  const k = new SecretKey(mine);
  mine.fill(0);
  assert.deepEqual(k.reveal(), KEY2);
});

void test('credentials: a PSK identity bound to another endpoint is refused with CONFLICT; the error names no key', async () => {
  const { credentials } = openStore();
  await credentials.bind('dev-1', { kind: 'psk', identity: 'shared-id', key: KEY }, T0);
  let caught: unknown;
  try {
    await credentials.bind('dev-2', { kind: 'psk', identity: 'shared-id', key: KEY2 }, T0 + 1);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StoreError);
  assert.equal(caught.code, 'CONFLICT');
  assert.equal(caught.message, 'PSK identity "shared-id" is already bound to endpoint dev-1');
  for (const text of [caught.message, caught.stack ?? '', inspect(caught, { depth: 10 }), JSON.stringify(caught)]) {
    assertNoKey(text, KEY, 'error');
    assertNoKey(text, KEY2, 'error');
  }
  // The binding and its key are unchanged.
  const found = (await credentials.findPsk('shared-id'))!;
  assert.equal(found.endpoint, 'dev-1');
  assert.deepEqual(found.key.reveal(), KEY);
  assert.deepEqual(await credentials.listByEndpoint('dev-2'), []);
});

void test('credentials: binding the same identity to the same endpoint again replaces the key and keeps createdAt', async () => {
  const { credentials } = openStore();
  await credentials.bind('dev-1', { kind: 'psk', identity: 'id-1', key: KEY }, T0);
  const again = (await credentials.bind('dev-1', { kind: 'psk', identity: 'id-1', key: new SecretKey(KEY2) }, T0 + 100)) as PskCredential;
  assert.deepEqual([again.createdAt, again.updatedAt], [T0, T0 + 100]);
  assert.deepEqual((await credentials.findPsk('id-1'))?.key.reveal(), KEY2);
  assert.equal((await credentials.listByEndpoint('dev-1')).length, 1);
});

void test('credentials: certificate subject, certificate fingerprint and raw public key map to one endpoint each', async () => {
  const { credentials } = openStore();
  const fp = 'AB'.repeat(32);
  const spki = '0f'.repeat(32);
  await credentials.bind('dev-1', { kind: 'x509-subject', identity: 'CN=dev-1,O=ACME' }, T0);
  await credentials.bind('dev-1', { kind: 'x509-sha256', identity: fp }, T0);
  await credentials.bind('dev-2', { kind: 'rpk-sha256', identity: spki }, T0);
  const strip = (c: Credential | null): unknown => (c ? { kind: c.kind, identity: c.identity, endpoint: c.endpoint } : null);
  assert.deepEqual(strip(await credentials.find('x509-subject', 'CN=dev-1,O=ACME')), { kind: 'x509-subject', identity: 'CN=dev-1,O=ACME', endpoint: 'dev-1' });
  // Fingerprints are stored and matched as lowercase hex.
  assert.deepEqual(strip(await credentials.find('x509-sha256', fp)), { kind: 'x509-sha256', identity: 'ab'.repeat(32), endpoint: 'dev-1' });
  assert.deepEqual(strip(await credentials.find('x509-sha256', fp.toLowerCase())), { kind: 'x509-sha256', identity: 'ab'.repeat(32), endpoint: 'dev-1' });
  assert.deepEqual(strip(await credentials.find('rpk-sha256', spki)), { kind: 'rpk-sha256', identity: spki, endpoint: 'dev-2' });
  assert.equal(await credentials.find('x509-subject', 'CN=dev-2'), null);
  // endpointOf answers the same question, with the endpoint alone.
  assert.equal(await credentials.endpointOf('x509-subject', 'CN=dev-1,O=ACME'), 'dev-1');
  assert.equal(await credentials.endpointOf('x509-sha256', fp), 'dev-1');
  assert.equal(await credentials.endpointOf('rpk-sha256', spki.toUpperCase()), 'dev-2');
  assert.equal(await credentials.endpointOf('x509-subject', 'CN=dev-2'), null);
  // The same subject string as a PSK identity is a different key space.
  assert.equal(await credentials.findPsk('CN=dev-1,O=ACME'), null);
  assert.equal(await credentials.endpointOf('psk', 'CN=dev-1,O=ACME'), null);
  await assert.rejects(
    credentials.bind('dev-2', { kind: 'x509-sha256', identity: fp.toLowerCase() }, T0),
    storeError('CONFLICT', new RegExp(`^certificate fingerprint "${'ab'.repeat(32)}" is already bound to endpoint dev-1$`)),
  );
  await assert.rejects(credentials.bind('dev-1', { kind: 'rpk-sha256', identity: spki }, T0), storeError('CONFLICT', /^raw public key ".*" is already bound to endpoint dev-2$/));
  await assert.rejects(credentials.bind('dev-1', { kind: 'rpk-sha256', identity: 'abc' }, T0), storeError('INVALID_ARGUMENT', /^a rpk-sha256 identity must be 64 hex digits$/));
  assert.deepEqual((await credentials.listByEndpoint('dev-1')).map(strip), [
    { kind: 'x509-sha256', identity: 'ab'.repeat(32), endpoint: 'dev-1' },
    { kind: 'x509-subject', identity: 'CN=dev-1,O=ACME', endpoint: 'dev-1' },
  ]);
});

void test('credentials: rotatePsk replaces all of the endpoint\'s PSKs atomically and refuses an identity held elsewhere', async () => {
  const { credentials } = openStore();
  await credentials.bind('dev-1', { kind: 'psk', identity: 'old-a', key: KEY }, T0);
  await credentials.bind('dev-1', { kind: 'psk', identity: 'old-b', key: KEY }, T0);
  await credentials.bind('dev-1', { kind: 'x509-subject', identity: 'CN=dev-1' }, T0);
  await credentials.bind('dev-2', { kind: 'psk', identity: 'taken', key: KEY }, T0);
  const rotated = await credentials.rotatePsk('dev-1', 'new-id', KEY2, T0 + 10);
  assert.deepEqual([rotated.identity, rotated.endpoint, rotated.createdAt], ['new-id', 'dev-1', T0 + 10]);
  assert.deepEqual(rotated.key.reveal(), KEY2);
  assert.deepEqual((await credentials.listByEndpoint('dev-1')).map((c) => `${c.kind}:${c.identity}`), ['psk:new-id', 'x509-subject:CN=dev-1']);
  assert.equal(await credentials.findPsk('old-a'), null);

  await assert.rejects(credentials.rotatePsk('dev-1', 'taken', KEY, T0 + 20), storeError('CONFLICT', /^PSK identity "taken" is already bound to endpoint dev-2$/));
  assert.deepEqual((await credentials.findPsk('new-id'))?.key.reveal(), KEY2);
  assert.equal((await credentials.findPsk('taken'))?.endpoint, 'dev-2');

  // Same identity, new key: the binding keeps its age.
  const sameId = await credentials.rotatePsk('dev-1', 'new-id', KEY, T0 + 30);
  assert.deepEqual([sameId.createdAt, sameId.updatedAt], [T0 + 10, T0 + 30]);
  assert.deepEqual((await credentials.findPsk('new-id'))?.key.reveal(), KEY);
});

void test('credentials: remove and removeEndpoint', async () => {
  const { credentials } = openStore();
  await credentials.bind('dev-1', { kind: 'psk', identity: 'a', key: KEY }, T0);
  await credentials.bind('dev-1', { kind: 'x509-subject', identity: 'CN=a' }, T0);
  await credentials.bind('dev-2', { kind: 'psk', identity: 'b', key: KEY }, T0);
  assert.equal(await credentials.remove('psk', 'a'), true);
  assert.equal(await credentials.remove('psk', 'a'), false);
  assert.equal(await credentials.removeEndpoint('dev-1'), 1);
  assert.deepEqual(await credentials.listByEndpoint('dev-1'), []);
  assert.equal((await credentials.findPsk('b'))?.endpoint, 'dev-2');
  // Once removed, the identity is free for another endpoint.
  await credentials.bind('dev-3', { kind: 'psk', identity: 'a', key: KEY2 }, T0);
  assert.equal((await credentials.findPsk('a'))?.endpoint, 'dev-3');
});

void test('credentials: invalid keys are refused without echoing them', async () => {
  const { credentials } = openStore();
  await assert.rejects(credentials.bind('dev-1', { kind: 'psk', identity: 'a', key: new Uint8Array(0) }, T0), storeError('INVALID_ARGUMENT', /^a PSK key must be non-empty bytes$/));
  await assert.rejects(credentials.bind('dev-1', { kind: 'psk', identity: '', key: KEY }, T0), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.message, 'identity must be a non-empty string');
    assertNoKey(err.message, KEY, 'error');
    return true;
  });
});

void test('credentials: with secure_delete, removed and rotated-away (sealed) keys are gone from the database file', async () => {
  const store = openStore();
  const { credentials, db, path } = store;
  const KEY3 = Uint8Array.from(Buffer.from('0123456789abcdef0123456789abcdef', 'hex'));
  await credentials.bind('dev-0', { kind: 'x509-subject', identity: 'CN=dev-0' }, T0);
  await credentials.bind('dev-1', { kind: 'psk', identity: 'id', key: KEY }, T0);
  await credentials.bind('dev-2', { kind: 'psk', identity: 'id-2', key: KEY3 }, T0);
  await credentials.bind('dev-3', { kind: 'x509-subject', identity: 'CN=dev-3' }, T0);
  db.pragma('wal_checkpoint(TRUNCATE)');
  // Keys are sealed at rest (secret-at-rest.test.ts): what must go is the sealed value.
  const sealed = (identity: string) => db.prepare("SELECT secret FROM credentials WHERE kind = 'psk' AND identity = ?").pluck().get(identity) as Buffer;
  const sealed1 = sealed('id');
  const sealed3 = sealed('id-2');
  const before = readFileSync(path);
  assert.ok(before.includes(sealed1) && before.includes(sealed3), 'the sealed keys are in the file to begin with');
  await credentials.remove('psk', 'id-2');
  await credentials.rotatePsk('dev-1', 'id', KEY2, T0 + 1);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const after = readFileSync(path);
  assert.equal(after.includes(sealed3), false, 'removed key still in the file');
  assert.equal(after.includes(sealed1), false, 'rotated key still in the file');
  assert.ok(after.includes(sealed('id')));
});
