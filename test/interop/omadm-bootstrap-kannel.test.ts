/**
 * Issue 15's "done when", through a real Kannel: a real `depot serve` (startDepotServer with the
 * OMA DM endpoint on HTTPS with Depot's CA and SMS over the lab Kannel: bearerbox + smsbox +
 * fakesmsc, config/kannel/lab.conf.in) and ten never-bootstrapped simulated phones, each with
 * a number on the fake SMSC. ONE API call bootstraps all ten; the USERPIN-secured Client
 * Provisioning documents travel as concatenated WAP Push SMS through bearerbox to fakesmsc,
 * whose output the handsets read (src/sim/sms/handsets.ts) and hand to the phones
 * (src/sim/sms/dm-phone-bridge.ts). Users 1-6 enter 12345: their phones install the account
 * and their first DM session reports DevInfo (make and model in the inventory, bootstrap
 * accepted); users 7-8 enter a wrong PIN and 9-10 none: nothing is installed, their records
 * move to delivered by the delivery reports and stay pending. Then `start-dm` to all ten:
 * the accepted ones get a DM notification over Kannel and each opens a session with its
 * SessionID (the server sees a new session: the facts' update time moves on); the others are
 * reported and get nothing. Last, `depot sim --protocol omadm --smsc` (its own fakesmsc on the
 * same fake SMSC port) runs three more phones that the operator bootstraps.
 */
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RunningDepotServer } from '../../src/app/server.js';
import { decodeUdh } from '../../src/sms/udh.js';
import { SimulatedHandset } from '../../src/sim/omadm/provisioning-client.js';
import { bridgeDmPhone, type DmPhoneBridge } from '../../src/sim/sms/dm-phone-bridge.js';
import { runSmsDmPhonesCommand } from '../../src/sim/sms/dm-phones-cli.js';
import { runSimCommand } from '../../src/cli/sim.js';
import type { FakeSmscNetwork } from '../../src/sim/sms/handsets.js';
import { type KannelLab, waitUntil } from '../../src/sim/sms/kannel-lab.js';
import { apiCall } from '../support/api-client.js';
import { startKannelDepot, type KannelDepot } from '../support/kannel-depot.js';

const TOKEN = 'omadm-kannel-token-0123456789';
let kannel: KannelDepot;
let dir: string;
let lab: KannelLab;
let network: FakeSmscNetwork;
let depot: RunningDepotServer;
let base: string;
let caPem: string;

const phones = Array.from({ length: 10 }, (_, i) => {
  const n = i + 1;
  // Users 1-6 enter 12345, 7-8 a wrong PIN, 9-10 none.
  const userPin = n <= 6 ? '12345' : n <= 8 ? '54321' : null;
  return { n, userPin, msisdn: `+4792000${String(n).padStart(3, '0')}`, imei: `3520000000${String(n).padStart(5, '0')}`, accepts: userPin === '12345' };
});
const bridges = new Map<string, DmPhoneBridge>();

before(async () => {
  kannel = await startKannelDepot('omadm-kannel', TOKEN, { omadm: { port: 0, serverId: 'depot-lab' } });
  ({ dir, lab, network, depot, base, caPem } = kannel);
  for (const p of phones) {
    const phone = new SimulatedHandset({ msisdn: p.msisdn, imei: p.imei, userPin: p.userPin, ca: caPem, index: p.n });
    bridges.set(p.msisdn, bridgeDmPhone(network.handset(p.msisdn), phone));
  }
});

after(async () => {
  for (const b of bridges.values()) b.stop();
  await kannel?.close();
});

const bridge = (msisdn: string): DmPhoneBridge => bridges.get(msisdn)!;
const facts = async (imei: string) => apiCall(base, TOKEN, `/api/v1/omadm/devices/${encodeURIComponent(`IMEI:${imei}`)}`);
const updatedAt = new Map<string, string>();

