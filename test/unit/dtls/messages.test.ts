/** Handshake message codecs (RFC 5246 §7.4). */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { DecodeError } from '../../../src/dtls/bytes.js';
import { DTLS_1_2 } from '../../../src/dtls/constants.js';
import { decodeClientHello, encodeClientHello } from '../../../src/dtls/messages.js';

void test('RFC 5246 §7.4.1.4: a hello with the same extension twice is refused, in a short list and in a long one', () => {
  const hello = (types: number[]): Uint8Array =>
    encodeClientHello({
      version: DTLS_1_2,
      random: new Uint8Array(32),
      sessionId: new Uint8Array(0),
      cookie: new Uint8Array(0),
      cipherSuites: [0xc0a8],
      compressionMethods: Uint8Array.of(0),
      extensions: types.map((type) => ({ type, data: new Uint8Array(0) })),
    });
  const distinct = Array.from({ length: 40 }, (_, i) => 0x1000 + i);
  assert.equal(decodeClientHello(hello(distinct)).extensions.length, 40);
  for (const n of [3, 40]) {
    for (const dup of [0, n - 1]) {
      const types = distinct.slice(0, n);
      types.push(types[dup]!);
      assert.throws(() => decodeClientHello(hello(types)), DecodeError, `${n} extensions, a repeat of #${dup}`);
    }
  }
});
