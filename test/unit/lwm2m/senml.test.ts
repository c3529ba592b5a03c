import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ContentFormat, Node, Value, decode, decodeRecords, decodeSenmlEntries, encode, encodeRecords } from '../../../src/lwm2m/index.js';
import { CborFloat, CborMap, encodeCbor, type CborItem } from '../../../src/lwm2m/content/cbor.js';
import { SENML_CBOR_LABELS, formatSenmlCbor, parseSenmlCbor, type SenmlPack } from '../../../src/lwm2m/content/senml.js';
import { DEVICE_INSTANCE, assertCodecError, hex, text, toHex, utf8 } from './helpers.js';

const JSON_ = ContentFormat.SenmlJson;
const CBOR = ContentFormat.SenmlCbor;

/** TS Core 1.1 §7.4.4: Read /3/0 in SenML JSON. */
const DEVICE_SENML_JSON =
  '[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},' +
  '{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},' +
  '{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},' +
  '{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},' +
  '{"n":"14","vs":"+02:00"},{"n":"16","vs":"U"}]';

/** TS Core 1.1.1 §7.4.5: the same Device instance in SenML CBOR. */
const DEVICE_SENML_CBOR =
  '90a321652f332f302f00613003744f70656e204d6f62696c6520416c6c69616e6365a200613103764c69676874776569676874204d324d20436c69656e74' +
  'a20061320369333435303030313233a20061330363312e30a20063362f300201a20063362f310205a20063372f3002190ed8a20063372f3102191388' +
  'a20063382f3002187da20063382f3102190384a2006139021864a200623130020fa2006431312f300200a200623133021a5182428fa20062313403662b' +
  '30323a3030a200623136036155';

test('SenML JSON TS 1.1 §7.4.4: Device /3/0 encodes to the example text', () => {
  assert.equal(text(encode(JSON_, [3, 0], DEVICE_INSTANCE)), DEVICE_SENML_JSON);
});

test('SenML JSON TS 1.1 §7.4.4: the example decodes to the Device instance (bn/n concatenation, time typed)', () => {
  assert.deepEqual(decode(JSON_, [3, 0], utf8(DEVICE_SENML_JSON)), DEVICE_INSTANCE);
  // the same with whitespace and absolute names
  const spaced = '[ {"n":"/3/0/9", "v":100} ,\n {"bn":"/3/0/","n":"13","v":1367491215}]';
  assert.deepEqual(
    decode(JSON_, [3, 0], utf8(spaced)),
    Node.instance(0, [Node.resource(9, Value.integer(100)), Node.resource(13, Value.time(1367491215))]),
  );
});

test('SenML CBOR TS 1.1.1 §7.4.5: Device /3/0 encodes to the example bytes and back', () => {
  assert.equal(toHex(encode(CBOR, [3, 0], DEVICE_INSTANCE)), DEVICE_SENML_CBOR.toUpperCase());
  assert.deepEqual(decode(CBOR, [3, 0], hex(DEVICE_SENML_CBOR)), DEVICE_INSTANCE);
});

