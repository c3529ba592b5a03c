/**
 * What Depot takes from a device's SCOMO answers (untrusted strings): the result code and the
 * component's node name from a Generic Alert (SCOMO 1.0 "Alert"), the SCOMO root from a
 * `?list=Struct` answer. Anything that is not a plain node name or path is ignored.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { parseScomoAlert, scomoRootIn } from '../../../src/omadm/scomo/service.js';

test('Generic Alert data: a bare code, <ResultCode> with <Identifier>, the component from the Source URI; hostile identifiers dropped', () => {
  assert.deepEqual(parseScomoAlert({ data: '1200' }), { code: 1200 });
  assert.deepEqual(parseScomoAlert({ data: ' 1405 ' }), { code: 1405 });
  assert.deepEqual(parseScomoAlert({ data: '<ResultCode>1200</ResultCode><Identifier>maps-3.1</Identifier>' }), { code: 1200, identifier: 'maps-3.1' });
  assert.deepEqual(parseScomoAlert({ source: { locUri: './SCOMO/Inventory/Deployed/app_1' }, data: '1200' }), { code: 1200, identifier: 'app_1' });
  assert.deepEqual(parseScomoAlert({ data: '<ResultCode>1200</ResultCode><Identifier>../../DevInfo?list=Struct</Identifier>' }), { code: 1200 });
  assert.deepEqual(parseScomoAlert({ data: '<ResultCode>1200</ResultCode><Identifier>..</Identifier>' }), { code: 1200 });
  assert.equal(parseScomoAlert({ data: 'installed fine' }), undefined);
  assert.equal(parseScomoAlert({ data: '123456' }), undefined);
  assert.equal(parseScomoAlert({}), undefined);
});

test('the SCOMO root in a ?list=Struct answer: the shortest plain path ending in /SCOMO', () => {
  const items = ['./DevInfo', './Vendor/Acme/SCOMO/Download', './Vendor/Acme/SCOMO', './Vendor/SCOMOx'].map((u) => ({ source: { locUri: u } }));
  assert.equal(scomoRootIn(items), './Vendor/Acme/SCOMO');
  assert.equal(scomoRootIn([{ source: { locUri: './a/../SCOMO' } }, { source: { locUri: './x?list=Struct/SCOMO' } }, { source: { locUri: `./${'a'.repeat(300)}/SCOMO` } }]), undefined);
  assert.equal(scomoRootIn([]), undefined);
});
