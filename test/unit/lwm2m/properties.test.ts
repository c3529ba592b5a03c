import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  ContentFormat,
  INT64_MAX,
  INT64_MIN,
  Lwm2mCodecError,
  Node,
  UINT64_MAX,
  VALUE_TYPES,
  decode,
  encode,
  normalizeInteger,
  validateNode,
  defaultRegistry,
  type InstanceNode,
  type Lwm2mNode,
  type Lwm2mPath,
  type Lwm2mValue,
  type ObjectDefinition,
  type ResourceNode,
  type ValueType,
} from '../../../src/lwm2m/index.js';
import { decodeTlv } from '../../../src/lwm2m/content/tlv.js';
import { decodeOpaque, decodePlainText } from '../../../src/lwm2m/content/plaintext.js';
import { decodeSenmlCbor, decodeSenmlJson } from '../../../src/lwm2m/content/senml.js';
import { decodeLwm2mCbor } from '../../../src/lwm2m/content/lwm2mcbor.js';
import type { DecodeOptions ,
  ObjectRegistry} from '../../../src/lwm2m/index.js';
import { DEVICE_INSTANCE } from './helpers.js';

const OBJECT_ID = 40000;
const RUNS = 200;

const bigOrSmall = (min: bigint, max: bigint): fc.Arbitrary<number | bigint> =>
  fc.oneof(fc.bigInt({ min: min > -1000n ? min : -1000n, max: 1000n < max ? 1000n : max }), fc.bigInt({ min, max })).map(normalizeInteger);

function arbValue(type: ValueType, finiteFloats: boolean): fc.Arbitrary<Lwm2mValue> {
  switch (type) {
    case 'string':
    case 'corelnk':
      return fc.string({ unit: 'grapheme', maxLength: 12 }).map((value) => ({ type, value }));
    case 'integer':
    case 'time':
      return bigOrSmall(INT64_MIN, INT64_MAX).map((value) => ({ type, value }));
    case 'unsignedInteger':
      return bigOrSmall(0n, UINT64_MAX).map((value) => ({ type, value }));
    case 'float':
      return fc.double({ noNaN: finiteFloats, noDefaultInfinity: finiteFloats }).map((value) => ({ type, value }));
    case 'boolean':
      return fc.boolean().map((value) => ({ type, value }));
    case 'opaque':
      return fc.uint8Array({ maxLength: 24 }).map((value) => ({ type, value }));
    case 'objlnk':
      return fc
        .tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }))
        .map(([objectId, instanceId]) => ({ type, value: { objectId, instanceId } }));
  }
}

interface Scenario {
  readonly registry: ObjectRegistry;
  readonly object: Lwm2mNode & { kind: 'object' };
}

const arbId = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 65534 }));

/** A random object definition and an object node that follows it. */
function arbScenario(finiteFloats: boolean, allowEmpty: boolean): fc.Arbitrary<Scenario> {
  const arbDefs = fc.uniqueArray(
    fc.record({ id: arbId, type: fc.constantFrom(...VALUE_TYPES), multiple: fc.boolean() }),
    { minLength: 1, maxLength: 6, selector: (r) => r.id },
  );
  return arbDefs.chain((defs) => {
    const definition: ObjectDefinition = {
      id: OBJECT_ID,
      name: 'Random',
      urn: 'urn:test',
      version: '1.0',
      lwm2mVersion: '1.1',
      multiple: true,
      mandatory: false,
      resources: defs.map((d) => ({ id: d.id, name: `r${d.id}`, operations: 'RW', multiple: d.multiple, mandatory: false, type: d.type })),
    };
    const arbResource = (d: (typeof defs)[number]): fc.Arbitrary<ResourceNode> =>
      d.multiple
        ? fc
            .uniqueArray(fc.tuple(arbId, arbValue(d.type, finiteFloats)), { minLength: allowEmpty ? 0 : 1, maxLength: 3, selector: (t) => t[0] })
            .map((entries) => Node.multiResource(d.id, entries))
        : arbValue(d.type, finiteFloats).map((v) => Node.resource(d.id, v));
    const arbInstance = fc
      .tuple(arbId, fc.subarray(defs, { minLength: allowEmpty ? 0 : 1 }))
      .chain(([iid, chosen]) => fc.tuple(...chosen.map(arbResource)).map((resources): InstanceNode => Node.instance(iid, resources)));
    return fc
      .uniqueArray(arbInstance, { minLength: allowEmpty ? 0 : 1, maxLength: 3, selector: (i) => i.id })
      .map((instances) => ({ registry: defaultRegistry.with([definition]), object: Node.object(OBJECT_ID, instances) }));
  });
}

function roundTrip(format: number, finiteFloats: boolean, allowEmpty: boolean): void {
  fc.assert(
    fc.property(arbScenario(finiteFloats, allowEmpty), ({ registry, object }) => {
      const path: Lwm2mPath = [OBJECT_ID];
      assert.deepEqual(decode(format, path, encode(format, path, object, { registry }), { registry }), object);
      for (const instance of object.instances) {
        const ipath: Lwm2mPath = [OBJECT_ID, instance.id];
        assert.deepEqual(decode(format, ipath, encode(format, ipath, instance, { registry }), { registry }), instance);
        for (const resource of instance.resources) {
          const rpath: Lwm2mPath = [OBJECT_ID, instance.id, resource.id];
          assert.deepEqual(decode(format, rpath, encode(format, rpath, resource, { registry }), { registry }), resource);
        }
      }
    }),
    { numRuns: RUNS },
  );
}

