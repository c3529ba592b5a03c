import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { fromHex, toHex, utf8 } from '../../../src/dtls/bytes.js';
import { extendedMasterSecret, masterSecret, prf, pskPreMasterSecret } from '../../../src/dtls/prf.js';
import { AeadProtection, CIPHER_SUITES, CipherSuite } from '../../../src/dtls/cipher.js';

void test('RFC 5246 §5: TLS 1.2 PRF (P_SHA256) matches the published test vector', () => {
  // The widely used TLS 1.2 PRF-SHA256 vector (IETF TLS WG list); OpenSSL's `kdf TLS1-PRF` gives the same bytes.
  const out = prf(fromHex('9bbe436ba940f017b17652849a71db35'), 'test label', fromHex('a0ba9f936cda311827a6f796ffd5198c'), 100);
  assert.equal(
    toHex(out),
    'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab' +
      '4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66',
  );
});

void test('RFC 5246 §5: PRF output is a prefix-consistent stream', () => {
  const a = prf(utf8.encode('secret'), 'label', utf8.encode('seed'), 20);
  const b = prf(utf8.encode('secret'), 'label', utf8.encode('seed'), 77);
  assert.deepEqual([...b.subarray(0, 20)], [...a]);
});

void test('RFC 4279 §2: PSK pre-master secret is N zeros and the PSK, each with a uint16 length', () => {
  assert.equal(toHex(pskPreMasterSecret(fromHex('aabbcc'))), '0003000000' + '0003aabbcc');
});

void test('RFC 7627 §4: the extended master secret differs from the classic one and depends on the session hash', () => {
  const pms = pskPreMasterSecret(fromHex('00112233'));
  const cr = new Uint8Array(32).fill(1);
  const sr = new Uint8Array(32).fill(2);
  const classic = masterSecret(pms, cr, sr);
  const ems1 = extendedMasterSecret(pms, new Uint8Array(32).fill(3));
  const ems2 = extendedMasterSecret(pms, new Uint8Array(32).fill(4));
  assert.equal(classic.length, 48);
  assert.notEqual(toHex(classic), toHex(ems1));
  assert.notEqual(toHex(ems1), toHex(ems2));
});

for (const id of [CipherSuite.TLS_PSK_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_GCM_SHA256, CipherSuite.TLS_PSK_WITH_AES_128_CCM]) {
  void test(`RFC 5246 §6.2.3.3: AEAD record protection 0x${id.toString(16)} round-trips and binds the header`, () => {
    const suite = CIPHER_SUITES.get(id)!;
    const p = new AeadProtection(suite, Uint8Array.of(...new Uint8Array(16).fill(9), 1, 2, 3, 4)); // key ‖ salt
    const pt = utf8.encode('protected payload');
    const ct = p.seal(1, 42, 23, 0xfefd, pt);
    assert.equal(ct.length, pt.length + 8 + suite.tagLength);
    assert.deepEqual([...ct.subarray(0, 8)], [0, 1, 0, 0, 0, 0, 0, 42], 'explicit nonce = epoch || sequence');
    assert.deepEqual(p.open(1, 42, 23, 0xfefd, ct), pt);
    assert.equal(p.open(1, 43, 23, 0xfefd, ct), undefined, 'sequence number is authenticated');
    assert.equal(p.open(1, 42, 22, 0xfefd, ct), undefined, 'content type is authenticated');
    assert.equal(p.open(2, 42, 23, 0xfefd, ct), undefined, 'epoch is authenticated');
    const tampered = ct.slice();
    tampered[10]! ^= 1;
    assert.equal(p.open(1, 42, 23, 0xfefd, tampered), undefined);
    assert.equal(p.open(1, 42, 23, 0xfefd, ct.subarray(0, 5)), undefined, 'short input');
  });
}
