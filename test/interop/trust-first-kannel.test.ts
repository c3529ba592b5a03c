/**
 * Trust first (issue 16), end to end over real sockets and a real Kannel (bearerbox + smsbox +
 * fakesmsc, as in omadm-bootstrap-kannel.test.ts): `depot serve` with its OMA DM endpoint on
 * HTTPS under Depot's CA, and an `untrusting` simulated phone (src/sim/omadm/profiles.ts): its
 * DM client refuses Depot's TLS certificate until the root is in its trust store. The phone has a
 * DM account and a number; its session attempts fail the TLS handshake, so Depot never sees one.
 *
 * An install job on the default chain: SCOMO fails for trust (NO_TRUST: an account, never a
 * session, trust unknown), Send certificate texts the phone a one-time link over Kannel, the
 * handset's browser fetches the root (application/x-x509-ca-cert) and installs it
 * (PhoneTrust.push), the step succeeds, SCOMO is tried again and the phone's next session installs
 * the package. The attempt history shows all three; the trust record is confirmed by that HTTPS
 * session and the inventory says the device holds Depot's root. The link is one-time: fetched
 * past its limit it answers 404.
 */
import { strict as assert } from 'node:assert';
import { randomBytes, X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { RunningDepotServer } from '../../src/app/server.js';
import { makeSimPhone } from '../../src/sim/omadm/profiles.js';
import { bridgeCertificateLinks, type CertificateLinkBridge } from '../../src/sim/sms/dm-phone-bridge.js';
import { apiCall, type ChainJson } from '../support/api-client.js';
import { startKannelDepot, type KannelDepot } from '../support/kannel-depot.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';

const TOKEN = 'trust-first-kannel-token-0123456789';
const MSISDN = '+4792100001';
const DEVICE_ID = 'IMEI:352000000900017';
let kannel: KannelDepot;
let depot: RunningDepotServer;
let base: string;
let caPem: string;
let links: CertificateLinkBridge | undefined;

const call = (path: string, init: Parameters<typeof apiCall>[3] = {}) => apiCall(base, TOKEN, path, init);

before(async () => {
  kannel = await startKannelDepot('trust-kannel', TOKEN, { publicHost: '127.0.0.1', omadm: { port: 0 }, chain: { tickMs: 100 } });
  ({ depot, base, caPem } = kannel);
});

after(async () => {
  links?.stop();
  await kannel?.close();
});

test('an untrusting phone: SCOMO fails for trust, Send certificate pushes the root over Kannel, SCOMO is retried and installs; the history shows all three', async () => {
  const dmUrl = depot.listening['oma dm']!;
  assert.match(dmUrl, /^https:/);
  const added = await call('/api/v1/packages', { bytes: makePackage({ name: 'maps', version: '3.1.0', files: [{ path: 'bin/maps', data: randomBytes(20_000), mode: 0o755 }] }) });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  const sha = added.body['sha256'] as string;
  const password = `secret-${DEVICE_ID}`;
  assert.equal((await call('/api/v1/omadm/accounts', { json: { deviceId: DEVICE_ID, clientPassword: password } })).status, 201);
  const endpoint = `omadm:${DEVICE_ID}`;
  assert.equal((await call('/api/v1/sms/numbers', { json: { endpoint, number: MSISDN } })).status, 200);
  const sim = makeSimPhone('untrusting', { deviceId: DEVICE_ID, password, index: 1, caPem });
  links = bridgeCertificateLinks(kannel.network.handset(MSISDN), sim.trust);

  // The phone's DM client refuses Depot's certificate: no session reaches Depot.
  await assert.rejects(sim.phone!.runSession(dmUrl), /certificate/);
  const before = await call(`/api/v1/devices/${encodeURIComponent(endpoint)}/certificate`);
  assert.equal(before.status, 404, 'trust unknown: Depot never pushed');

  const created = await call(`/api/v1/devices/${encodeURIComponent(endpoint)}/install-chains`, { json: { package: sha } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = (created.body as unknown as ChainJson).id;
  assert.ok(!(created.body as unknown as ChainJson).methods.includes('send-certificate'), 'the trust step is not a chain method');

  // The handset gets the text over Kannel, its browser fetches the root and installs it.
  const installed = await links.waitForEvent(() => true, 30_000);
  assert.equal(installed.kind, 'certificate-installed', JSON.stringify(installed));
  assert.equal(installed.kind === 'certificate-installed' ? installed.fingerprint : '', new X509Certificate(caPem).fingerprint256);
  const text = kannel.network.handset(MSISDN).texts.find((t) => t.includes('/c/'))!;
  assert.match(text, /Depot root certificate/);
  assert.match(text, new RegExp(`SHA-256 ${new X509Certificate(caPem).fingerprint256.slice(0, 23)}`));

  // The phone now trusts Depot: its sessions go through until the retried SCOMO job is done.
  let job: ChainJson | undefined;
  for (let i = 0; i < 200; i++) {
    job = (await call(`/api/v1/install-chains/${id}`)).body as unknown as ChainJson;
    if (job.state !== 'running' || job.attempts.length > 4) break;
    assert.equal((await sim.phone!.runSession(dmUrl)).ended, 'completed');
    await sim.scomo!.idle();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(job!.state, 'succeeded', JSON.stringify(job));
  assert.deepEqual(
    job!.attempts.map((a) => [a.method, a.position, a.outcome]),
    [
      ['object9', 0, 'skipped'],
      ['scomo', 1, 'failed'],
      ['send-certificate', 1, 'succeeded'],
      ['scomo', 1, 'succeeded'],
    ],
  );
  assert.equal(job!.attempts[1]!.result, 'NO_TRUST');
  // PUSHED (the link was fetched), or CONFIRMED when the phone's HTTPS session came before the step's next look.
  assert.match(job!.attempts[2]!.result!, /^(PUSHED|CONFIRMED)$/);
  const failed = job!.attempts.find((a) => a.method === 'scomo' && a.outcome === 'failed')!;
  assert.match(failed.message!, /never opened a DM session.*refusing Depot's TLS certificate.*Depot's root is sent first, then scomo is tried once more/);
  assert.match(job!.attempts.find((a) => a.method === 'send-certificate')!.message!, /^root pushed by sms-link: the device (fetched the root from its link|opened an HTTPS DM session after the push)$/);
  assert.equal(sim.scomo!.installs, 1);

  // The HTTPS session after the push confirmed it; the inventory says the device holds the root.
  const trust = await call(`/api/v1/devices/${encodeURIComponent(endpoint)}/certificate`);
  assert.equal(trust.status, 200);
  assert.deepEqual([trust.body['state'], trust.body['channel']], ['confirmed', 'sms-link']);
  assert.ok(trust.body['confirmedAt'] && trust.body['pushedAt'] && trust.body['sentAt']);
  const listed = await call('/api/v1/certificates/devices?state=confirmed');
  const row = (listed.body['devices'] as { endpoint: string; trustState: string }[]).find((d) => d.endpoint === endpoint);
  assert.equal(row?.trustState, 'yes');

  // One-time: the link stops working after its fetch limit.
  const url = /https?:\/\/\S+\/c\/[A-Za-z0-9_-]+/.exec(text)![0];
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await fetch(url)).status);
  assert.equal(statuses[statuses.length - 1], 404, String(statuses));
});