test('property: TLV encode→decode round-trips random value trees (incl. empty, NaN, ±Infinity, 64-bit)', () => {
  roundTrip(ContentFormat.Tlv, false, true);
});

test('property: SenML JSON encode→decode round-trips random value trees', () => {
  roundTrip(ContentFormat.SenmlJson, true, false);
});

test('property: SenML CBOR encode→decode round-trips random value trees', () => {
  roundTrip(ContentFormat.SenmlCbor, true, false);
});

test('property: LwM2M CBOR encode→decode round-trips random value trees (incl. NaN, ±Infinity)', () => {
  roundTrip(ContentFormat.Lwm2mCbor, false, false);
});

test('property: plain text round-trips every single value type', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...VALUE_TYPES).chain((type) => fc.tuple(fc.constant(type), arbValue(type, false))),
      ([type, value]) => {
        const registry = defaultRegistry.with([
          { id: OBJECT_ID, name: 'x', urn: 'u', version: '1.0', lwm2mVersion: '1.1', multiple: true, mandatory: false, resources: [{ id: 1, name: 'r', operations: 'RW', multiple: false, mandatory: false, type }] },
        ]);
        const node = Node.resource(1, value);
        const path: Lwm2mPath = [OBJECT_ID, 0, 1];
        assert.deepEqual(decode(ContentFormat.PlainText, path, encode(ContentFormat.PlainText, path, node, { registry }), { registry }), node);
      },
    ),
    { numRuns: RUNS * 2 },
  );
});

// ---- robustness: nothing but Lwm2mCodecError, and decoded nodes are valid -------------------

type RawDecoder = (path: Lwm2mPath, bytes: Uint8Array, options?: DecodeOptions) => Lwm2mNode;
const DECODERS: Array<[string, RawDecoder, number]> = [
  ['TLV', decodeTlv, ContentFormat.Tlv],
  ['plain text', decodePlainText, ContentFormat.PlainText],
  ['opaque', decodeOpaque, ContentFormat.Opaque],
  ['SenML JSON', decodeSenmlJson, ContentFormat.SenmlJson],
  ['SenML CBOR', decodeSenmlCbor, ContentFormat.SenmlCbor],
  ['LwM2M CBOR', decodeLwm2mCbor, ContentFormat.Lwm2mCbor],
];
const PATHS: Lwm2mPath[] = [[3], [3, 0], [3, 0, 0], [3, 0, 6], [3, 0, 6, 1], [3, 0, 13], [9, 0], [9, 0, 5], [3303, 0], [3303, 0, 5700], [0, 1, 3]];

function decodesSafely(decoder: RawDecoder, path: Lwm2mPath, bytes: Uint8Array): void {
  let node: Lwm2mNode;
  try {
    node = decoder(path, bytes);
  } catch (e) {
    if (e instanceof Lwm2mCodecError && ['4.00', '4.15'].includes(e.code) && e.diagnostic.length > 0) return;
    throw e;
  }
  validateNode(path, node);
}

test('property: random bytes never throw anything but Lwm2mCodecError (every format, every path level)', () => {
  fc.assert(
    fc.property(fc.constantFrom(...DECODERS), fc.constantFrom(...PATHS), fc.uint8Array({ maxLength: 48 }), ([, decoder], path, bytes) => {
      decodesSafely(decoder, path, bytes);
    }),
    { numRuns: RUNS * 5 },
  );
});

test('property: mutated valid payloads never throw anything but Lwm2mCodecError', () => {
  const seeds = DECODERS.filter(([name]) => !['plain text', 'opaque'].includes(name)).map(
    ([name, decoder, format]) => [name, decoder, encode(format, [3, 0], DEVICE_INSTANCE)] as const,
  );
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  );
  fc.assert(
    fc.property(fc.constantFrom(...seeds), fc.constantFrom<Lwm2mPath>([3], [3, 0], [3, 0, 6]), fc.array(mutation, { minLength: 1, maxLength: 4 }), ([, decoder, seed], path, muts) => {
      let bytes = Uint8Array.from(seed);
      for (const m of muts) {
        const at = m.at % (bytes.length + 1);
        if (m.kind === 'flip' && at < bytes.length) bytes[at] = m.byte;
        else if (m.kind === 'cut') bytes = bytes.slice(0, at);
        else if (m.kind === 'insert') bytes = Uint8Array.from([...bytes.slice(0, at), m.byte ?? 0, ...bytes.slice(at)]);
      }
      decodesSafely(decoder, path, bytes);
    }),
    { numRuns: RUNS * 5 },
  );
});

test('property: random JSON-ish text never throws anything but Lwm2mCodecError', () => {
  const token = fc.constantFrom('[', ']', '{', '}', ',', ':', '"bn"', '"n"', '"v"', '"vs"', '"vd"', '"vlo"', '"/3/0/"', '"6/1"', '1', '-0', '1e999', '1.5', 'true', 'null', '"3:0"', '"AQ=="', ' ');
  fc.assert(
    fc.property(fc.array(token, { maxLength: 30 }), fc.constantFrom(...PATHS), (tokens, path) => {
      decodesSafely(decodeSenmlJson, path, new TextEncoder().encode(tokens.join('')));
    }),
    { numRuns: RUNS * 5 },
  );
});