test('SenML JSON TS 1.1 §7.4.4: single resource, resource instance, vb/vd/vlo, floats', () => {
  assert.equal(text(encode(JSON_, [3, 0, 9], Node.resource(9, Value.integer(100)))), '[{"bn":"/3/0/9","v":100}]');
  assert.equal(
    text(encode(JSON_, [3, 0, 6], Node.multiResource(6, [Value.integer(1), Value.integer(5)]))),
    '[{"bn":"/3/0/6/","n":"0","v":1},{"n":"1","v":5}]',
  );
  assert.equal(text(encode(JSON_, [3, 0, 7, 1], Node.resourceInstance(1, Value.integer(5000)))), '[{"bn":"/3/0/7/1","v":5000}]');
  const inst = Node.instance(0, [
    Node.resource(2, Value.opaque(Uint8Array.of(0xfb, 0xff))),
    Node.resource(5, Value.objlnk(3, 0)),
    Node.resource(8, Value.boolean(true)),
  ]);
  const json = '[{"bn":"/9/0/","n":"2","vd":"-_8"},{"n":"5","vlo":"3:0"},{"n":"8","vb":true}]';
  assert.equal(text(encode(JSON_, [9, 0], inst)), json);
  assert.deepEqual(decode(JSON_, [9, 0], utf8(json)), inst);
  // standard base64 with padding is accepted as well
  assert.deepEqual(decode(JSON_, [9, 0, 2], utf8('[{"n":"/9/0/2","vd":"+/8="}]')), Node.resource(2, Value.opaque(Uint8Array.of(0xfb, 0xff))));
  assert.equal(text(encode(JSON_, [3303, 0, 5700], Node.resource(5700, Value.float(2)))), '[{"bn":"/3303/0/5700","v":2.0}]');
  assert.deepEqual(decode(JSON_, [3303, 0, 5700], utf8('[{"n":"/3303/0/5700","v":2.0}]')), Node.resource(5700, Value.float(2)));
  assert.deepEqual(decode(JSON_, [3303, 0, 5700], utf8('[{"n":"/3303/0/5700","v":2}]')), Node.resource(5700, Value.integer(2)));
  assert.deepEqual(
    decode(JSON_, [3, 0, 9], utf8('[{"n":"/3/0/9","v":9223372036854775807}]')),
    Node.resource(9, Value.integer(2n ** 63n - 1n)),
  );
});

test('SenML JSON RFC 8428 §4.5: base time plus time, records API, entries without values', () => {
  const body = '[{"bn":"/3/0/","bt":1000,"n":"9","v":100,"t":5},{"n":"9","v":90,"t":10},{"n":"10","v":15}]';
  assert.deepEqual(decodeRecords(JSON_, utf8(body)), [
    { path: [3, 0, 9], value: Value.integer(100), time: 1005 },
    { path: [3, 0, 9], value: Value.integer(90), time: 1010 },
    { path: [3, 0, 10], value: Value.integer(15), time: 1000 },
  ]);
  // the latest of a time series wins when building a node
  assert.deepEqual(
    decode(JSON_, [3, 0], utf8(body)),
    Node.instance(0, [Node.resource(9, Value.integer(90)), Node.resource(10, Value.integer(15))]),
  );
  assert.equal(
    text(encodeRecords(JSON_, [{ path: [3, 0, 9], value: Value.integer(1) }, { path: [1, 0, 1], value: Value.unsignedInteger(300) }])),
    '[{"n":"/3/0/9","v":1},{"n":"/1/0/1","v":300}]',
  );
  assert.deepEqual(decodeSenmlEntries('json', utf8('[{"n":"/3/0/9"},{"n":"/1"}]')), [{ path: [3, 0, 9] }, { path: [1] }]);
});

test('SenML RFC 8428 §4.4/§6: malformed payloads are 4.00 with diagnostics', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /JSON/],
    ['{}', /array/],
    ['[1]', /object/],
    ['[{"n":"/3/0/9","v":1,"vs":"x"}]', /more than one value/],
    ['[{"n":"/3/0/9","v":"1"}]', /"v" must be a number/],
    ['[{"n":"3/0/9","v":1}]', /start with/],
    ['[{"n":"/3/0/9","v":1.5}]', /convert float/],
    ['[{"n":"/3/0/0","v":1}]', /convert integer/],
    ['[{"n":"/3/0/9","v":1}', /JSON/],
    ['[{"n":"/3/0/9","v":1,"n":"/3/0/9"}]', /duplicate member/],
    ['[{"n":"/3/0/9","v":1}] x', /trailing/],
    ['[{"n":"/3/0/9","v":1,"x_":1}]', /must-understand/],
    ['[{"n":"/3/0/9","v":1},{"n":"/3/0/9","v":1}]', /duplicate value/],
    ['[{"n":"/4/0/9","v":1}]', /outside/],
    ['[{"n":"/3/0","v":1}]', /not a resource/],
    ['[{"n":"/3/0/9","v":18446744073709551616}]', /beyond 64 bits/],
    ['[{"n":"/3/0/4","v":1}]', /executable/],
    ['[{"n":"/9/0/2","vd":"@@"}]', /base64/],
    ['[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', /nesting/],
  ];
  for (const [body, diag] of bad) assertCodecError(() => decode(JSON_, [3, 0], utf8(body)), '4.00', diag);
  assertCodecError(() => decode(CBOR, [3, 0], hex('a0')), '4.00', /array/);
  assertCodecError(() => decode(CBOR, [3, 0], hex('81a2006539')), '4.00', /exceeds|truncated/);
  assertCodecError(() => encode(JSON_, [3303, 0, 1], Node.resource(1, Value.float(NaN))), '4.06');
});

