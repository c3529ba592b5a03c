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

void test('RFC 5246 §7.4.1.2: hello vectors that overrun their block or the message are refused', () => {
  const good = encodeClientHello({
    version: DTLS_1_2,
    random: new Uint8Array(32),
    sessionId: new Uint8Array(0),
    cookie: new Uint8Array(0),
    cipherSuites: [0xc0a8, 0x00a8],
    compressionMethods: Uint8Array.of(0),
    extensions: [
      { type: 0x0017, data: new Uint8Array(0) },
      { type: 0xff01, data: Uint8Array.of(0) },
    ],
  });
  const hello = decodeClientHello(good);
  assert.deepEqual(hello.cipherSuites, [0xc0a8, 0x00a8]);
  assert.deepEqual(hello.extensions.map((e) => e.type), [0x0017, 0xff01]);
  const suitesAt = 2 + 32 + 1 + 1; // version, random, empty session ID, empty cookie
  const extensionsAt = suitesAt + 2 + 4 + 2; // suites, compression methods
  const patched = (at: number, value: number): Uint8Array => {
    const b = good.slice();
    b[at] = value >>> 8;
    b[at + 1] = value & 0xff;
    return b;
  };
  assert.throws(() => decodeClientHello(patched(suitesAt, 3)), DecodeError, 'odd cipher_suites length');
  assert.throws(() => decodeClientHello(patched(suitesAt, 400)), DecodeError, 'cipher_suites past the message');
  assert.throws(() => decodeClientHello(patched(extensionsAt, 6)), DecodeError, 'an extension crosses the end of the block');
  assert.throws(() => decodeClientHello(patched(extensionsAt, 400)), DecodeError, 'extensions past the message');
  assert.throws(() => decodeClientHello(patched(extensionsAt, 4)), DecodeError, 'bytes after the extensions block');
});
