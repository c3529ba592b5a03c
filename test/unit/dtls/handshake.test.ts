import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { makePair } from './harness.js';
import { CipherSuite } from '../../../src/dtls/cipher.js';
import { utf8 } from '../../../src/dtls/bytes.js';

const KEY = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);

for (const suite of [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256]) {
  void test(`RFC 6347 §4.2.1/§4.2.4: full PSK handshake in memory, suite 0x${suite.toString(16)}, data both ways`, () => {
    const p = makePair(
      { psk: { identity: 'dev-1', key: KEY }, cipherSuites: [suite] },
      { pskLookup: (id) => (id === 'dev-1' ? KEY : undefined) },
    );
    p.client.connect();
    p.pump();
    assert.equal(p.clientLog.closed, undefined);
    assert.equal(p.serverLog.closed, undefined);
    assert.ok(p.clientLog.connected, 'client connected');
    assert.ok(p.serverLog.connected, 'server connected');
    assert.equal(p.clientLog.connected.cipherSuite.id, suite);
    assert.equal(p.clientLog.connected.extendedMasterSecret, true);
    assert.deepEqual(p.serverLog.connected.peerIdentity, { kind: 'psk', identity: 'dev-1' });
    p.client.send(utf8.encode('hello server'));
    p.server.send('127.0.0.1|5684', utf8.encode('hello client'));
    p.pump();
    assert.deepEqual(p.serverLog.data.map((d) => Buffer.from(d).toString()), ['hello server']);
    assert.deepEqual(p.clientLog.data.map((d) => Buffer.from(d).toString()), ['hello client']);
  });
}
