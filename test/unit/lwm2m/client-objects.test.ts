import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { BOOTSTRAP_ACCESS, DM_ACCESS, ObjectError, createDeviceObject, createServerObject, createSecurityObject, accountOf, defaultFormat } from '../../../src/lwm2m/client/index.js';
import type { ObjectChange } from '../../../src/lwm2m/client/index.js';
import { Node, Value } from '../../../src/lwm2m/index.js';

const INFO = { manufacturer: 'Acme', modelNumber: 'M1', serialNumber: 'S1', firmwareVersion: '1.0', softwareVersion: 'OS 2' };

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ObjectError) return e.code;
    throw e;
  }
  return 'ok';
}

test('client objects: Device reads follow the definition (R ok, E → 4.05, absent → 4.04, missing instance → 4.04)', () => {
  const dev = createDeviceObject(INFO, { now: () => 1_700_000_000_500 });
  assert.deepEqual(dev.readResource(0, 0, DM_ACCESS), Node.resource(0, Value.string('Acme')));
  assert.deepEqual(dev.readResource(0, 19, DM_ACCESS), Node.resource(19, Value.string('OS 2')));
  assert.deepEqual(dev.readResource(0, 13, DM_ACCESS), Node.resource(13, Value.time(1_700_000_000)));
  assert.equal(code(() => dev.readResource(0, 4, DM_ACCESS)), '4.05');
  assert.equal(code(() => dev.readResource(0, 7, DM_ACCESS)), '4.04');
  assert.equal(code(() => dev.readResource(1, 0, DM_ACCESS)), '4.04');
  assert.deepEqual(dev.instanceIds(), [0]);
});

test('client objects: a Write is all-or-nothing and reports only the resources that changed', () => {
  const dev = createDeviceObject(INFO);
  const changes: ObjectChange[] = [];
  dev.subscribe((c) => changes.push(c));
  assert.equal(code(() => dev.write(0, [Node.resource(14, Value.string('+01:00')), Node.resource(0, Value.string('X'))], 'update', DM_ACCESS)), '4.05');
  assert.deepEqual(dev.get(0, 14), Value.string('+00:00'));
  assert.deepEqual(changes, []);
  dev.write(0, [Node.resource(14, Value.string('+01:00')), Node.resource(15, Value.string('Etc/UTC'))], 'update', DM_ACCESS);
  assert.deepEqual(changes, [{ iid: 0, rids: [14] }]);
  // A wrong kind: a multiple resource for a single one.
  assert.equal(code(() => dev.write(0, [Node.multiResource(14, [Value.string('a')])], 'update', DM_ACCESS)), '4.00');
  // Integer given for an unsigned integer resource is converted to the defined type.
  const srv = createServerObject([{ shortServerId: 1, lifetime: 60 }]);
  srv.write(0, [Node.resource(1, Value.integer(90))], 'update', DM_ACCESS);
  assert.deepEqual(srv.get(0, 1), Value.unsignedInteger(90));
});

test('client objects: device-side set() notifies once per real change; Reset Error Code restores [0]', async () => {
  const dev = createDeviceObject(INFO);
  const changes: ObjectChange[] = [];
  dev.subscribe((c) => changes.push(c));
  dev.set(0, 9, Value.integer(50));
  dev.set(0, 9, Value.integer(50));
  dev.set(0, 11, [Value.integer(1), Value.integer(3)]);
  assert.deepEqual(changes, [{ iid: 0, rids: [9] }, { iid: 0, rids: [11] }]);
  await dev.execute(0, 12, '', DM_ACCESS);
  assert.deepEqual(dev.readResource(0, 11, DM_ACCESS), Node.multiResource(11, [Value.integer(0)]));
});

test('client objects: Server object Create/Delete by a DM server; Device object refuses them', () => {
  const srv = createServerObject([{ shortServerId: 1, lifetime: 60 }]);
  assert.equal(srv.create(undefined, [Node.resource(0, Value.integer(2)), Node.resource(1, Value.unsignedInteger(30))], DM_ACCESS), 1);
  assert.equal(code(() => srv.create(1, [], DM_ACCESS)), '4.00');
  srv.delete(1, DM_ACCESS);
  assert.deepEqual(srv.instanceIds(), [0]);
  const dev = createDeviceObject(INFO);
  assert.equal(code(() => dev.create(undefined, [], DM_ACCESS)), '4.05');
  assert.equal(code(() => dev.delete(0, DM_ACCESS)), '4.05');
});