test('one API call bootstraps ten phones over Kannel; the users who enter 12345 install the account and report make and model in their first DM session; the others stay pending', async () => {
  const out = await apiCall(base, TOKEN, '/api/v1/omadm/bootstrap', { json: { devices: phones.map((p) => ({ msisdn: p.msisdn, imei: p.imei, group: 'lab' })) } });
  assert.equal(out.status, 200, JSON.stringify(out.body));
  assert.deepEqual((out.body.results as { outcome: string }[]).map((r) => r.outcome), new Array(10).fill('sent'));

  for (const p of phones) {
    const b = bridge(p.msisdn);
    const event = await b.waitForEvent(() => true, 30_000);
    // The document (with Depot's root certificate) needs more than one SMS: the handset joined the parts.
    const message = b.handset.messages.find((m) => m.push !== null)!;
    assert.ok(message.parts > 1, `${p.msisdn}: ${message.parts} part(s)`);
    const refs = new Set(b.handset.smsReceived.map((line) => decodeUdh(line.udh!).find((e) => e.kind === 'concat')).map((c) => (c && c.kind === 'concat' ? c.ref : -1)));
    assert.equal(refs.size, 1, `${p.msisdn}: one concatenation reference`);
    assert.equal(message.push!.contentType, 'application/vnd.wap.connectivity-wbxml');
    assert.equal(message.push!.parameters.SEC, 'USERPIN');
    assert.match(message.push!.parameters.MAC!, /^[0-9A-F]{40}$/);
    if (p.accepts) {
      assert.equal(event.kind, 'installed', `${p.msisdn}: ${JSON.stringify(event)}`);
      if (event.kind === 'installed') {
        assert.equal(event.serverId, 'depot-lab');
        assert.equal(event.session?.authenticated, true);
        assert.equal(event.session?.ended, 'completed');
      }
      assert.equal(b.phone.installed.length, 1);
    } else {
      assert.equal(event.kind, 'refused', `${p.msisdn}: ${JSON.stringify(event)}`);
      if (event.kind === 'refused') assert.match(event.reason, p.userPin === null ? /no PIN/ : /wrong PIN/);
      assert.equal(b.phone.installed.length, 0);
    }
  }

  // Every push went through Kannel and its delivery report came back to the outbox.
  await waitUntil('the ten pushes delivered', async () => {
    const pushes = (await depot.sms!.outbox.list({ limit: 100 })).items.filter((m) => m.kind === 'wap-push');
    return pushes.length === 10 && pushes.every((m) => m.state === 'delivered');
  }, 20_000, () => lab.logs().slice(-1500));

  for (const p of phones) {
    let state = '';
    // accepted for those who entered the PIN; delivered (per DLR, still pending) for the others.
    await waitUntil(`${p.msisdn} bootstrap state`, async () => {
      state = String((await apiCall(base, TOKEN, `/api/v1/omadm/bootstrap/${encodeURIComponent(p.msisdn)}`)).body.state);
      return state === (p.accepts ? 'accepted' : 'delivered');
    }, 15_000, () => `state ${state}`);
    const f = await facts(p.imei);
    if (p.accepts) {
      assert.equal(f.status, 200);
      assert.equal(f.body.manufacturer, p.n % 2 === 0 ? 'Acme' : 'Globex');
      assert.equal(f.body.modelNumber, `Model ${1 + (p.n % 3)}`);
      updatedAt.set(p.msisdn, String(f.body.updatedAt));
    } else assert.equal(f.status, 404, `${p.msisdn} has reported nothing`);
  }

  // The inventory shows make and model of the six from their DM sessions.
  type Device = { identities: { omadmDevId: string | null }; make: string | null; model: string | null };
  let devices: Device[] = [];
  await waitUntil('inventory', async () => {
    devices = ((await apiCall(base, TOKEN, '/api/v1/inventory/devices?protocol=omadm&limit=100')).body.devices as Device[]).filter((d) => d.make !== null);
    return devices.length === 6;
  }, 10_000, () => JSON.stringify(devices));
  for (const p of phones.filter((x) => x.accepts)) {
    const d = devices.find((x) => x.identities.omadmDevId === `IMEI:${p.imei}`);
    assert.ok(d, `IMEI:${p.imei} in the inventory`);
    assert.equal(d.make, p.n % 2 === 0 ? 'Acme' : 'Globex');
    assert.equal(d.model, `Model ${1 + (p.n % 3)}`);
  }

  // The shared bootstrap list: six accepted, four pending.
  const shared = await apiCall(base, TOKEN, '/api/v1/bootstrap');
  const omadm = (shared.body.endpoints as { protocol: string; state: string }[]).filter((e) => e.protocol === 'omadm');
  assert.equal(omadm.length, 10);
  assert.equal(omadm.filter((e) => e.state === 'accepted').length, 6);
  assert.equal(omadm.filter((e) => e.state === 'pending').length, 4);
});

