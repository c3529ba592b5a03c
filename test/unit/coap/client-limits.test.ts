/**
 * What a peer's answers can make a CoAP client hold: a Block2 body is bounded by maxBodySize
 * (the LwM2M server reads devices with a client; every device answer is untrusted).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { CoapClient } from '../../../src/coap/client.js';
import type { CoapClientError } from '../../../src/coap/client.js';
import { decode, encode } from '../../../src/coap/codec.js';
import { OptionNumber } from '../../../src/coap/options.js';
import { Code } from '../../../src/coap/codes.js';
import { CoapServer } from '../../../src/coap/server.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryNetwork } from '../../support/memory-network.js';
import { pump } from '../../support/pump.js';

function setup(maxBodySize: number) {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const serverTransport = net.transport('10.0.0.2', 5683);
  const clientTransport = net.transport('10.0.0.1', 40000);
  const server = new CoapServer({ clock, random: () => 0, transport: serverTransport });
  const client = new CoapClient({ clock, random: () => 0, maxBodySize, transportFactory: () => Promise.resolve(clientTransport) });
  return { net, server, client, clientTransport, serverTransport };
}

test('RFC 7959 §4: a Block2 answer whose Size2 exceeds the client limit is refused after its first block', async () => {
  const s = setup(4000);
  s.server.resource('/huge', { get: () => ({ code: Code.Content, payload: new Uint8Array(50_000) }) });
  await assert.rejects(pump(s.net, s.client.get('coap://10.0.0.2:5683/huge')), (error: CoapClientError) => {
    assert.match(error.message, /response body of 50000 bytes \(Size2\) exceeds 4000 bytes/);
    return true;
  });
  assert.equal(s.net.sent(s.clientTransport, s.serverTransport).map(decode).length, 1, 'no further block was asked for');
});

test('RFC 7959 §2.4: without Size2, the body is refused at the block that passes the limit', async () => {
  const s = setup(2500);
  s.server.resource('/huge', { get: () => ({ code: Code.Content, payload: new Uint8Array(50_000) }) });
  // A device that leaves Size2 out: the client must still stop at its limit.
  const send = s.serverTransport.send.bind(s.serverTransport);
  s.serverTransport.send = (data, peer) => {
    const message = decode(data);
    send(encode({ ...message, options: message.options.filter((o) => o.number !== OptionNumber.Size2) }), peer);
  };
  await assert.rejects(pump(s.net, s.client.get('coap://10.0.0.2:5683/huge')), /response body exceeds 2500 bytes/);
  assert.equal(s.net.sent(s.clientTransport, s.serverTransport).length, 3, 'blocks 0, 1 and 2 (the one that passes 2500 bytes)');
});
