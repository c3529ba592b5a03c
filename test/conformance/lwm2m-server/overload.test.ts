/**
 * Admission control of Depot's LwM2M server under overload (a fleet that reboots at once):
 * RFC 7252 §5.9.3.4 (5.03 Service Unavailable, Max-Age = seconds after which to retry) and
 * LwM2M TS Core 1.1 §6.2.1 (the device registers again). Real UDP sockets, real SQLite.
 */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, ContentFormat } from '../../../src/coap/codes.js';
import { decodeUint } from '../../../src/coap/options.js';
import { CoapClient } from '../../../src/coap/client.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { Lwm2mServer } from '../../../src/lwm2m/server/server.js';
import { encodeRecords, Value } from '../../../src/lwm2m/index.js';
import { openSqliteStore } from '../../../src/store/index.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const MAX_AGE = 14;

test('RFC 7252 §5.9.3.4: past maxPendingContacts waiting devices, Register and Update get 5.03 with Max-Age (1..maxRetryAfterSec); nothing is stored for them; a later Register is taken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-overload-'));
  dirs.push(dir);
  const store = openSqliteStore({ dataDir: dir });
  const coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  const lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, requestTimeout: 5000, maxConcurrentContacts: 1, maxPendingContacts: 2, maxRetryAfterSec: 30 });
  const uri = `coap://127.0.0.1:${coap.endpoint.transport.address().port}`;
  // Devices whose /3/0 read is held: their contacts stay pending until the gate opens.
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const devices: { coap: CoapServer; client: CoapClient }[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const device = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
      device.resource('/3/0', {
        get: async () => {
          await gate;
          return { code: Code.Content, contentFormat: ContentFormat.SenmlCbor, payload: encodeRecords(ContentFormat.SenmlCbor, [{ path: [3, 0, 0], value: Value.string(`M${i}`) }]) };
        },
      });
      devices.push({ coap: device, client: new CoapClient({ endpoint: device.endpoint }) });
    }
    const register = (i: number) => devices[i]!.client.post(`${uri}/rd?ep=dev-${i}&lwm2m=1.1`, '</3/0>', { contentFormat: ContentFormat.LinkFormat });
    const first = await register(0);
    const second = await register(1);
    assert.equal(first.codeText, '2.01');
    assert.equal(second.codeText, '2.01');
    // Two contacts pending (one being read, one waiting): the bound is reached.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lwm2m.admissionStats().pendingContacts, 2);
    const refused = await register(2);
    assert.equal(refused.codeText, '5.03');
    const maxAge = refused.options.find((o) => o.number === MAX_AGE);
    assert.ok(maxAge, '5.03 carries Max-Age');
    const seconds = decodeUint(maxAge.value);
    assert.ok(seconds >= 1 && seconds <= 30, `Max-Age ${seconds} within 1..30 s`);
    assert.match(refused.text(), /server busy/);
    assert.equal(await store.registrations.getByEndpoint('dev-2'), null, 'nothing kept for a refused Register');
    // An Update of a registered device is refused the same way while the backlog lasts.
    const location = first.options.filter((o) => o.number === 8).map((o) => Buffer.from(o.value).toString());
    const update = await devices[0]!.client.post(`${uri}/${location.join('/')}`, new Uint8Array(0));
    assert.equal(update.codeText, '5.03');
    assert.ok(update.options.some((o) => o.number === MAX_AGE));
    assert.equal(lwm2m.admissionStats().refused, 2);
    // The backlog drains: the device that was told to come back registers.
    release();
    for (let n = 0; n < 100 && lwm2m.admissionStats().pendingContacts > 0; n++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(lwm2m.admissionStats().pendingContacts, 0);
    const again = await register(2);
    assert.equal(again.codeText, '2.01');
    assert.ok(await store.registrations.getByEndpoint('dev-2'));
  } finally {
    release();
    for (const d of devices) await d.coap.close();
    await lwm2m.close();
    await coap.close();
    store.close();
  }
});
