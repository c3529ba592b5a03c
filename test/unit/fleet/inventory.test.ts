/**
 * The inventory over a real SQLite store: one record across protocols found by any identity,
 * history of changes, untrusted device strings, filters and cursor paging, tags and groups, and
 * the CSV import (line-by-line errors, streamed in arbitrary chunks, idempotent).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Inventory, imeiProblem, normalizeMsisdn } from '../../../src/fleet/inventory.js';
import { importDeviceCsv, ImportError, splitCsvLine } from '../../../src/fleet/inventory-import.js';
import { openStore, tempDir } from '../store/helpers.js';

const IMEI = '490154203237518'; // valid check digit
const IMEI2 = '356938035643809';

function chunks(text: string, size: number): AsyncIterable<Uint8Array> {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

void test('inventory: LwM2M and OMA DM contacts of one device meet in one record (IMEI), with last contact per protocol and a history', async () => {
  const store = openStore({ dataDir: join(tempDir(), 'data') });
  let t = 1_000_000;
  const inventory = new Inventory({ repository: store.inventory, now: () => t });
  const a = (await inventory.recordContact({ protocol: 'lwm2m', endpoint: `urn:imei:${IMEI}`, at: t }))!;
  assert.match(a.id, /^dev_/);
  assert.equal(a.imei, IMEI, 'the IMEI in the endpoint name is an identity');
  await inventory.fromFacts(`urn:imei:${IMEI}`, { manufacturer: 'Acme', modelNumber: 'S-1', firmwareVersion: '1.0', osVersion: '1.0' });
  t += 5000;
  const b = (await inventory.recordContact({ protocol: 'omadm', devId: `IMEI:${IMEI}`, make: 'Acme', model: 'S-1', os: 'linux', osVersion: '1.0', at: t }))!;
  assert.equal(b.id, a.id, 'the DM session found the same device by its IMEI');
  assert.equal(b.omadmDevId, `IMEI:${IMEI}`);
  assert.deepEqual(Object.keys(b.lastContact).sort(), ['lwm2m', 'omadm']);
  assert.equal(b.lastContact.omadm, t);
  assert.equal(b.os, 'linux');
  const history = (await inventory.history(a.id)).items;
  assert.deepEqual(history.map((h) => h.source), ['omadm', 'lwm2m', 'lwm2m'], 'newest first');
  assert.deepEqual(history[1]!.changes.make, [null, 'Acme']);
  assert.deepEqual(history[0]!.changes.omadmDevId, [null, `IMEI:${IMEI}`]);
  // A contact that changes nothing adds no history (a registration update every few minutes).
  await inventory.recordContact({ protocol: 'lwm2m', endpoint: `urn:imei:${IMEI}` });
  assert.equal((await inventory.history(a.id)).items.length, 3);
});

void test('inventory: device strings are untrusted: control characters escaped, lengths bounded, bad identities dropped, identities never taken from another device', async () => {
  const store = openStore({ dataDir: join(tempDir(), 'data') });
  const inventory = new Inventory({ repository: store.inventory });
  const d = (await inventory.recordContact({ protocol: 'omadm', devId: 'SN-1', make: 'Evil\u001b[31m\nCorp', model: 'x'.repeat(5000), imei: '123', msisdn: 'not a number' }))!;
  assert.equal(d.make, 'Evil\\x1b[31m\\x0aCorp');
  assert.ok(d.model!.length < 300);
  assert.equal(d.imei, null, 'an IMEI of 3 digits is not kept');
  assert.equal(d.msisdn, null);
  const first = (await inventory.recordContact({ protocol: 'lwm2m', endpoint: 'ep-1', msisdn: '+49 151 1234 5678' }))!;
  assert.equal(first.msisdn, '+4915112345678');
  const second = (await inventory.recordContact({ protocol: 'lwm2m', endpoint: 'ep-2' }))!;
  // ep-2 claims ep-1's number: the number stays with ep-1, the conflict is in ep-2's history.
  const claimed = (await store.inventory.upsert({ lwm2mEndpoint: 'ep-2' }, { msisdn: '+4915112345678' }, { source: 'lwm2m', create: false }, Date.now()))!;
  assert.equal(claimed.device.id, second.id);
  assert.equal(claimed.device.msisdn, null);
  assert.deepEqual((await inventory.history(second.id)).items[0]!.changes['conflict.msisdn'], ['+4915112345678', first.id]);
  assert.equal(imeiProblem('490154203237519'), 'IMEI 490154203237519 has a wrong check digit');
  assert.deepEqual(normalizeMsisdn('0049 151 1234'), { msisdn: '+491511234' });
});

void test('inventory: an install that ended well puts the package in the software list, replacing an older version of the same name, found by any install address', async () => {
  const store = openStore({ dataDir: join(tempDir(), 'data') });
  const inventory = new Inventory({ repository: store.inventory, now: () => 1_000 });
  await inventory.recordContact({ protocol: 'lwm2m', endpoint: 'urn:imei:490154203237518' });
  await inventory.recordContact({ protocol: 'omadm', devId: 'IMEI:356938035643809' });
  const lwm2m = await inventory.recordInstalled('urn:imei:490154203237518', { name: 'agent', version: '1.0.0' }, 'install:object9');
  assert.deepEqual(lwm2m?.software, [{ name: 'agent', version: '1.0.0', source: 'install:object9' }]);
  await inventory.recordInstalled('urn:imei:490154203237518', { name: 'maps', version: '3' }, 'install:sms-link');
  const upgraded = await inventory.recordInstalled(`device:${lwm2m.id}`, { name: 'agent', version: '1.1.0' }, 'install:mark');
  assert.deepEqual(upgraded?.software.map((s) => `${s.name} ${s.version} ${s.source}`), ['agent 1.1.0 install:mark', 'maps 3 install:sms-link']);
  const phone = await inventory.recordInstalled('omadm:IMEI:356938035643809', { name: 'agent\u0007', version: '1.0.0' }, 'install:scomo');
  assert.equal(phone?.software[0]?.name, 'agent\\x07', 'device-bound strings are escaped like facts');
  assert.equal(await inventory.recordInstalled('never-seen', { name: 'agent', version: '1' }, 'install:object9'), null);
  assert.match(JSON.stringify((await inventory.history(lwm2m.id)).items.map((h) => h.source)), /install/);
  store.close();
});

void test('inventory: list filters (make, model, os, group, tag, protocol) with cursor paging', async () => {
  const store = openStore({ dataDir: join(tempDir(), 'data') });
  const inventory = new Inventory({ repository: store.inventory });
  for (let i = 0; i < 25; i++) {
    const d = (await inventory.recordContact({ protocol: i % 2 ? 'lwm2m' : 'omadm', ...(i % 2 ? { endpoint: `ep-${i}` } : { devId: `dm-${i}` }), make: i < 10 ? 'Acme' : 'Globex', model: `M${i % 3}`, os: 'linux' }))!;
    if (i % 5 === 0) await inventory.label(d.id, 'tag', ['canary'], []);
    if (i < 4) await inventory.label(d.id, 'group', ['lab'], []);
  }
  const acme = [];
  let after: string | undefined;
  do {
    const page = await inventory.list({ make: 'ACME', limit: 3, ...(after ? { after } : {}) });
    acme.push(...page.items);
    after = page.next ?? undefined;
  } while (after);
  assert.equal(acme.length, 10, 'make is matched case-insensitively, every page visited once');
  assert.equal(new Set(acme.map((d) => d.id)).size, 10);
  assert.equal((await inventory.list({ tag: 'canary' })).items.length, 5);
  assert.equal((await inventory.list({ group: 'lab', protocol: 'lwm2m' })).items.length, 2);
  assert.equal((await inventory.list({ model: 'm1', make: 'globex' })).items.length, 5);
  assert.equal((await inventory.list({ os: 'windows' })).items.length, 0);
  const labelled = (await inventory.list({ group: 'lab' })).items[0]!;
  const removed = await inventory.label(labelled.id, 'group', ['field'], ['lab']);
  assert.deepEqual(removed.groups, ['field']);
  assert.deepEqual((await inventory.history(labelled.id)).items[0]!.changes.groups, [['lab'], ['field']]);
  await assert.rejects(inventory.label(labelled.id, 'tag', ['a,b'], []), /no control characters and no commas/);
});

void test('inventory import: streamed CSV, each bad row reported with its line and why, good rows kept; a second import changes nothing; a later contact adopts the imported device', async () => {
  const store = openStore({ dataDir: join(tempDir(), 'data') });
  const csv = [
    'Phone,IMEI,Make,Model,Group',
    `+4915100000001,${IMEI},Acme,S-1,pilot;north`,
    `+4915100000002,${IMEI2},"Globex, Inc.",G-2,pilot`,
    '+4915100000003,490154203237519,Acme,S-1,pilot',
    'abc,,Acme,S-1,pilot',
    ',,Acme,S-1,',
    '"unclosed,1,2,3,4',
    '',
    '+4915100000004,,Acme,S-2,pilot,extra',
    '+4915100000005,,Acme,S-\u0007,pilot',
    '+4915100000006,,Acme,S-2,bad\u0001group',
  ].join('\r\n');
  // 7-byte chunks: lines and UTF-8 sequences split anywhere.
  const report = await importDeviceCsv(store.inventory, chunks(csv, 7));
  assert.deepEqual(report.errors.map((e) => e.line), [4, 5, 6, 7, 9, 10, 11]);
  assert.match(report.errors[0]!.message, /check digit/);
  assert.match(report.errors[1]!.message, /phone number "abc" is not an international number/);
  assert.match(report.errors[2]!.message, /neither a phone number nor an IMEI/);
  assert.match(report.errors[3]!.message, /quoted field is not closed/);
  assert.match(report.errors[4]!.message, /6 fields, the header has 5/);
  assert.match(report.errors[5]!.message, /model "S-\\x07" .*control characters/);
  assert.match(report.errors[6]!.message, /group "bad\\x01group"/);
  assert.equal(report.created, 2);
  assert.equal(report.failed, 7);
  const globex = (await store.inventory.findByIdentity({ imei: IMEI2 }))!;
  assert.equal(globex.expectedMake, 'Globex, Inc.');
  assert.equal(globex.source, 'imported');
  assert.deepEqual(globex.groups, ['pilot']);
  assert.equal((await store.inventory.ids({ group: 'pilot', make: 'acme' })).length, 1, 'an imported device is found by its expected make');

  const again = await importDeviceCsv(store.inventory, chunks(csv, 64));
  assert.equal(again.created, 0);
  assert.equal(again.updated, 0);
  assert.equal(again.unchanged, 2);
  assert.equal((await store.inventory.history(globex.id)).items.length, 1, 're-import wrote no history');

  // The device shows up over OMA DM: the imported record becomes a seen one.
  const inventory = new Inventory({ repository: store.inventory });
  const seen = (await inventory.recordContact({ protocol: 'omadm', devId: `IMEI:${IMEI2}`, make: 'Globex', model: 'G-2' }))!;
  assert.equal(seen.id, globex.id);
  assert.equal(seen.source, 'seen');
  assert.equal(seen.make, 'Globex');

  await assert.rejects(importDeviceCsv(store.inventory, chunks('name,serial\nx,y\n', 5)), (e: unknown) => e instanceof ImportError && /names no phone/.test(e.message));
  await assert.rejects(importDeviceCsv(store.inventory, chunks('', 5)), /the file is empty/);
  await assert.rejects(importDeviceCsv(store.inventory, Readable.from([Uint8Array.from([0x70, 0x68, 0x6f, 0x6e, 0x65, 0x0a, 0xff, 0xfe, 0x0a])])), /not UTF-8/);
  assert.deepEqual(splitCsvLine('a,"b ""c"", d",'), ['a', 'b "c", d', '']);
});
