/**
 * The OMA DM bootstrap tables in the real SQLite store (src/store/sqlite/omadm-bootstrap.ts):
 * server passwords and PINs sealed at rest and bound to their rows, compare-and-set transitions,
 * pushes found by their outbox id, bad input refused before anything is written; and the
 * provisioning decoder's refusals (truncated and mutated documents end in its typed error only).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import { StoreError } from '../../../src/store/errors.js';
import { dmAccountDocument } from '../../../src/omadm/provisioning/document.js';
import { ProvisioningFormatError, decodeProvisioningWbxml, encodeProvisioningWbxml } from '../../../src/omadm/provisioning/wbxml.js';
import { verifyProvisioningMac, provisioningKey, provisioningMac, userPinMac } from '../../../src/omadm/provisioning/security.js';
import { ProfileError, profileFrom, DEFAULT_PROFILE } from '../../../src/omadm/bootstrap/profiles.js';

function withStore(fn: (store: ReturnType<typeof openSqliteStore>, dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'depot-omadm-boot-store-'));
    const store = openSqliteStore({ dataDir: dir, secretKey: randomBytes(32) });
    try {
      await fn(store, dir);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('a bootstrap row: upsert completes what is known, transitions are compare-and-set, the server password and PIN are sealed in the file', withStore(async (store, dir) => {
  const repo = store.omadmBootstrap;
  const a = await repo.upsert({ msisdn: '+4790000001', imei: '350000000000001' }, 1000);
  assert.equal(a.deviceId, 'IMEI:350000000000001');
  assert.equal(a.state, 'new');
  const b = await repo.upsert({ msisdn: '+4790000001', imsi: '242011234567890', group: 'g' }, 2000);
  assert.equal(b.imei, '350000000000001');
  assert.equal(b.imsi, '242011234567890');
  assert.equal(b.group, 'g');

  const send = { security: 'USERPIN', serverId: 'depot', serverPassword: 'server-secret-xyz', serverNonce: Uint8Array.from([1, 2, 3]), push: { id: 'p1', idempotencyKey: 'k1' } };
  assert.equal(await repo.transition('+4790000001', 'new', 'sent', 3000, { send }), true);
  assert.equal(await repo.transition('+4790000001', 'new', 'sent', 3000, { send: { ...send, push: { id: 'p2', idempotencyKey: 'k2' } } }), false, 'no longer new');
  const row = await repo.get('+4790000001');
  assert.equal(row?.state, 'sent');
  assert.equal(row?.sends, 1);
  assert.equal(row?.sentAt, 3000);
  assert.deepEqual(await repo.serverCredentials('IMEI:350000000000001'), { serverId: 'depot', password: 'server-secret-xyz', nonce: Uint8Array.from([1, 2, 3]) });
  assert.equal((await repo.push('p1'))?.msisdn, '+4790000001');
  assert.equal(await repo.push('p2'), null);

  await repo.putSettings('global', { pin: '13579', data: { maxSends: 4 } }, 4000);
  assert.equal((await repo.getSettings('global'))?.pin, '13579');
  await repo.putSettings('global', { data: { maxSends: 5 } }, 5000);
  assert.equal((await repo.getSettings('global'))?.pin, '13579', 'options alone keep the PIN');
  assert.deepEqual((await repo.getSettings('global'))?.data, { maxSends: 5 });

  // Nothing secret in clear in the database file (WAL checkpointed).
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  const file = readFileSync(join(dir, 'depot.sqlite'));
  assert.equal(file.includes(Buffer.from('server-secret-xyz')), false);
  assert.equal(file.includes(Buffer.from('13579')), false);
  // A sealed value moved to another row does not open.
  await repo.upsert({ msisdn: '+4790000002', imei: '350000000000002' }, 6000);
  store.db.prepare("UPDATE omadm_bootstrap SET server_id = 'x', server_nonce = x'00', server_password = (SELECT server_password FROM omadm_bootstrap WHERE msisdn = '+4790000001') WHERE msisdn = '+4790000002'").run();
  await assert.rejects(repo.serverCredentials('IMEI:350000000000002'), (e: unknown) => e instanceof StoreError && e.code === 'STORE_CORRUPT');
}));

test('bad input is refused before anything is written: numbers, IMEI, IMSI, scopes, PINs', withStore(async (store) => {
  const repo = store.omadmBootstrap;
  for (const msisdn of ['4790000001', '+0790000001', '+47 900', '+47900000010000000', '']) {
    await assert.rejects(repo.upsert({ msisdn }, 1), (e: unknown) => e instanceof StoreError && e.code === 'INVALID_ARGUMENT', msisdn);
  }
  await assert.rejects(repo.upsert({ msisdn: '+4790000001', imei: '12ab' }, 1), /IMEI/);
  await assert.rejects(repo.upsert({ msisdn: '+4790000001', imsi: '1' }, 1), /IMSI/);
  await assert.rejects(repo.upsert({ msisdn: '+4790000001', group: 'a\u0000b' }, 1), /group/);
  await assert.rejects(repo.putSettings('everyone', { pin: '1234' }, 1), /scope/);
  await assert.rejects(repo.putSettings('global', { pin: '12a4' }, 1), /PIN/);
  assert.deepEqual((await repo.list()).items, []);
}));

test('ProvCont: every truncation and random byte changes of a document end in ProvisioningFormatError or a document, nothing else', () => {
  const wbxml = encodeProvisioningWbxml(dmAccountDocument({
    serverId: 'depot', name: 'Depot', address: 'https://dm.example/dm', port: 8443, authType: 'DIGEST', init: true,
    server: { name: 'depot', secret: 's', nonce: Uint8Array.from([1]) }, client: { name: 'c', secret: 'p', nonce: Uint8Array.from([2]) },
  }));
  for (let n = 0; n < wbxml.length; n++) assert.throws(() => decodeProvisioningWbxml(wbxml.subarray(0, n)), ProvisioningFormatError, `truncated at ${n}`);
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(wbxml.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (changes) => {
    const m = Uint8Array.from(wbxml);
    for (const [at, v] of changes) m[at] = v;
    try {
      decodeProvisioningWbxml(m);
    } catch (error) {
      if (!(error instanceof ProvisioningFormatError)) throw error;
    }
  }), { numRuns: 2000 });
  assert.throws(() => decodeProvisioningWbxml(Uint8Array.from([0x03, 0x01, 0x6a, 0x00, 0x83, 0x00])), /not an element/);
  assert.throws(() => decodeProvisioningWbxml(Uint8Array.from([0x03, 0x12, 0x6a, 0x00, 0x05])), /public identifier/);
});

test('ProvBoot §5: a MAC verifies only with its own key and document; USERPINMAC carries the MAC in the PIN', () => {
  const doc = Uint8Array.from([1, 2, 3, 4]);
  const mac = provisioningMac(provisioningKey('USERPIN', { pin: '12345' }), doc);
  assert.equal(verifyProvisioningMac('USERPIN', mac, doc, { pin: '12345' }), true);
  assert.equal(verifyProvisioningMac('USERPIN', mac.toLowerCase(), doc, { pin: '12345' }), true, 'hex digits without regard to case');
  assert.equal(verifyProvisioningMac('USERPIN', mac, doc, { pin: '12346' }), false);
  assert.equal(verifyProvisioningMac('USERPIN', mac, Uint8Array.from([1, 2, 3, 5]), { pin: '12345' }), false);
  assert.equal(verifyProvisioningMac('USERPIN', 'zz', doc, { pin: '12345' }), false);
  assert.equal(verifyProvisioningMac('USERPIN', undefined, doc, { pin: '12345' }), false);
  assert.equal(verifyProvisioningMac('NETWPIN', mac, doc, { pin: '12345' }), false, 'no IMSI, no NETWPIN');
  const pin = userPinMac('12345', doc);
  assert.match(pin, /^12345\d{5}$/);
  assert.equal(verifyProvisioningMac('USERPINMAC', undefined, doc, { pin }), true);
  assert.equal(verifyProvisioningMac('USERPINMAC', undefined, Uint8Array.from([9]), { pin }), false);
});

test('model profiles are data: unknown fields and bad values are refused by name, the rest comes from the defaults', () => {
  assert.deepEqual(profileFrom(undefined), DEFAULT_PROFILE);
  const p = profileFrom({ notification: { version: 11, digest: 'nonce-as-base64-text' }, provisioning: { rootCertificate: true } });
  assert.equal(p.notification.version, 11);
  assert.equal(p.notification.digest, 'nonce-as-base64-text');
  assert.equal(p.provisioning.rootCertificate, true);
  assert.equal(p.provisioning.security, 'USERPIN');
  assert.throws(() => profileFrom({ notification: { versoin: 11 } }), ProfileError);
  assert.throws(() => profileFrom({ provisioning: { security: 'NONE' } }), /provisioning.security/);
  assert.throws(() => profileFrom([]), ProfileError);
});
