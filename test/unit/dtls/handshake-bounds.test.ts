/**
 * Half-open handshakes hold bounded state (Depot's choice; RFC 6347 §4.2.1 makes the cookie the
 * only defence it names, and a peer that can receive at its address passes it).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsServerEndpoint } from '../../../src/dtls/server.js';
import { DtlsConnection } from '../../../src/dtls/connection.js';

const KEY = new Uint8Array(16).fill(5);

/** A server and a way to start clients that stop answering after the cookie exchange, or finish. */
function setup(options: { maxHandshakes?: number; maxHandshakesPerAddress?: number; maxConnections?: number }) {
  const clock = new ManualClock();
  const clients = new Map<string, DtlsConnection>();
  const server = new DtlsServerEndpoint({ clock, pskLookup: () => KEY, ...options }, { send: (peer, d) => clients.get(peer)?.handleDatagram(d) });
  const start = (peer: string, complete: boolean): DtlsConnection => {
    const queue: Uint8Array[] = [];
    const client = DtlsConnection.client({ clock, psk: { identity: 'a', key: KEY } }, { send: (d) => queue.push(d) });
    clients.set(peer, client);
    client.connect();
    // Round 1: ClientHello -> HelloVerifyRequest; round 2: ClientHello with cookie -> server flight.
    // A half-open client stops there: its ClientKeyExchange/Finished never reach the server.
    for (let round = 0; round < (complete ? 10 : 2) && queue.length > 0; round++) {
      for (const d of queue.splice(0)) server.handleDatagram(peer, d);
    }
    return client;
  };
  return { clock, server, start };
}

void test('half-open handshakes are bounded in all: past maxHandshakes a ClientHello is dropped, and established associations are not displaced', () => {
  const { server, start } = setup({ maxHandshakes: 5, maxConnections: 100 });
  const established = start('192.0.2.1|1000', true);
  assert.equal(established.isEstablished, true);
  for (let i = 0; i < 20; i++) start(`198.51.100.${i}|4000`, false);
  assert.equal(server.handshaking, 5);
  assert.equal(server.handshakesRefused, 15);
  assert.equal(server.size, 6, 'one established and five handshaking');
  assert.ok(server.connection('192.0.2.1|1000'), 'the established association stays');
});

void test('half-open handshakes are bounded per IP address, whatever the port; other addresses still get in', () => {
  const { server, start } = setup({ maxHandshakes: 100, maxHandshakesPerAddress: 3 });
  for (let port = 1; port <= 10; port++) start(`203.0.113.7|${port}`, false);
  assert.equal(server.handshaking, 3);
  assert.equal(server.handshakesRefused, 7);
  const other = start('203.0.113.8|1', true);
  assert.equal(other.isEstablished, true, 'another address completes its handshake');
  assert.equal(server.handshaking, 3, 'a completed handshake no longer counts');
});

void test('a slot comes back when a half-open handshake times out or completes', () => {
  const { clock, server, start } = setup({ maxHandshakes: 2 });
  start('198.51.100.1|1', false);
  start('198.51.100.2|1', false);
  assert.equal(start('198.51.100.3|1', true).isEstablished, false, 'refused while both slots are held');
  clock.advance(120_000); // past the handshake timeout: both half-open associations end
  assert.equal(server.handshaking, 0);
  assert.equal(server.size, 0);
  assert.equal(start('198.51.100.3|2', true).isEstablished, true);
  assert.equal(server.handshaking, 0);
});
