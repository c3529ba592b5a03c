/**
 * A server that lost its state (killed and restarted) and a client that still holds the old
 * association. RFC 6347 §4.2.8: the client must start a new handshake; §4.1.2.7 lets the server
 * drop the records it cannot read, which leaves the client retransmitting into the void. Depot's
 * server answers data of an unknown association with a plaintext fatal alert (rate-limited), and
 * Depot's client, while it waits for an answer, takes that as the end of the association.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DtlsError } from '../../../src/dtls/connection.js';
import { AlertDescription, AlertLevel, ContentType } from '../../../src/dtls/constants.js';
import { DtlsServerEndpoint, UNKNOWN_ASSOCIATION_ALERT_INTERVAL_MS } from '../../../src/dtls/server.js';
import { decodeRecords, encodeRecord } from '../../../src/dtls/record.js';
import { makePair, PEER, type Pair } from './harness.js';

const KEY = new Uint8Array(16).fill(7);
const pskClient = { psk: { identity: 'survivor', key: KEY } };
const pskServer = { pskLookup: (id: string) => (id === 'survivor' ? KEY : undefined) };

function established(): Pair {
  const p = makePair(pskClient, pskServer);
  p.client.connect();
  p.settle(() => p.client.isEstablished);
  assert.ok(p.client.isEstablished);
  return p;
}

/** The endpoint of a restarted server process: same clock, no state. */
function restartedServer(p: Pair): { server: DtlsServerEndpoint; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const server = new DtlsServerEndpoint({ ...pskServer, clock: p.clock }, { send: (_peer, d) => sent.push(d) });
  return { server, sent };
}

/** The client's next application-data datagram (the old association's epoch 1). */
function clientData(p: Pair, text: string): Uint8Array {
  assert.ok(p.client.send(Buffer.from(text)));
  const d = p.toServer.shift();
  assert.ok(d, 'the client sent a record');
  p.toServer.length = 0;
  return d;
}

void test('a restarted server answers a record of an association it does not know with one plaintext fatal alert; the waiting client closes it (association_unknown)', () => {
  const p = established();
  const { server, sent } = restartedServer(p);
  server.handleDatagram(PEER, clientData(p, 'Update'));
  assert.equal(sent.length, 1, 'one alert');
  const { records } = decodeRecords(sent[0]!);
  assert.equal(records.length, 1);
  assert.equal(records[0]!.type, ContentType.alert);
  assert.equal(records[0]!.epoch, 0, 'plaintext: the restarted server has no keys');
  assert.deepEqual([...records[0]!.fragment], [AlertLevel.fatal, AlertDescription.unexpected_message]);
  assert.ok(sent[0]!.length < 29, 'smaller than any protected record it answers (no amplification)');
  assert.equal(server.size, 0, 'no state created for the unknown peer');

  p.client.handleDatagram(sent[0]!);
  assert.ok(p.client.isClosed, 'the client ends the dead association');
  const closed = p.clientLog.closed;
  assert.ok(closed instanceof DtlsError);
  assert.equal(closed.code, 'association_unknown');
  assert.match(closed.message, /new handshake/);
});

void test('alerts for unknown associations: at most one per address per interval; alerts and epoch-0 records are never answered', () => {
  const p = established();
  const { server, sent } = restartedServer(p);
  const record = clientData(p, 'retransmission');
  for (let i = 0; i < 5; i++) server.handleDatagram(PEER, record);
  assert.equal(sent.length, 1, 'retransmissions within the interval get no second alert');
  server.handleDatagram('127.0.0.1|40001', record);
  assert.equal(sent.length, 2, 'another address gets its own');
  p.clock.advance(UNKNOWN_ASSOCIATION_ALERT_INTERVAL_MS);
  server.handleDatagram(PEER, record);
  assert.equal(sent.length, 3, 'after the interval, the address is answered again');

  // An alert from a peer without an association (e.g. its own close_notify): no alert ping-pong.
  const alertRecord = encodeRecord({ type: ContentType.alert, version: 0xfefd, epoch: 1, sequence: 9, fragment: new Uint8Array(26) });
  server.handleDatagram('127.0.0.1|40002', alertRecord);
  // Epoch-0 data is garbage, not an association we lost.
  const plainData = encodeRecord({ type: ContentType.application_data, version: 0xfefd, epoch: 0, sequence: 1, fragment: new Uint8Array(26) });
  server.handleDatagram('127.0.0.1|40003', plainData);
  assert.equal(sent.length, 3);

  const quiet = new DtlsServerEndpoint({ ...pskServer, clock: p.clock, alertUnknownAssociations: false }, { send: (_peer, d) => sent.push(d) });
  quiet.handleDatagram('127.0.0.1|40004', record);
  assert.equal(sent.length, 3, 'alertUnknownAssociations: false keeps the RFC 6347 §4.1.2.7 silence');
});

void test('a forged plaintext fatal alert does not end an association that is not waiting for an answer', () => {
  const p = established();
  // A round trip: the client's data is answered, so it waits for nothing.
  p.client.send(Buffer.from('ping'));
  p.pump();
  p.server.send(PEER, Buffer.from('pong'));
  p.pump();
  assert.equal(Buffer.from(p.clientLog.data.at(-1)!).toString(), 'pong');
  const forged = encodeRecord({ type: ContentType.alert, version: 0xfefd, epoch: 0, sequence: 0, fragment: Uint8Array.of(AlertLevel.fatal, AlertDescription.unexpected_message) });
  p.client.handleDatagram(forged);
  assert.ok(p.client.isEstablished, 'still established');
  // A warning-level plaintext alert never ends it, even while waiting.
  p.client.send(Buffer.from('waiting'));
  p.toServer.length = 0;
  p.client.handleDatagram(encodeRecord({ type: ContentType.alert, version: 0xfefd, epoch: 0, sequence: 1, fragment: Uint8Array.of(AlertLevel.warning, AlertDescription.unexpected_message) }));
  assert.ok(p.client.isEstablished);
});
