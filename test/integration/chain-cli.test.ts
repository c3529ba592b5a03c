/**
 * `depot chain` against a real Depot's API (loopback, SQLite): create a job for a device Depot
 * knows only by its facts (marked), show it, list the device's history, cancel it; pin, forbid
 * and unpin a method for a model, and the learned table; usage errors exit 2, API refusals 1.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { runChainCommand, type ChainCommandIo } from '../../src/cli/chain.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';
import { startApiTestServer } from '../support/api-server.js';

const TOKEN = 'token-chain-cli-0123';

function io(): ChainCommandIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => out.push(t), stderr: (t) => err.push(t), fetch: (...args) => fetch(...args) };
}

void test('depot chain: create, show, list, cancel; pin, forbid, unpin and the methods table; usage and API errors', async () => {
  const t = await startApiTestServer('chain-cli', TOKEN);
  try {
    const api = ['--api', `http://127.0.0.1:${t.port}`, '--token', TOKEN];
    const record = await t.server.catalog.addBytes(makePackage({ name: 'tool', version: '1.2.3' }));
    await t.server.store.deviceFacts.upsert('field-7', { manufacturer: 'Acme', modelNumber: 'Phone 3' }, Date.now());

    const create = io();
    assert.equal(await runChainCommand(['create', 'field-7', record.sha256, ...api, '--json'], create), 0, create.err.join(''));
    const job = JSON.parse(create.out.join('')) as { id: string; attempts: { method: string; outcome: string }[] };
    assert.deepEqual(job.attempts.map((a) => [a.method, a.outcome]), [['object9', 'skipped'], ['scomo', 'skipped'], ['mark', 'running']]);

    const show = io();
    assert.equal(await runChainCommand(['show', job.id, ...api], show), 0);
    const text = show.out.join('');
    assert.match(text, new RegExp(`^job ${job.id} on field-7: running — mark: Marked for installation since `));
    assert.match(text, /chain object9 → scomo → mark \(default: nothing learned yet for Acme Phone 3: default order\)/);
    assert.match(text, / 1\. object9 +skipped .*\n +the device is not registered over LwM2M\n/);
    assert.match(text, / 3\. mark +running /);

    const cancel = io();
    assert.equal(await runChainCommand(['cancel', job.id, ...api], cancel), 0);
    assert.match(cancel.out.join(''), /: cancelled — Cancelled by the operator\./);
    const again = io();
    assert.equal(await runChainCommand(['cancel', job.id, ...api], again), 1);
    assert.match(again.err.join(''), /409 CONFLICT: install job .* already ended \(cancelled\)/);

    const list = io();
    assert.equal(await runChainCommand(['list', 'field-7', ...api], list), 0);
    assert.match(list.out.join(''), new RegExp(`^job ${job.id} on field-7: cancelled`));

    const pin = io();
    assert.equal(await runChainCommand(['pin', 'Acme', 'Phone 3', 'mark', ...api], pin), 0, pin.err.join(''));
    assert.equal(pin.out.join(''), 'pinned: mark on Acme Phone 3\n');
    assert.equal(await runChainCommand(['forbid', 'Acme', 'Phone 3', 'object9', ...api], io()), 0);
    const table = io();
    assert.equal(await runChainCommand(['methods', '--make', 'Acme', '--model', 'Phone 3', ...api], table), 0);
    assert.match(table.out.join(''), /^methods: object9, scomo, mark\n/);
    assert.match(table.out.join(''), /nothing learned yet\n\nrules:\n {2}pin {4}mark on Acme Phone 3\n {2}forbid object9 on Acme Phone 3\n$/);

    // The next job follows the rules: object9 skipped as forbidden, mark first.
    const second = io();
    assert.equal(await runChainCommand(['create', 'field-7', record.sha256, ...api], second), 0);
    assert.match(second.out.join(''), /chain object9 → mark → scomo \(learned: .*mark pinned by the operator\)/);
    assert.match(second.out.join(''), /forbidden on Acme Phone 3 by the operator/);

    const unpin = io();
    assert.equal(await runChainCommand(['unpin', 'Acme', 'Phone 3', 'object9', ...api], unpin), 0);
    assert.equal(await runChainCommand(['unpin', 'Acme', 'Phone 3', 'object9', ...api], io()), 1, 'no rule left: 404');

    const usage = io();
    assert.equal(await runChainCommand(['create', 'field-7', ...api], usage), 2);
    assert.match(usage.err.join(''), /create takes a device and a package SHA-256/);
    assert.equal(await runChainCommand(['frobnicate', ...api], io()), 2);
    assert.equal(await runChainCommand(['create', 'field-7', record.sha256, '--methods', 'object9,teleport', ...api], io()), 1);
    const help = io();
    assert.equal(await runChainCommand(['--help'], help), 0);
    assert.match(help.out.join(''), /^usage: depot chain <command>/);
  } finally {
    await t.close();
  }
});