test('start-dm to all ten: the accepted phones get the DM notification over Kannel and each opens a session; the others are reported and get nothing', async () => {
  const out = await apiCall(base, TOKEN, '/api/v1/omadm/start-dm', { json: { msisdns: phones.map((p) => p.msisdn) } });
  assert.equal(out.status, 200, JSON.stringify(out.body));
  const results = out.body.results as { msisdn: string; outcome: string; sessionId?: number }[];
  for (const p of phones) {
    const r = results.find((x) => x.msisdn === p.msisdn);
    assert.equal(r?.outcome, p.accepts ? 'notified' : 'reported', `${p.msisdn}: ${JSON.stringify(r)}`);
  }
  for (const p of phones.filter((x) => x.accepts)) {
    const b = bridge(p.msisdn);
    const event = await b.waitForEvent((e) => e.kind === 'session' || e.kind === 'ignored', 30_000);
    assert.equal(event.kind, 'session', `${p.msisdn}: ${JSON.stringify(event)}`);
    if (event.kind === 'session') {
      assert.equal(event.session.authenticated, true);
      assert.equal(event.session.ended, 'completed');
    }
    const notification = b.handset.pushes.find((x) => x.contentType === 'application/vnd.syncml.notification');
    assert.ok(notification, `${p.msisdn} got the notification`);
    assert.equal(notification.applicationId, 'x-wap-application:syncml.dm');
    // Package #0 carries the SessionID start-dm reported (OMA-TS-DM_Notification-V1_2 §6.2: bits 40-55 after the digest: version 10, ui-mode 2, initiator 1, future use 27).
    const sessionId = results.find((x) => x.msisdn === p.msisdn)!.sessionId!;
    const header = notification.body.subarray(16);
    assert.equal((header[5]! << 8) | header[6]!, sessionId);
    // The server saw a second session: the facts were reported again.
    await waitUntil(`${p.msisdn} facts updated`, async () => String((await facts(p.imei)).body.updatedAt) > updatedAt.get(p.msisdn)!, 10_000);
  }
  await Promise.all(phones.map((p) => bridge(p.msisdn).idle()));
  for (const p of phones.filter((x) => !x.accepts)) {
    const b = bridge(p.msisdn);
    assert.equal(b.handset.pushes.length, 1, `${p.msisdn} got only its bootstrap`);
    assert.equal(b.events.length, 1);
  }
  await waitUntil('the notifications delivered', async () => {
    const pushes = (await depot.sms!.outbox.list({ limit: 100 })).items.filter((m) => m.kind === 'wap-push');
    return pushes.length === 16 && pushes.every((m) => m.state === 'delivered');
  }, 20_000);
});

test('depot sim --protocol omadm --smsc: phones reached by SMS through the lab Kannel take their bootstrap, one line per thing they do', async () => {
  // The SMSC's one client is now the simulator's fakesmsc.
  await network.close();
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, caPem);
  const lines: string[] = [];
  const io = { stdout: (t: string) => void lines.push(t), stderr: (t: string) => void lines.push(t) };
  const abort = new AbortController();
  const run = runSmsDmPhonesCommand(['--smsc', `127.0.0.1:${lab.ports.fakeSmsc}`, '--count', '3', '--msisdn-start', '+4792000011', '--imei-start', '352000000000011', '--pins', '12345,none,00000', '--ca', caFile, '--pushes', '1'], io, abort.signal);
  // A bound on the whole run, so that a lost push fails the test instead of hanging it.
  const guard = setTimeout(() => abort.abort(), 45_000);
  try {
    await waitUntil('the simulator listens', () => lines.some((l) => l.includes('3 phone(s) listening')), 15_000, () => lines.join(''));
    assert.ok(lines.some((l) => l.includes('phone +4792000011 IMEI:352000000000011 (user enters a PIN)')), lines.join(''));
    assert.ok(!lines.join('').includes('12345'), 'the PINs are not printed');
    const out = await apiCall(base, TOKEN, '/api/v1/omadm/bootstrap', { json: { devices: [11, 12, 13].map((n) => ({ msisdn: `+47920000${n}`, imei: `3520000000000${n}`, group: 'sim' })) } });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.equal(await run, 0);
  } finally {
    clearTimeout(guard);
  }
  const text = lines.join('');
  assert.match(text, /\+4792000011 installed the DM account of depot-lab; first session completed/);
  assert.match(text, /\+4792000012 refused: the user entered no PIN/);
  assert.match(text, /\+4792000013 refused: the MAC does not verify \(wrong PIN\)/);
  assert.match(text, /installed 1, refused 2/);
  const f = await facts('352000000000011');
  assert.equal(f.status, 200);
  assert.equal(f.body.manufacturer, 'Globex');
  assert.equal((await apiCall(base, TOKEN, `/api/v1/omadm/bootstrap/${encodeURIComponent('+4792000011')}`)).body.state, 'accepted');
  // Bad options are usage errors (exit 2), also through the real command's dispatch.
  lines.length = 0;
  assert.equal(await runSmsDmPhonesCommand(['--smsc', '127.0.0.1:1', '--count', '1', '--pins', 'abc'], io), 2);
  assert.match(lines.join(''), /--pins: "abc" is neither/);
  assert.equal(await runSmsDmPhonesCommand(['--smsc', '127.0.0.1:1', '--count', '1', '--imei-start', '99999999999999x'], io), 2);
  assert.equal(await runSimCommand(['--protocol', 'omadm', '--smsc', 'nowhere', '--count', '1']), 2);
});
