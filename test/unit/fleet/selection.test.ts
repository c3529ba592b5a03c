/**
 * Catalog selection: version ranges over vendor version strings, glob patterns, ranking by
 * priority then version, and explain naming the rule that matched or failed for each package.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { compareVersions, explainSelection, globRegExp, targetsProblem, versionInRange, versionNumbers, type PackageTargets } from '../../../src/fleet/selection.js';
import type { PackageRecord } from '../../../src/fleet/domain.js';

function pkg(n: number, name: string, version: string, addedAt = 1000 + n): PackageRecord {
  return { sha256: n.toString(16).padStart(64, '0'), name, version, size: 1, keyId: 'k', manifest: { format: 'depot-pkg/1' }, addedAt };
}

void test('selection: versions compare by their dotted numeric part, tolerant of vendor text and suffixes', () => {
  assert.deepEqual(versionNumbers('Android 13'), [13]);
  assert.deepEqual(versionNumbers('4.19.0-vendor7'), [4, 19, 0]);
  assert.deepEqual(versionNumbers('v2.10'), [2, 10]);
  assert.equal(versionNumbers('unknown'), null);
  assert.equal(compareVersions([2, 10], [2, 9]), 1, '2.10 is after 2.9 (numeric, not text)');
  assert.equal(compareVersions([1, 0], [1]), 0, 'missing parts are 0');
  assert.equal(versionInRange('2.10.1-rc1', '>=2.9 <3'), true);
  assert.equal(versionInRange('3.0', '>=2.9 <3'), false);
  assert.equal(versionInRange('1.2.7', '1.2.x'), true);
  assert.equal(versionInRange('1.3', '1.2.x'), false);
  assert.equal(versionInRange('13', '<10 || >=13'), true);
  assert.equal(versionInRange('11', '<10 || >=13'), false);
  assert.equal(versionInRange('anything 5', '*'), true);
  assert.match(targetsProblem({ osVersion: '>=abc' }) ?? '', /">=abc" is not a comparator/);
  assert.match(targetsProblem({ make: [] }) ?? '', /make must be a list of 1\.\.100 patterns/);
  assert.match(targetsProblem({ model: ['a\u0000b'] }) ?? '', /control characters/);
  assert.equal(targetsProblem({ make: ['acme*'], osVersion: '>=1 <2', priority: 5 }), undefined);
});

void test('selection: globs are anchored and case-insensitive; regex characters are literal', () => {
  assert.equal(globRegExp('ACME*').test('acme corp'), true);
  assert.equal(globRegExp('x?').test('x1'), true);
  assert.equal(globRegExp('x?').test('x12'), false);
  assert.equal(globRegExp('a.b').test('axb'), false, 'a dot is a dot');
  assert.equal(globRegExp('sensor').test('my sensor'), false, 'anchored');
});

void test('selection: explain picks by priority, then version; says why every other package fails, rule by rule', () => {
  const generic: PackageTargets = { make: ['acme'], osVersion: '>=2' };
  const pinned: PackageTargets = { make: ['ACME'], model: ['s-1*'], osVersion: '>=2 <3', priority: 10 };
  const other: PackageTargets = { make: ['globex'] };
  const old: PackageTargets = { make: ['acme'], osVersion: '<2' };
  const candidates = [
    { record: pkg(1, 'app', '1.0'), targets: generic },
    { record: pkg(2, 'app', '1.1'), targets: generic },
    { record: pkg(3, 'app', '1.0-s1'), targets: pinned },
    { record: pkg(4, 'app', '9.0'), targets: other },
    { record: pkg(5, 'app', '0.9'), targets: old },
  ];
  const s1 = explainSelection(candidates, { make: 'Acme', model: 'S-100', os: 'linux', osVersion: '2.4.1-acme' });
  assert.equal(s1.chosen?.sha256, pkg(3, 'app', '').sha256, 'the pinned model package wins on priority');
  assert.match(s1.reason, /highest priority \(10, next 0\)/);
  const g = explainSelection(candidates, { make: 'acme', model: 'T-2', os: 'linux', osVersion: '3.1' });
  assert.equal(g.chosen?.version, '1.1', 'without the pinned one (model and OS range fail), the higher version of equal priority');
  const pinnedVerdict = g.packages.find((p) => p.version === '1.0-s1')!;
  assert.equal(pinnedVerdict.fits, false);
  assert.deepEqual(pinnedVerdict.rules.filter((r) => !r.ok).map((r) => r.rule), ['osVersion', 'model']);
  assert.match(pinnedVerdict.rules.find((r) => r.rule === 'model')!.detail, /model "T-2" matches none of "s-1\*"/);
  const none = explainSelection(candidates, { make: null, model: null, os: null, osVersion: null });
  assert.equal(none.chosen, null);
  assert.match(none.reason, /none of the 5 packages fits/);
  assert.match(none.packages[0]!.rules.find((r) => r.rule === 'make')!.detail, /make is unknown/);
  // A device string cannot forge the explanation's text.
  const hostile = explainSelection(candidates, { make: 'acme\u001b[2J', model: 'x', os: null, osVersion: '2' });
  assert.ok(hostile.packages.every((p) => p.rules.every((r) => !r.detail.includes('\u001b'))));
});
