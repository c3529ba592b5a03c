/**
 * Error answers made by routes their own way become RFC 9457 problem documents (§3.1: type,
 * title, status, detail) on the way out; the route's code and extra members stay.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { asProblem, problemBody } from '../../../src/api/problem.js';

void test('problem: a route\'s { error, message } becomes a problem with its code, detail and extra members', () => {
  const converted = asProblem(409, 'application/json; charset=utf-8', JSON.stringify({ error: 'BOOTSTRAP_FAILED', message: 'the device did not answer', job: 'j1' }));
  assert.deepEqual(converted, { type: 'about:blank', title: 'Conflict', status: 409, detail: 'the device did not answer', error: 'BOOTSTRAP_FAILED', message: 'the device did not answer', job: 'j1' });
});

void test('problem: plain text and bare JSON get a code from the status; problems and non-objects are left alone', () => {
  assert.deepEqual(asProblem(404, 'text/plain; charset=utf-8', 'gone\n'), problemBody(404, 'NOT_FOUND', 'gone'));
  assert.deepEqual(asProblem(501, 'application/json', '{}'), problemBody(501, 'NOT_AVAILABLE', 'Not Implemented'));
  // A route cannot make the status lie: the HTTP status wins over a `status` member.
  assert.equal(asProblem(400, 'application/json', JSON.stringify({ status: 200, message: 'bad' }))!.status, 400);
  assert.equal(asProblem(400, 'application/problem+json', '{"type":"about:blank"}'), undefined);
  assert.equal(asProblem(400, 'application/json', '[1, 2]'), undefined);
  assert.equal(asProblem(400, 'application/json', 'not json'), undefined);
  assert.equal(asProblem(400, 'application/octet-stream', 'bytes'), undefined);
});