test('SenML JSON TS 1.1 §7.4.4 / RFC 8428 §4.5: timestamped history of one resource (bn only, relative t)', () => {
  const body = '[{"bn":"/3303/0/5700","bt":25462634,"v":22.4,"t":-5},{"v":22.9,"t":-30},{"v":24.1,"t":-50}]';
  assert.deepEqual(decodeRecords(JSON_, utf8(body)), [
    { path: [3303, 0, 5700], value: Value.float(22.4), time: 25462629 },
    { path: [3303, 0, 5700], value: Value.float(22.9), time: 25462604 },
    { path: [3303, 0, 5700], value: Value.float(24.1), time: 25462584 },
  ]);
  assert.deepEqual(decode(JSON_, [3303, 0, 5700], utf8(body)), Node.resource(5700, Value.float(22.4)));
  assert.deepEqual(decode(JSON_, [3303, 0], utf8(body)), Node.instance(0, [Node.resource(5700, Value.float(22.4))]));
});

test('SenML CBOR RFC 8428 §6: records are written field by field exactly as the generic CBOR encoder writes their maps', () => {
  const pack: SenmlPack[] = [
    { bn: '/3303/0/', bt: 1.5, n: '5700', t: -2, v: { float: 22.5 } },
    { n: '5701', t: 4294967296, vs: 'Cel' },
    { n: '5702', v: { int: -(2n ** 63n) } },
    { n: '5703', v: { int: 18446744073709551615n } },
    { n: '5704', vb: true },
    { n: '5705', vd: Uint8Array.of(0, 255) },
    { n: '5706', vlo: '3:0' },
    { n: '5707', v: { float: 1e300 } },
    { n: 'ü', v: { int: 70000 } },
  ];
  const L = SENML_CBOR_LABELS;
  const generic = encodeCbor(
    pack.map((r) => {
      const e: Array<readonly [CborItem, CborItem]> = [];
      if (r.bn !== undefined) e.push([L.bn, r.bn]);
      if (r.bt !== undefined) e.push([L.bt, Number.isInteger(r.bt) ? r.bt : new CborFloat(r.bt)]);
      if (r.n !== undefined) e.push([L.n, r.n]);
      if (r.t !== undefined) e.push([L.t, Number.isInteger(r.t) ? r.t : new CborFloat(r.t)]);
      if (r.v !== undefined) e.push([L.v, 'int' in r.v ? r.v.int : new CborFloat(r.v.float)]);
      if (r.vs !== undefined) e.push([L.vs, r.vs]);
      if (r.vb !== undefined) e.push([L.vb, r.vb]);
      if (r.vd !== undefined) e.push([L.vd, r.vd]);
      if (r.vlo !== undefined) e.push(['vlo', r.vlo]);
      return new CborMap(e);
    }),
  );
  assert.equal(toHex(formatSenmlCbor(pack)), toHex(generic));
  assert.deepEqual(parseSenmlCbor(formatSenmlCbor(pack)), pack);
});
