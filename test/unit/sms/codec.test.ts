/**
 * The SMS layer's codecs: E.164 numbers, the user data header (3GPP TS 23.040 §9.2.3.24),
 * segmentation and reassembly, WSP primitives (WAP-230-WSP §8.1.2, §8.4.2) and the WAP Push
 * PDU (§8.2.4.1) with OMA Client Provisioning's SEC/MAC parameters (OMA-WAP-ProvBoot §5.3).
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { maskNumber, normalizeNumber, normalizeSender } from '../../../src/sms/address.js';
import { SmsError } from '../../../src/sms/errors.js';
import { Reassembler, type Reassembled, decodeUdh, encodeUdh, gsmSeptets, segmentBinary, segmentText, fromUtf16be } from '../../../src/sms/udh.js';
import { WspReader, WspWriter } from '../../../src/sms/wsp.js';
import { decodeWspPush, encodeWspPush, wapPushSegments } from '../../../src/sms/wap-push.js';
import { parseRegistrationUpdateTrigger, registrationUpdateTrigger } from '../../../src/sms/lwm2m-trigger.js';

const smsError = (code: string, message?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof SmsError, String(e));
  assert.equal(e.code, code, e.message);
  if (message) assert.match(e.message, message);
  return true;
};

void test('numbers: E.164 with spaces, hyphens, dots and parentheses is normalised; everything else is refused saying why', () => {
  assert.equal(normalizeNumber('+46 70-123 45.67'), '+46701234567');
  assert.equal(normalizeNumber('+1 (555) 010-9999'), '+15550109999');
  assert.throws(() => normalizeNumber('0701234567'), smsError('BAD_NUMBER', /international format/));
  assert.throws(() => normalizeNumber('0046701234567'), smsError('BAD_NUMBER', /international format/));
  assert.throws(() => normalizeNumber('+46x701234567'), smsError('BAD_NUMBER', /characters other than digits/));
  assert.throws(() => normalizeNumber('+4670+1234567'), smsError('BAD_NUMBER', /"\+" that is not at the start/));
  assert.throws(() => normalizeNumber('+0123456789'), smsError('BAD_NUMBER', /never starts with 0/));
  assert.throws(() => normalizeNumber('+1234567'), smsError('BAD_NUMBER', /7 digits/));
  assert.throws(() => normalizeNumber('+1234567890123456'), smsError('BAD_NUMBER', /16 digits/));
  assert.throws(() => normalizeNumber('+46\n701234567'), smsError('BAD_NUMBER'));
  assert.throws(() => normalizeNumber(undefined), smsError('BAD_NUMBER', /missing/));
  assert.throws(() => normalizeNumber('+4'.padEnd(60, '1')), smsError('BAD_NUMBER', /longer than/));
  assert.equal(normalizeSender('4242'), '4242');
  assert.equal(normalizeSender('Depot'), 'Depot');
  assert.throws(() => normalizeSender('Depot-Server-Long'), smsError('BAD_NUMBER'));
  assert.equal(maskNumber('+46701234567'), '+4670*****67');
});

void test('UDH (TS 23.040 §9.2.3.24.1, .24.4, .24.8): ports and concatenation encode to their octets and decode back; malformed headers are refused', () => {
  const udh = encodeUdh([{ kind: 'ports', destination: 2948, source: 9200, bits: 16 }, { kind: 'concat', ref: 0x2a, total: 3, seq: 2, refBits: 8 }]);
  assert.deepEqual([...udh], [0x0b, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0x00, 0x03, 0x2a, 0x03, 0x02]);
  assert.deepEqual(decodeUdh(udh), [{ kind: 'ports', destination: 2948, source: 9200, bits: 16 }, { kind: 'concat', ref: 0x2a, total: 3, seq: 2, refBits: 8 }]);
  assert.deepEqual([...encodeUdh([{ kind: 'concat', ref: 0x1234, total: 2, seq: 1, refBits: 16 }])], [0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]);
  assert.deepEqual(decodeUdh(Uint8Array.of(0x04, 0x04, 0x02, 0x10, 0x20)), [{ kind: 'ports', destination: 0x10, source: 0x20, bits: 8 }]);
  assert.deepEqual(decodeUdh(Uint8Array.of(0x03, 0x70, 0x01, 0xaa)), [{ kind: 'other', iei: 0x70, data: Uint8Array.of(0xaa) }]);
  assert.throws(() => decodeUdh(Uint8Array.of(0x05, 0x00, 0x03, 0x01)), smsError('BAD_PDU', /length octet/));
  assert.throws(() => decodeUdh(Uint8Array.of(0x04, 0x00, 0x02, 0x01, 0x02)), smsError('BAD_PDU', /must have 3 octets/));
  assert.throws(() => decodeUdh(Uint8Array.of(0x05, 0x00, 0x03, 0x01, 0x02, 0x03)), smsError('BAD_PDU', /part 3 of 2/));
  assert.throws(() => decodeUdh(Uint8Array.of(0x05, 0x00, 0x03, 0x01, 0x00, 0x00)), smsError('BAD_PDU'));
  assert.throws(() => decodeUdh(Uint8Array.of(0x02, 0x00, 0x05)), smsError('BAD_PDU', /truncated/));
  assert.throws(() => decodeUdh(new Uint8Array(0)), smsError('BAD_PDU'));
  assert.throws(() => encodeUdh([{ kind: 'ports', destination: 70000, source: 1, bits: 16 }]), smsError('BAD_MESSAGE', /destination port/));
});

void test('segmentation: 8-bit data fills 140 octets with its UDH; a longer payload is split with the ports and concatenation in every part', () => {
  const ports = { destination: 2948, source: 9200 };
  assert.equal(segmentBinary(new Uint8Array(133), { ports, ref: 1 }).length, 1);
  const parts = segmentBinary(new Uint8Array(134).map((_, i) => i), { ports, ref: 9 });
  assert.equal(parts.length, 2);
  assert.deepEqual(parts.map((p) => p.udh!.length + p.data.length), [140, 12 + 6]);
  assert.deepEqual(parts.map((p) => p.data.length), [128, 6]);
  assert.equal(segmentBinary(new Uint8Array(140), { ref: 1 }).length, 1);
  assert.equal(segmentBinary(new Uint8Array(141), { ref: 1 })[0]!.data.length, 134);
  assert.throws(() => segmentBinary(new Uint8Array(128 * 4 + 1), { ports, ref: 1, maxSegments: 4 }), smsError('BAD_MESSAGE', /need 5 SMS/));
});

void test('text segmentation: GSM 7-bit 160/153 septets (extension characters count two), UCS-2 70/67 characters, never splitting a character', () => {
  assert.equal(gsmSeptets('Hello {world}'), 15);
  assert.equal(gsmSeptets('Привет'), undefined);
  assert.deepEqual(segmentText('a'.repeat(160), { ref: 1 }).map((s) => [s.coding, s.udh, s.data.length]), [[0, null, 160]]);
  const seven = segmentText('a'.repeat(161), { ref: 5 });
  assert.deepEqual(seven.map((s) => s.data.length), [153, 8]);
  assert.equal(segmentText('€'.repeat(80), { ref: 5 }).length, 1);
  const ext = segmentText('€'.repeat(81), { ref: 5 });
  assert.deepEqual(ext.map((s) => Buffer.from(s.data).toString('utf8').length), [76, 5]);
  const ucs = segmentText('П'.repeat(71), { ref: 1 });
  assert.deepEqual(ucs.map((s) => [s.coding, s.data.length]), [[2, 134], [2, 8]]);
  const emoji = segmentText('😀'.repeat(40), { ref: 1 });
  assert.ok(emoji.every((s) => s.data.length % 4 === 0), 'surrogate pairs stay whole');
  assert.equal(emoji.map((s) => fromUtf16be(s.data)).join(''), '😀'.repeat(40));
  assert.throws(() => segmentText('', { ref: 1 }), smsError('BAD_MESSAGE'));
});

void test('reassembly: parts in any order, duplicated parts and interleaved messages come out whole, keyed by sender and reference', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 1200 }), fc.integer({ min: 0, max: 255 }), fc.func(fc.integer()), (payload, ref, order) => {
      const parts = segmentBinary(payload, { ports: { destination: 2948, source: 9200 }, ref });
      const shuffled = parts.map((p, i) => ({ p, k: order(i) })).sort((a, b) => a.k - b.k).map((x) => x.p);
      const r = new Reassembler();
      const other = segmentBinary(Uint8Array.of(1, 2, 3), { ref: ref ^ 1 });
      let out;
      for (const p of shuffled) {
        out = r.add({ from: '+46700000001', udh: p.udh, data: p.data }) ?? out;
        r.add({ from: '+46700000002', udh: p.udh, data: Uint8Array.of(9) });
      }
      r.add({ from: '+46700000001', udh: other[0]!.udh, data: other[0]!.data });
      assert.ok(out);
      assert.deepEqual(out.data, payload);
      assert.deepEqual(out.ports, { destination: 2948, source: 9200 });
    }),
    { numRuns: 200 },
  );
});

void test('WSP primitives (§8.1.2, §8.4.2.1): uintvar, integers, text with Quote, value length with Length-quote', () => {
  assert.deepEqual([...new WspWriter().uintvar(0).uintvar(127).uintvar(128).uintvar(0x3fff).uintvar(0xffffffff).toBytes()], [0x00, 0x7f, 0x81, 0x00, 0xff, 0x7f, 0x8f, 0xff, 0xff, 0xff, 0x7f]);
  const r = new WspReader(Uint8Array.of(0x81, 0x00, 0x8f, 0xff, 0xff, 0xff, 0x7f));
  assert.equal(r.uintvar(), 128);
  assert.equal(r.uintvar(), 0xffffffff);
  assert.throws(() => new WspReader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)).uintvar(), smsError('BAD_PDU', /5 octets/));
  assert.throws(() => new WspReader(Uint8Array.of(0x9f, 0xff, 0xff, 0xff, 0x7f)).uintvar(), smsError('BAD_PDU', /32 bits/));
  assert.deepEqual([...new WspWriter().integer(5).integer(0x0310).toBytes()], [0x85, 0x02, 0x03, 0x10]);
  assert.deepEqual([...new WspWriter().text('\u00e9').toBytes()], [0x7f, 0xc3, 0xa9, 0x00]);
  assert.deepEqual([...new WspWriter().valueLength(30).valueLength(31).toBytes()], [30, 0x1f, 31]);
  assert.throws(() => new WspReader(Uint8Array.of(0x41, 0x42)).text(), smsError('BAD_PDU', /NUL/));
});

void test('WAP Push PDU (WSP §8.2.4.1): the OMA DM notification header is 06 03 C4 AF 87; CP with SEC=USERPIN and MAC is 06 2F 1F 2D B6 91 81 92 <40 digits> 00 (OMA-WAP-ProvBoot §5.3)', () => {
  const body = Uint8Array.of(1, 2, 3);
  const dm = encodeWspPush({ transactionId: 0x21, contentType: 'application/vnd.syncml.notification', applicationId: 'x-wap-application:syncml.dm', body });
  assert.deepEqual([...dm], [0x21, 0x06, 0x03, 0xc4, 0xaf, 0x87, 1, 2, 3]);
  const mac = '0123456789ABCDEF0123456789ABCDEF01234567';
  const cp = encodeWspPush({ transactionId: 1, contentType: 'application/vnd.wap.connectivity-wbxml', parameters: { SEC: 'USERPIN', MAC: mac.toLowerCase() }, body });
  assert.deepEqual([...cp.subarray(0, 8)], [0x01, 0x06, 0x2f, 0x1f, 0x2d, 0xb6, 0x91, 0x81]);
  assert.equal(cp[8], 0x92);
  assert.equal(Buffer.from(cp.subarray(9, 49)).toString('latin1'), mac);
  assert.equal(cp[49], 0x00);
  assert.deepEqual([...cp.subarray(50)], [1, 2, 3]);
  const decoded = decodeWspPush(cp);
  assert.equal(decoded.contentType, 'application/vnd.wap.connectivity-wbxml');
  assert.equal(decoded.contentTypeCode, 0x36);
  assert.deepEqual({ SEC: decoded.parameters.SEC, MAC: decoded.parameters.MAC }, { SEC: 'USERPIN', MAC: mac });
  for (const SEC of ['NETWPIN', 'USERNETWPIN', 'USERPINMAC'] as const) assert.equal(decodeWspPush(encodeWspPush({ contentType: 'application/vnd.wap.connectivity-wbxml', parameters: { SEC, MAC: mac }, body })).parameters.SEC, SEC);
  // Not well-known: the content type and application id as text.
  const text = decodeWspPush(encodeWspPush({ contentType: 'application/x-depot-test', applicationId: 'urn:depot:test', body, parameters: { charset: 106 } }));
  assert.deepEqual([text.contentType, text.contentTypeCode, text.applicationId, text.parameters.charset], ['application/x-depot-test', null, 'urn:depot:test', 106]);
  assert.equal(decodeWspPush(encodeWspPush({ contentType: 'text/plain', body })).contentType, 'text/plain');
  assert.equal(decodeWspPush(encodeWspPush({ contentType: 'text/plain', applicationId: 0x9000, body })).applicationId, 0x9000);
});

void test('WAP Push: encode then decode gives back what was pushed, for any body and parameters; over SMS the parts reassemble to the same PDU', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 900 }),
      fc.constantFrom('application/vnd.syncml.notification', 'application/vnd.wap.connectivity-wbxml', 'application/vnd.wap.sic', 'application/x-foo'),
      fc.option(fc.constantFrom('USERPIN', 'NETWPIN', 'USERNETWPIN', 'USERPINMAC') as fc.Arbitrary<'USERPIN'>, { nil: undefined }),
      fc.option(fc.constantFrom('x-wap-application:syncml.dm', 'x-wap-application:wml.ua', 'urn:x'), { nil: undefined }),
      fc.integer({ min: 0, max: 255 }),
      (body, contentType, SEC, applicationId, tid) => {
        const message = { contentType, body, transactionId: tid, ...(SEC ? { parameters: { SEC, MAC: 'A'.repeat(40) } } : {}), ...(applicationId ? { applicationId } : {}) };
        const d = decodeWspPush(encodeWspPush(message));
        assert.deepEqual([d.transactionId, d.contentType, d.applicationId, d.parameters.SEC, d.parameters.MAC, d.body], [tid, contentType, applicationId ?? null, SEC, SEC ? 'A'.repeat(40) : undefined, body]);
        const r = new Reassembler();
        let whole: Reassembled | undefined;
        for (const p of wapPushSegments(message, 7)) whole = r.add({ from: '+46700000001', udh: p.udh, data: p.data }) ?? whole;
        assert.deepEqual(whole?.data, encodeWspPush(message));
      },
    ),
    { numRuns: 300 },
  );
});

void test('WAP Push decoder: what is not a Push PDU is refused with why (BAD_PDU), never thrown as anything else', () => {
  assert.throws(() => decodeWspPush(Uint8Array.of(0x01, 0x07, 0x01, 0xc4)), smsError('BAD_PDU', /not Push/));
  assert.throws(() => decodeWspPush(Uint8Array.of(0x01, 0x06, 0x05, 0xc4)), smsError('BAD_PDU', /truncated/));
  assert.throws(() => decodeWspPush(Uint8Array.of(0x01, 0x06, 0x00)), smsError('BAD_PDU', /content type/));
  assert.throws(() => decodeWspPush(Uint8Array.of(0x01, 0x06, 0x03, 0x02, 0xb6, 0x91)), smsError('BAD_PDU'));
  assert.throws(() => decodeWspPush(Uint8Array.of(0x01, 0x06, 0x04, 0x03, 0xb6, 0x91, 0x89)), smsError('BAD_PDU', /SEC value 9/));
  assert.throws(() => decodeWspPush(Uint8Array.of(0x01, 0x06, 0x03, 0xc4, 0x7f, 0x02)), smsError('BAD_PDU', /code page/));
  assert.throws(() => encodeWspPush({ contentType: 'not a type', body: new Uint8Array() }), smsError('BAD_MESSAGE'));
  assert.throws(() => encodeWspPush({ contentType: 'application/vnd.wap.connectivity-wbxml', parameters: { MAC: 'xyz' }, body: new Uint8Array() }), smsError('BAD_MESSAGE', /40 hex/));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      try {
        decodeWspPush(bytes);
      } catch (e) {
        assert.ok(e instanceof SmsError && e.code === 'BAD_PDU', String(e));
      }
    }),
    { numRuns: 2000 },
  );
});

void test('LwM2M SMS wake-up: the Registration Update Trigger is a CoAP CON POST /1/<ssid>/8 without payload; other CoAP or bytes are not a trigger', () => {
  const bytes = registrationUpdateTrigger(1, 0x1234, Uint8Array.of(0xaa));
  // RFC 7252 §3: Ver 1, CON, TKL 1; POST (0.02); MID 0x1234; token; Uri-Path "1" (delta 11), "1" (delta 0), "8".
  assert.deepEqual([...bytes], [0x41, 0x02, 0x12, 0x34, 0xaa, 0xb1, 0x31, 0x01, 0x31, 0x01, 0x38]);
  assert.equal(parseRegistrationUpdateTrigger(bytes), 1);
  assert.equal(parseRegistrationUpdateTrigger(registrationUpdateTrigger(123)), 123);
  assert.equal(parseRegistrationUpdateTrigger(Uint8Array.of(0x41, 0x01, 0x12, 0x34, 0xaa, 0xb1, 0x31, 0x01, 0x31, 0x01, 0x38)), undefined);
  assert.equal(parseRegistrationUpdateTrigger(Buffer.from('hello')), undefined);
  assert.throws(() => registrationUpdateTrigger(0), smsError('BAD_MESSAGE'));
});
