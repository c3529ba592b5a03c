import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseObjectLinks, parseRegister, parseUpdate, RegistrationRequestError } from '../../../src/lwm2m/server/registration-request.js';

test('TS Core 1.1 §6.2.1: object links with versions, an alternate root path and the ct hint', () => {
  const { objects, rootPath } = parseObjectLinks('</lwm2m>;rt="oma.lwm2m";ct=11543,</lwm2m/1/0>,</lwm2m/3/0>,</lwm2m/9>;ver=1.1,</lwm2m/9/0>');
  assert.equal(rootPath, '/lwm2m');
  assert.deepEqual(objects, [{ objectId: 1, instanceId: 0 }, { objectId: 3, instanceId: 0 }, { objectId: 9, version: '1.1' }, { objectId: 9, instanceId: 0 }]);
});

test('TS Core 1.1 §6.1.7.1: a Bootstrap-Discover answer opens with the root link </>;lwm2m=1.1', () => {
  const { objects } = parseObjectLinks('</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://x:5684",</0/1>,</1/0>;ssid=101,</3/0>');
  assert.deepEqual(objects.map((o) => `${o.objectId}/${o.instanceId}`), ['0/0', '0/1', '1/0', '3/0']);
});

test('object links that are not /o or /o/i are refused with a clear message', () => {
  assert.throws(() => parseObjectLinks('</3/0/1>'), /not <\/objectId> or <\/objectId\/instanceId>/);
  assert.throws(() => parseObjectLinks('</65535>'), /above 65534/);
  assert.throws(() => parseObjectLinks('</3/0'), RegistrationRequestError);
});

test('TS Core 1.1 §6.2.1: Register parameters and their defaults', () => {
  const r = parseRegister(['ep=dev', 'lt=60', 'lwm2m=1.1', 'b=U', 'Q', 'sms=+4912345'], '</3/0>');
  assert.deepEqual([r.endpoint, r.lifetimeSec, r.lwm2mVersion, r.binding, r.queueMode, r.smsNumber], ['dev', 60, '1.1', 'U', true, '+4912345']);
  const d = parseRegister(['ep=dev'], '');
  assert.deepEqual([d.lifetimeSec, d.lwm2mVersion, d.binding, d.queueMode, d.smsNumber], [86_400, '1.0', 'U', false, null]);
  assert.throws(() => parseRegister(['ep=a', 'ep=b'], ''), /appears twice/);
  assert.throws(() => parseRegister(['ep=' + 'x'.repeat(256)], ''), /longer than 255/);
});

test('TS Core 1.1 §6.2.2: Update carries only what changed', () => {
  assert.deepEqual(parseUpdate([], undefined), {});
  assert.deepEqual(parseUpdate(['lt=30', 'b=UQ'], '</3/0>'), { lifetimeSec: 30, binding: 'UQ', queueMode: true, objectLinks: '</3/0>', objects: [{ objectId: 3, instanceId: 0 }] });
  assert.throws(() => parseUpdate(['lt=0'], undefined), /at least 1 second/);
});
