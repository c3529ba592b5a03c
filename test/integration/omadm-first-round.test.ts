/**
 * The normal nonce round of a phone's first session, over the real HTTPS endpoint and a real
 * SQLite store: a new phone's first syncml:auth-md5 digest is over a nonce it has never been given
 * (OMA-TS-DM_Security-V1_2 §5.3: it learns it from the 401's Chal), so it fails once by design.
 * A fleet of such phones behind one address (a carrier NAT) must not be locked out by the
 * throttles, the log must say what happened (not "refused"), and real guessing is still throttled.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import { OmaDmHttpServer, factsEndpointOf } from '../../src/omadm/http.js';
import { DmPhone, httpTransport, phoneTree } from '../../src/sim/omadm/phone.js';

/** Small limits, so a fleet larger than them stays a short test. */
const PER_SOURCE = 10;
const PER_DEVICE = 3;
const FLEET = 25;

let dir: string;
let store: SqliteStore;
let server: OmaDmHttpServer;
let url: string;
let caPem: string;
const logs: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-first-round-'));
  const ca = await CertificateAuthority.create();
  caPem = ca.exportRoot('pem');
  const issued = await ca.issueServerCertificate({ names: ['localhost', '127.0.0.1'] });
  store = openSqliteStore({ dataDir: join(dir, 'data'), secretKey: randomBytes(32) });
  server = new OmaDmHttpServer({
    store, host: '127.0.0.1', port: 0, tls: { cert: issued.certificatePem, key: issued.privateKeyPem! },
    throttleFailuresPerSource: PER_SOURCE, throttleFailuresPerDevice: PER_DEVICE, throttleWindowMs: 10 * 60_000,
    log: (line) => logs.push(line),
  });
  url = `https://localhost:${await server.listen()}/dm`;
});

after(async () => {
  await server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function newPhone(name: string, password = `pw-${name}`, register = true): Promise<DmPhone> {
  const deviceId = `IMEI:${name}`;
  if (register) await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: `pw-${name}` }, randomBytes(16), Date.now());
  return new DmPhone({ deviceId, username: deviceId, password, encoding: 'xml', auth: 'md5', tree: phoneTree(deviceId, 1) }, httpTransport(caPem));
}

test(`OMA-TS-DM_Security-V1_2 §5.3: ${FLEET} new phones behind one address (more than the per-source limit of ${PER_SOURCE}) each do their first nonce round and all get in`, async () => {
  for (let i = 0; i < FLEET; i++) {
    const phone = await newPhone(`4900000000${String(i).padStart(5, '0')}`);
    const report = await phone.runSession(url);
    assert.equal(report.ended, 'completed', `phone ${i} completed`);
    assert.equal(report.authenticated, true, `phone ${i} authenticated`);
    assert.ok(await store.deviceFacts.get(factsEndpointOf(phone.profile.deviceId)));
  }
  const rounds = logs.filter((l) => l.includes('omadm: authentication of'));
  assert.equal(rounds.length, FLEET, 'one nonce round per phone');
  for (const line of rounds) {
    assert.match(line, /syncml:auth-md5 credential not accepted \(wrong credential or stale nonce\), challenged with a new nonce$/);
    assert.doesNotMatch(line, /refused/);
  }
});

test(`a phone's first round, repeated in ${PER_DEVICE - 1} sessions (lost replies), does not lock the phone out`, async () => {
  const phone = await newPhone('491111111111111');
  for (let i = 0; i < PER_DEVICE - 1; i++) {
    phone.nonce = new Uint8Array(); // the phone lost its nonce again: another first round
    const report = await phone.runSession(url);
    assert.equal(report.authenticated, true);
  }
});

test('guessing is still throttled: a wrong password fails its retries too, which lock the device and then its source', async () => {
  const victim = await newPhone('492222222222222');
  const guesser = await newPhone('492222222222222', 'a-guess', false);
  const guess = await guesser.runSession(url);
  assert.equal(guess.ended, 'server-abort');
  assert.ok(logs.some((l) => l.includes('IMEI:492222222222222') && l.includes('refused after 3 attempts')));
  // 3 failures = the per-device limit: even the right password is now refused without a check.
  const locked = await victim.runSession(url);
  assert.equal(locked.authenticated, false);
  // Retries (after a fresh nonce in the same session) count per source: enough of them block a new phone from that address.
  for (let i = 0; i < PER_SOURCE; i++) await (await newPhone(`4933333333${String(i).padStart(5, '0')}`, 'wrong')).runSession(url);
  const late = await newPhone('494444444444444');
  const report = await late.runSession(url);
  assert.equal(report.authenticated, false);
  assert.ok(logs.some((l) => l.includes('IMEI:494444444444444') && l.includes('not checked (throttled)')));
});
