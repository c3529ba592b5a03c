/**
 * util/printable: how the CoAP and LwM2M layers print what a device sent (endpoint names,
 * query parameters, handler errors quoting them) in logs and diagnostics.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { printable } from '../../../src/util/printable.js';

test('control characters, separators, bidi overrides and lone surrogates are escaped; ordinary text (any script) is kept', () => {
  assert.equal(printable('dev\x00ice\r\nFAKE LOG LINE'), 'dev\\x00ice\\x0d\\x0aFAKE LOG LINE');
  assert.equal(printable('a\x1b[31mred\x7f\x85'), 'a\\x1b[31mred\\x7f\\x85');
  assert.equal(printable('x\u2028y\u202ez\u2066'), 'x\\u2028y\\u202ez\\u2066');
  assert.equal(printable('\ud800 \udc00'), '\\ud800 \\udc00');
  assert.equal(printable('a\\x00'), 'a\\\\x00', 'a backslash is escaped, so the output reads back unambiguously');
  assert.equal(printable('capteur-é-温度-😀'), 'capteur-é-温度-😀');
});

test('long text is cut with a count of what was left out, never in the middle of a surrogate pair', () => {
  assert.equal(printable('x'.repeat(205)), 'x'.repeat(200) + '…(5 more characters)');
  assert.equal(printable('a'.repeat(9) + '😀' + 'b', 10), 'a'.repeat(9) + '…(3 more characters)');
});

test('any string prints as one line of printable characters within a bounded length', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
      const out = printable(text);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(out, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      assert.equal(Buffer.from(out, 'utf8').toString('utf8'), out, 'well-formed UTF-16: no lone surrogate');
      assert.ok(out.length <= 200 * 6 + 40, `${out.length} characters`);
    }),
    { numRuns: 300 },
  );
});
