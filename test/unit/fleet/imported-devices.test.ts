/**
 * Devices Depot knows only from an imported list (issue 16): their jobs are addressed
 * `device:<Depot id>`; the SMS link method finds their number in the inventory, and Mark for
 * Installation hands them to the protocol they first show up on (the inventory joins that
 * identity to the record). Real SQLite store and inventory; a fake handover method.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ChainDriver } from '../../../src/fleet/chain-driver.js';
import { Inventory } from '../../../src/fleet/inventory.js';
import { importDeviceCsv } from '../../../src/fleet/inventory-import.js';
import { MarkMethod } from '../../../src/fleet/methods/mark.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodStep } from '../../../src/fleet/methods/method.js';
import { inventoryResolver, ResolvedEndpointMethod } from '../../../src/fleet/methods/resolve.js';
import { StorePhoneDirectory } from '../../../src/fleet/methods/sms-link.js';
import { openSqliteStore } from '../../../src/store/index.js';

const SHA = 'c'.repeat(64);
// 15-digit IMEIs with their Luhn check digit.
const IMEI_A = '490154203237518';
const IMEI_B = '356938035643809';

/** Stands for Object 9: can try only a registered LwM2M endpoint (here: one starting with urn:imei:). */
class FakeObject9 implements InstallMethod {
  readonly name = 'object9';
  readonly targets: string[] = [];
  preflight(target: InstallTarget): Promise<string | undefined> {
    return Promise.resolve(target.endpoint.startsWith('urn:imei:') ? undefined : 'the device is not registered over LwM2M');
  }
  begin(context: AttemptContext): Promise<MethodStep> {
    this.targets.push(context.target.endpoint);
    return Promise.resolve({ status: 'running', state: { at: context.target.endpoint }, message: 'Downloading.' });
  }
  advance(context: AttemptContext): Promise<MethodStep> {
    this.targets.push(context.target.endpoint);
    return Promise.resolve({ status: 'succeeded', message: `Installed on ${context.target.endpoint}.` });
  }
  cancel(): Promise<void> {
    return Promise.resolve();
  }
}

void test('imported devices: the phone directory reads the inventory for device:<id>, omadm:<DevId> and LwM2M addresses; the mark hands over at the first contact, to the address the protocol knows', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'depot-imported-'));
  const store = openSqliteStore({ dataDir });
  try {
    const report = await importDeviceCsv(store.inventory, Readable.from([`phone,imei,make,model,group\n+46 70 111 22 33,${IMEI_A},Acme,T-1,g\n,${IMEI_B},Acme,T-1,g\n`]));
    assert.equal(report.created, 2);
    const [a, b] = await store.inventory.getMany(await store.inventory.ids({ group: 'g' }));
    const withPhone = a!.msisdn ? a! : b!;
    const without = a!.msisdn ? b! : a!;

    const directory = new StorePhoneDirectory({ numbers: store.sms.numbers, deviceFacts: store.deviceFacts, registrations: store.registrations, inventory: store.inventory });
    assert.equal(await directory.numberOf(`device:${withPhone.id}`), '+46701112233');
    assert.equal(await directory.numberOf(`device:${without.id}`), null);
    assert.equal(await directory.numberOf('device:dev_unknown'), null);
    // Seen over OMA DM (its DevId holds the IMEI) and over LwM2M: the same record's number.
    const inventory = new Inventory({ repository: store.inventory });
    await inventory.recordContact({ protocol: 'omadm', devId: `IMEI:${IMEI_A}` });
    assert.equal(await directory.numberOf(`omadm:IMEI:${IMEI_A}`), '+46701112233');
    assert.equal(await directory.numberOf('omadm:IMEI:000000000000000'), null);
    // Without the inventory source, nothing is known of an imported device.
    assert.equal(await new StorePhoneDirectory({ numbers: store.sms.numbers, deviceFacts: store.deviceFacts }).numberOf(`device:${withPhone.id}`), null);

    // The device without a number is marked; it shows up over LwM2M as urn:imei:<IMEI>.
    const resolve = inventoryResolver(store.inventory);
    assert.equal(await resolve(`device:${without.id}`), `device:${without.id}`, 'no protocol knows it yet');
    assert.equal(await resolve('urn:imei:1'), 'urn:imei:1');
    const object9 = new FakeObject9();
    const chain = new ChainDriver({ store, methods: [object9, new MarkMethod({ handover: new ResolvedEndpointMethod(object9, resolve) })], tickMs: 0, onError: (e) => assert.fail(e) });
    const job = await chain.install(`device:${without.id}`, SHA);
    await chain.contact(`device:${without.id}`);
    let view = (await chain.view(job.id))!;
    assert.deepEqual(view.attempts.map((x) => [x.method, x.outcome]), [['object9', 'skipped'], ['mark', 'running']]);
    assert.match(view.attempts[1]!.message ?? '', /object9 cannot try: the device is not registered over LwM2M; still marked/);
    const seen = await inventory.recordContact({ protocol: 'lwm2m', endpoint: `urn:imei:${IMEI_B}` });
    assert.equal(seen?.id, without.id, 'joined to the imported record by the IMEI in the endpoint name');
    assert.equal(await resolve(`device:${without.id}`), `urn:imei:${IMEI_B}`);
    await chain.contact(`device:${without.id}`, 'lwm2m');
    await chain.contact(`device:${without.id}`, 'lwm2m');
    view = (await chain.view(job.id))!;
    assert.equal(view.job.state, 'succeeded', JSON.stringify(view));
    assert.deepEqual(object9.targets, [`urn:imei:${IMEI_B}`, `urn:imei:${IMEI_B}`]);
    assert.match(view.job.message ?? '', /Installed by mark: Installed \(marked since .*, at its next contact by object9\): Installed on urn:imei:/);
    await chain.close();
  } finally {
    store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
