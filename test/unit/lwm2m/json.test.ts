/**
 * The strict JSON parser under SenML JSON (RFC 8259), checked against JSON.parse as the reference
 * for what is JSON and what it means, on generated documents with every escape and whitespace,
 * and on one-character corruptions of them. Where the two differ on purpose (duplicate member
 * names, nesting and size limits, number precision) the test says so.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { JsonNumber, parseJson, type JsonValue } from '../../../src/lwm2m/content/json.js';
import { DEFAULT_LIMITS, Lwm2mCodecError, type CodecLimits } from '../../../src/lwm2m/errors.js';

/** The parse tree as plain JS, numbers as JSON.parse would make them. */
function plain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return Number(v.raw);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  return v;
}

const parse = (text: string, limits: CodecLimits = DEFAULT_LIMITS) => parseJson(text, limits);

function refuses(text: string, limits: CodecLimits = DEFAULT_LIMITS): Lwm2mCodecError {
  try {
    parse(text, limits);
  } catch (e) {
    assert.ok(e instanceof Lwm2mCodecError, `not a codec error: ${String(e)}`);
    assert.equal(e.code, '4.00');
    return e;
  }
  assert.fail(`accepted ${JSON.stringify(text)}`);
}

/** JSON text with the RFC 8259 §2 whitespace (space, tab, LF, CR) sprinkled around every token. */
function spaced(value: unknown, seed: number): string {
  const ws = [' ', '\t', '\n', '\r', '', ' \r\n\t'];
  let i = seed;
  const pad = (): string => ws[i++ % ws.length]!;
  const go = (v: unknown): string => {
    if (Array.isArray(v)) return `${pad()}[${pad()}${v.map(go).join(`${pad()},${pad()}`)}${pad()}]${pad()}`;
    if (v !== null && typeof v === 'object') return `${pad()}{${Object.entries(v).map(([k, x]) => `${pad()}${JSON.stringify(k)}${pad()}:${go(x)}`).join(',')}${pad()}}${pad()}`;
    return `${pad()}${JSON.stringify(v)}${pad()}`;
  };
  return go(value);
}

void test('RFC 8259: any JSON document (all escapes, unicode, nesting, whitespace) means what JSON.parse says (property)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 6 }), fc.nat(), (value, seed) => {
      for (const text of [JSON.stringify(value), spaced(JSON.parse(JSON.stringify(value)), seed)]) {
        assert.deepEqual(plain(parse(text)), JSON.parse(text), text);
      }
    }),
    { numRuns: 300 },
  );
});

void test('RFC 8259 §7: every escape, and the characters that must be escaped', () => {
  assert.equal(parse(String.raw`"\" \\ \/ \b \f \n \r \t \u0041\u00e9\u20AC\ud83d\ude00"`), '" \\ / \b \f \n \r \t Aé€😀');
  assert.equal(parse('"plain"'), 'plain');
  assert.equal(parse('""'), '');
  assert.equal(parse(String.raw`"a\nb"`), 'a\nb');
  for (const bad of [String.raw`"\x"`, String.raw`"\u12"`, String.raw`"\u12G4"`, String.raw`"\'"`, '"abc', '"\\', '"a\u0001b"', '"\n"', '"\t"']) refuses(bad);
});

void test('RFC 8259 §6: numbers — minus, int without leading zeros, fraction, exponent; the source text is kept', () => {
  for (const ok of ['0', '-0', '7', '-12', '1.5', '0.25', '1e5', '1E5', '1e+5', '1e-5', '-1.25E-10', '12345678901234567890']) {
    const n = parse(ok);
    assert.ok(n instanceof JsonNumber, ok);
    assert.equal(n.raw, ok);
    assert.equal(n.isInteger, !/[.eE]/.test(ok), ok);
  }
  for (const bad of ['01', '-', '+1', '.5', '1.', '1e', '1e+', '0x10', '- 1', 'NaN', 'Infinity', '1.e5', '--1']) refuses(bad);
});

void test('RFC 8259 §3, §4, §5: literals, objects and arrays, and what is not JSON', () => {
  assert.deepEqual(plain(parse(' {"a" : [true, false, null, {}, []] , "b":{"c":"d"}} ')), { a: [true, false, null, {}, []], b: { c: 'd' } });
  for (const bad of ['', ' ', 'tru', 'nul', 'fals', 'True', '[1,]', '[,1]', '[1 2]', '{"a":1,}', '{"a" 1}', '{a:1}', '{"a":1 "b":2}', '[', '{', '{"a":', '1 2', '[] x', '"a" "b"', '{"a":1}}', "{'a':1}"]) refuses(bad);
});

void test('RFC 8259: a one-character change of a JSON document is accepted exactly when JSON.parse accepts it (property; duplicate names are refused on purpose)', () => {
  const alphabet = [...'{}[]":,. -+0123456789eEtrufalsn\\/bu\t\n\r x\u0001'];
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom(...alphabet), fc.boolean(), (value, at, ch, insert) => {
      const text = JSON.stringify(value);
      const i = text.length === 0 ? 0 : at % text.length;
      const changed = insert ? text.slice(0, i) + ch + text.slice(i) : text.slice(0, i) + ch + text.slice(i + 1);
      let reference: unknown;
      let valid = true;
      try {
        reference = JSON.parse(changed);
      } catch {
        valid = false;
      }
      if (!valid) {
        refuses(changed);
        return;
      }
      let mine: JsonValue;
      try {
        mine = parse(changed);
      } catch (e) {
        // Depot's choice: an object with a member name twice is refused (RFC 8259 §4: names SHOULD be unique).
        assert.match(String((e as Error).message), /duplicate member/, changed);
        return;
      }
      assert.deepEqual(plain(mine), reference, changed);
    }),
    { numRuns: 1000 },
  );
});

void test('RFC 8259 §4: duplicate member names are refused (Depot\'s choice: the RFC says names SHOULD be unique)', () => {
  refuses('{"a":1,"a":2}');
  refuses('{"x":{"a":1,"b":2,"a":3}}');
  assert.deepEqual(plain(parse('{"a":{"a":1},"b":{"a":2}}')), { a: { a: 1 }, b: { a: 2 } });
});

void test('limits (Depot\'s choice, RFC 8259 §9 allows them): nesting up to maxDepth, up to maxEntries values in all', () => {
  const limits: CodecLimits = { ...DEFAULT_LIMITS, maxDepth: 3, maxEntries: 5 };
  assert.deepEqual(plain(parse('[[[1]]]', limits)), [[[1]]]); // depth 3
  assert.match(refuses('[[[[1]]]]', limits).message, /nesting deeper than 3/);
  assert.deepEqual(plain(parse('[1,2,3,4]', limits)), [1, 2, 3, 4]); // 5 values: the array and its 4 items
  assert.match(refuses('[1,2,3,4,5]', limits).message, /too many values/);
  assert.deepEqual(plain(parse('{"a":{"b":{"c":1}}}', limits)), { a: { b: { c: 1 } } });
  refuses('{"a":{"b":{"c":{"d":1}}}}', limits);
  // 400 digits is the longest number
  assert.equal((parse('9'.repeat(400)) as JsonNumber).raw.length, 400);
  assert.match(refuses('9'.repeat(401)).message, /number too long/);
});
