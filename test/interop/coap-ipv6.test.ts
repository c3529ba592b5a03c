/** CoAP over IPv6 (RFC 7252 §6.1 IP-literal hosts): Depot and libcoap on [::1], both directions. */
import { after, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CoapClient } from '../../src/coap/client.js';
import { Code } from '../../src/coap/codes.js';
import { CoapServer } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { PeerProcess, requireExecutable, runProcess } from '../support/peer-process.js';
import { freeUdpPort, waitForCoapServer } from '../support/udp-probe.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('RFC 7252 §6.1: Depot server and client over [::1]; the handler sees an IPv6 peer', async () => {
  const server = new CoapServer({ transport: await UdpTransport.bind({ host: '::1', port: 0 }) });
  cleanup.push(() => server.close());
  let family = '';
  server.resource('/hello', { get: (req) => ((family = req.peer.family), { code: Code.Content, payload: 'hello over IPv6' }) });
  const client = new CoapClient();
  cleanup.push(() => client.close());
  const port = server.endpoint.transport.address().port;
  const response = await client.get(`coap://[::1]:${port}/hello`);
  assert.equal(response.codeText, '2.05');
  assert.equal(response.text(), 'hello over IPv6');
  assert.equal(family, 'IPv6');
  // libcoap's client reaches the same server over IPv6.
  const libcoap = await runProcess(requireExecutable('coap-client-notls'), ['-m', 'get', `coap://[::1]:${port}/hello`], { timeoutMs: 10_000 });
  assert.equal(libcoap.code, 0, libcoap.stderr);
  assert.match(libcoap.stdout.toString(), /hello over IPv6/);
});

test('RFC 7252 §6.1: Depot client to libcoap coap-server-notls on [::1]', async () => {
  const port = await freeUdpPort('::1');
  const server = new PeerProcess(requireExecutable('coap-server-notls'), ['-A', '::1', '-p', String(port)]);
  cleanup.push(() => server.stop());
  await waitForCoapServer('::1', port, 5000);
  const client = new CoapClient();
  cleanup.push(() => client.close());
  const response = await client.get(`coap://[::1]:${port}/`);
  assert.equal(response.codeText, '2.05');
  assert.match(response.text(), /libcoap/);
});
