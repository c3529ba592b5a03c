import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../src/util/clock.js';
import { DtlsConnection, type DtlsClientOptions } from '../../../src/dtls/connection.js';
import { DtlsServerEndpoint, SERVER_CID_LENGTH, type DtlsServerEndpointOptions } from '../../../src/dtls/server.js';
import { decodeRecords } from '../../../src/dtls/record.js';
import { ContentType } from '../../../src/dtls/constants.js';
import { utf8 } from '../../../src/dtls/bytes.js';
import { makePair } from './harness.js';

const KEY = new Uint8Array(16).fill(0x77);
const pskClient = { psk: { identity: 'nb-iot', key: KEY } };
const pskServer = { pskLookup: () => KEY };

interface Net {
  clock: ManualClock;
  client: DtlsConnection;
  server: DtlsServerEndpoint;
  /** Where the client currently sends from. */
  from: string;
  toClient: { to: string; d: Uint8Array }[];
  toServer: Uint8Array[];
  atServer: { peer: string; text: string }[];
  atClient: string[];
  moves: [string, string][];
  run(): void;
}

function net(clientOpts: Omit<DtlsClientOptions, 'clock'>, serverOpts: Omit<DtlsServerEndpointOptions, 'clock'> = pskServer): Net {
  const clock = new ManualClock();
  const n = { clock, from: '10.0.0.1|2000', toClient: [], toServer: [], atServer: [], atClient: [], moves: [] } as unknown as Net;
  n.server = new DtlsServerEndpoint(
    { ...serverOpts, clock },
    {
      send: (to, d) => n.toClient.push({ to, d }),
      data: (peer, d) => n.atServer.push({ peer, text: Buffer.from(d).toString() }),
      addressChanged: (a, b) => n.moves.push([a, b]),
    },
  );
  n.client = DtlsConnection.client({ ...clientOpts, clock }, { send: (d) => n.toServer.push(d), data: (d) => n.atClient.push(Buffer.from(d).toString()) });
  n.run = () => {
    for (let i = 0; i < 50 && (n.toServer.length > 0 || n.toClient.length > 0); i++) {
      for (const d of n.toServer.splice(0)) n.server.handleDatagram(n.from, d);
      // The client only hears what is sent to where it currently is.
      for (const { to, d } of n.toClient.splice(0)) if (to === n.from) n.client.handleDatagram(d);
    }
  };
  n.client.connect();
  n.run();
  return n;
}

const types = (d: Uint8Array, cidLength = 0): number[] => decodeRecords(d, cidLength).records.map((r) => r.type);

void test('RFC 9146 §3: a client asking with an empty CID gets a server CID and puts it in its protected records', () => {
  const n = net({ ...pskClient, connectionId: true });
  assert.equal(n.client.isEstablished, true);
  const ids = n.client.connectionIds;
  assert.ok(ids);
  assert.equal(ids.send.length, SERVER_CID_LENGTH);
  assert.equal(ids.receive.length, 0);
  const serverIds = n.server.connection(n.from)!.connectionIds!;
  assert.deepEqual([...serverIds.receive], [...ids.send]);
  n.client.send(utf8.encode('with cid'));
  const d = n.toServer[0]!;
  assert.deepEqual(types(d, SERVER_CID_LENGTH), [ContentType.tls12_cid], 'outer type is tls12_cid');
  const rec = decodeRecords(d, SERVER_CID_LENGTH).records[0]!;
  assert.deepEqual([...rec.cid!], [...ids.send]);
  n.run();
  assert.deepEqual(n.atServer.map((m) => m.text), ['with cid']);
  // The client asked for no CID of its own, so the server's records are plain.
  n.server.send(n.from, utf8.encode('plain back'));
  assert.deepEqual(types(n.toClient[0]!.d), [ContentType.application_data]);
  n.run();
  assert.deepEqual(n.atClient, ['plain back']);
});

void test('RFC 9146 §6: after a NAT rebinding, a newer authenticated record moves the association; replies follow', () => {
  const n = net({ ...pskClient, connectionId: true });
  const identityBefore = n.server.connection(n.from)!.session?.peerIdentity;
  n.from = '198.51.100.7|40000';
  n.client.send(utf8.encode('from the new address'));
  n.run();
  assert.deepEqual(n.atServer.at(-1), { peer: '198.51.100.7|40000', text: 'from the new address' });
  assert.deepEqual(n.moves, [['10.0.0.1|2000', '198.51.100.7|40000']]);
  assert.equal(n.server.connection('10.0.0.1|2000'), undefined);
  assert.deepEqual(n.server.connection(n.from)?.session?.peerIdentity, identityBefore);
  n.server.send(n.from, utf8.encode('reply'));
  n.run();
  assert.deepEqual(n.atClient, ['reply']);
});

void test('RFC 9146 §6: a replayed or forged CID record from elsewhere does not move the association', () => {
  const n = net({ ...pskClient, connectionId: true });
  n.client.send(utf8.encode('one'));
  const captured = n.toServer[0]!;
  n.run();
  n.server.handleDatagram('203.0.113.9|666', captured); // replay from an attacker's address
  const forged = captured.slice();
  forged[forged.length - 1]! ^= 1;
  n.server.handleDatagram('203.0.113.9|667', forged);
  assert.deepEqual(n.moves, []);
  assert.ok(n.server.connection('10.0.0.1|2000'));
  assert.deepEqual(n.atServer.map((m) => m.text), ['one']);
});

void test('RFC 9146 §3: a client with its own CID receives tls12_cid records carrying it', () => {
  const mine = Uint8Array.of(0xde, 0xad, 0xbe, 0xef);
  const n = net({ ...pskClient, connectionId: mine });
  assert.deepEqual([...n.client.connectionIds!.receive], [...mine]);
  n.server.send(n.from, utf8.encode('to your cid'));
  const d = n.toClient[0]!.d;
  const rec = decodeRecords(d, mine.length).records[0]!;
  assert.equal(rec.type, ContentType.tls12_cid);
  assert.deepEqual([...rec.cid!], [...mine]);
  n.run();
  assert.deepEqual(n.atClient, ['to your cid']);
});

void test('RFC 9146 §3: without the extension, or with CIDs disabled on the server, records stay plain', () => {
  const plain = net(pskClient);
  assert.equal(plain.client.connectionIds, undefined);
  plain.client.send(utf8.encode('x'));
  assert.deepEqual(types(plain.toServer[0]!), [ContentType.application_data]);
  const off = net({ ...pskClient, connectionId: true }, { ...pskServer, connectionIds: false });
  assert.equal(off.client.isEstablished, true);
  assert.equal(off.client.connectionIds, undefined);
});

void test('RFC 9146 / RFC 6347 §4.2.4: every single lost datagram of a CID handshake is recovered', () => {
  for (let lose = 0; lose < 6; lose++) {
    const p = makePair({ ...pskClient, connectionId: true }, pskServer);
    p.client.connect();
    p.settle(() => p.clientLog.connected !== undefined && p.serverLog.connected !== undefined, (_dir, _d, i) => i === lose);
    assert.ok(p.clientLog.connected && p.serverLog.connected, `lost #${lose}`);
    p.client.send(utf8.encode('after loss'));
    p.pump();
    assert.equal(Buffer.from(p.serverLog.data.at(-1)!).toString(), 'after loss');
  }
});
