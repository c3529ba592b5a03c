/**
 * Interop: raw CoAP clients read a running Depot LwM2M client (the device side) directly:
 * the built `depot coap` CLI and libcoap's coap-client-notls. Missing binaries fail the test.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { fileURLToPath } from 'node:url';
import { ContentFormat, decode } from '../../../src/lwm2m/index.js';
import type { InstanceNode } from '../../../src/lwm2m/index.js';
import { requireExecutable, runProcess } from '../../support/peer-process.js';
import { setup, waitUntil } from './support.js';

const DEPOT_CLI = fileURLToPath(new URL('../../../src/cli/main.js', import.meta.url));

test('interop (TS Core 1.1 §6.3.1 Read over RFC 7252): `depot coap get /3/0` against a running client returns the Device object in TLV', async () => {
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const port = s.client.address()!.port;
    const r = await runProcess(process.execPath, [DEPOT_CLI, 'coap', 'get', `coap://127.0.0.1:${port}/3/0`, '-v'], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.output);
    assert.match(r.stderr, /^2\.05 Content/);
    const node = decode(ContentFormat.Tlv, [3, 0], r.stdout) as InstanceNode;
    const strings = new Map(node.resources.flatMap((res) => (res.kind === 'resource' && res.value.type === 'string' ? [[res.id, res.value.value] as const] : [])));
    assert.equal(strings.get(0), 'Acme Devices');
    assert.equal(strings.get(1), 'GW-200');
    assert.equal(strings.get(3), '4.2.1');
    assert.equal(strings.get(19), 'AcmeOS 5.10');
  } finally {
    await s.close();
  }
});

test('interop (TS Core 1.1 §6.3.1 Read, plain text §7.4.1): libcoap coap-client-notls reads the Manufacturer /3/0/0', async () => {
  const coapClient = requireExecutable('coap-client-notls');
  const s = await setup();
  try {
    await waitUntil(() => s.client.state === 'registered');
    const port = s.client.address()!.port;
    const r = await runProcess(coapClient, ['-m', 'get', '-B', '5', `coap://127.0.0.1:${port}/3/0/0`], { timeoutMs: 10_000 });
    assert.equal(r.code, 0, r.output);
    assert.equal(r.stdout.toString('utf8').trim(), 'Acme Devices');
    const missing = await runProcess(coapClient, ['-m', 'get', '-B', '5', `coap://127.0.0.1:${port}/3/0/7`], { timeoutMs: 10_000 });
    assert.match(missing.output, /4\.04/);
  } finally {
    await s.close();
  }
});