test('client objects: Security resources are writable and readable by the Bootstrap-Server only', () => {
  const sec = createSecurityObject([{ uri: 'coap://bs', bootstrap: true }]);
  assert.equal(code(() => sec.readResource(0, 0, DM_ACCESS)), '4.05');
  assert.deepEqual(sec.readResource(0, 0, BOOTSTRAP_ACCESS), Node.resource(0, Value.string('coap://bs')));
  assert.equal(code(() => sec.write(0, [Node.resource(0, Value.string('coap://evil'))], 'update', DM_ACCESS)), '4.05');
  sec.create(1, [Node.resource(0, Value.string('coaps://dm:5684')), Node.resource(1, Value.boolean(false)), Node.resource(2, Value.integer(0)), Node.resource(3, Value.opaque(Buffer.from('id'))), Node.resource(5, Value.opaque(Uint8Array.from([1, 2]))), Node.resource(10, Value.integer(7))], BOOTSTRAP_ACCESS);
  assert.deepEqual(accountOf(sec, 1), { uri: 'coaps://dm:5684', bootstrap: false, psk: { identity: 'id', key: Uint8Array.from([1, 2]) }, shortServerId: 7 });
});

test('client engine: default formats without Accept (plain text, opaque, TLV)', () => {
  assert.equal(defaultFormat(Node.resource(0, Value.string('x'))), 0);
  assert.equal(defaultFormat(Node.resource(0, Value.opaque(new Uint8Array(1)))), 42);
  assert.equal(defaultFormat(Node.resourceInstance(0, Value.integer(1))), 0);
  assert.equal(defaultFormat(Node.multiResource(11, [Value.integer(0)])), 11542);
  assert.equal(defaultFormat(Node.instance(0, [])), 11542);
});

test('client objects: a certificate-mode Security instance (TS Core 1.1 E.1: mode 2, resources 3/4/5, Certificate Usage 15) reads back as a certificate account; missing parts give none', () => {
  const cert = Uint8Array.from([0x30, 1, 2]);
  const anchor = Uint8Array.from([0x30, 9]);
  const key = Uint8Array.from([0x30, 7, 7]);
  const sec = createSecurityObject([{ uri: 'coaps://dm:5684', bootstrap: false, shortServerId: 1, certificate: { certificateDer: cert, serverTrustDer: anchor, privateKeyDer: key, usage: 2 } }]);
  assert.deepEqual(sec.readResource(0, 2, BOOTSTRAP_ACCESS), Node.resource(2, Value.integer(2)));
  assert.deepEqual(accountOf(sec, 0), { uri: 'coaps://dm:5684', bootstrap: false, shortServerId: 1, certificate: { certificateDer: cert, serverTrustDer: anchor, privateKeyDer: key, usage: 2 } });
  // Without Certificate Usage the default is 3 (domain-issued certificate).
  sec.create(1, [Node.resource(0, Value.string('coaps://dm2')), Node.resource(1, Value.boolean(false)), Node.resource(2, Value.integer(2)), Node.resource(3, Value.opaque(cert)), Node.resource(4, Value.opaque(anchor)), Node.resource(5, Value.opaque(key))], BOOTSTRAP_ACCESS);
  assert.equal(accountOf(sec, 1)?.certificate?.usage, 3);
  // Mode 2 without the server's certificate is not usable: no credentials.
  sec.create(2, [Node.resource(0, Value.string('coaps://dm3')), Node.resource(1, Value.boolean(false)), Node.resource(2, Value.integer(2)), Node.resource(3, Value.opaque(cert)), Node.resource(5, Value.opaque(key))], BOOTSTRAP_ACCESS);
  assert.equal(accountOf(sec, 2)?.certificate, undefined);
});
