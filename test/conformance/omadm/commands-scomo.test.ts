/**
 * Depot's DM server commands and SCOMO against OMA-TS-DM_Protocol-V1_2, OMA-TS-DM_RepPro-V1_2 and
 * OMA-TS-DM-SCOMO-V1_0, each test naming the clause (by section name where the number was not
 * checked against the text). The server side is the real endpoint (plain HTTP in lab mode, real
 * sockets) over a real SQLite store; the client is the simulated phone, written from the specs
 * apart from the server, or hand-written messages straight into the session engine.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OmaDmHttpServer } from '../../../src/omadm/http.js';
import { DmServerSession } from '../../../src/omadm/session.js';
import type { ServerJob, SessionEffect } from '../../../src/omadm/session.js';
import { ScomoService } from '../../../src/omadm/scomo/service.js';
import { endpointHooks } from '../../../src/omadm/scomo/hooks.js';
import { SCOMO_RESULT_CODES, scomoResultAdvice } from '../../../src/omadm/scomo/results.js';
import { AlertCode, StatusCode } from '../../../src/omadm/status-codes.js';
import { decodeSyncML, encodeSyncML } from '../../../src/omadm/syncml.js';
import type { Command, ItemCommand, SyncMLMessage } from '../../../src/omadm/syncml.js';
import { DmPhone, httpTransport, phoneTree } from '../../../src/sim/omadm/phone.js';
import type { DmTransport } from '../../../src/sim/omadm/phone.js';
import { ScomoClient } from '../../../src/sim/omadm/scomo-client.js';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import type { SqliteStore } from '../../../src/store/sqlite.js';

let dir: string;
let store: SqliteStore;
let server: OmaDmHttpServer;
let url: string;
let scomo: ScomoService;
/** Extra jobs for the next session of a device (taken once). */
const extraJobs = new Map<string, ServerJob[]>();
const effects: SessionEffect[] = [];
const PKG_SHA = 'a'.repeat(64);
const pkgBytes = randomBytes(20_000);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-conf-'));
  store = openSqliteStore({ dataDir: dir, secretKey: randomBytes(32) });
  const pkgPath = join(dir, 'pkg.bin');
  writeFileSync(pkgPath, pkgBytes);
  const base: { url?: string } = {};
  scomo = new ScomoService({
    jobs: store.omadmScomo,
    catalog: { get: (sha) => Promise.resolve(sha === PKG_SHA ? { sha256: PKG_SHA, name: 'app', version: '1.0', size: pkgBytes.length } : null), pathOf: () => pkgPath },
    accounts: store.omadmAccounts,
    downloadBase: () => base.url,
  });
  const hooks = endpointHooks({
    jobsFor: (deviceId) => {
      const jobs = extraJobs.get(deviceId) ?? [];
      extraJobs.delete(deviceId);
      return Promise.resolve(jobs);
    },
    onEffect: (e) => {
      effects.push(e);
      return Promise.resolve();
    },
  }, scomo);
  server = new OmaDmHttpServer({ store, host: '127.0.0.1', port: 0, insecureHttp: true, ...hooks });
  const port = await server.listen();
  url = `http://127.0.0.1:${port}/dm`;
  base.url = `http://127.0.0.1:${port}`;
});

after(async () => {
  await server.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
async function newPhone(extra: { maxMsgSize?: number; maxObjSize?: number } = {}, transport: DmTransport = httpTransport()): Promise<DmPhone> {
  const deviceId = `IMEI:35300000000${String(++n).padStart(4, '0')}`;
  await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: 'conformance-pw' }, randomBytes(16), Date.now());
  return new DmPhone({ deviceId, username: deviceId, password: 'conformance-pw', encoding: n % 2 === 0 ? 'xml' : 'wbxml', auth: 'md5', tree: phoneTree(deviceId, n), ...extra }, transport);
}

const resultOf = (jobId: string) => effects.filter((e): e is Extract<SessionEffect, { kind: 'job-result' }> => e.kind === 'job-result' && e.jobId === jobId).at(-1);

test('DM Protocol "Large Object Handling" (server to client): Data larger than the client\'s MaxMsgSize goes in chunks, Size in the first, MoreData on all but the last, 213 for each; every message within MaxMsgSize; reassembled on the phone', async () => {
  const phone = await newPhone({ maxMsgSize: 2048, maxObjSize: 64 * 1024 });
  const big = 'x'.repeat(9000) + 'END';
  extraJobs.set(phone.profile.deviceId, [{ id: 'lo-1', kind: 'Replace', uri: './Vendor/Big', data: big, format: 'chr' }]);
  const report = await phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.equal(phone.get('./Vendor/Big'), big);
  const parts = report.commands.filter((c): c is ItemCommand => c.kind === 'Replace' && c.items[0]?.target?.locUri === './Vendor/Big');
  assert.ok(parts.length >= 5, `split in ${parts.length} chunks`);
  assert.equal(parts[0]!.items[0]!.meta?.size, Buffer.byteLength(big), 'Size of the whole object in the first chunk');
  assert.ok(parts.slice(0, -1).every((p) => p.items[0]!.moreData === true), 'MoreData on every chunk but the last');
  assert.equal(parts.at(-1)!.items[0]!.moreData, undefined);
  assert.ok(parts.slice(1).every((p) => p.items[0]!.meta?.size === undefined), 'Size only in the first chunk');
  assert.equal(resultOf('lo-1')?.code, 200);
});

test('DM Protocol "Large Object Handling": a client that announced no MaxObjSize is not sent a large object: the job is answered 413 and the session goes on', async () => {
  const phone = await newPhone({ maxMsgSize: 2048 });
  extraJobs.set(phone.profile.deviceId, [{ id: 'lo-2', kind: 'Replace', uri: './Vendor/Big', data: 'y'.repeat(9000) }, { id: 'lo-2b', kind: 'Replace', uri: './Vendor/Small', data: 'ok' }]);
  const report = await phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.equal(resultOf('lo-2')?.code, StatusCode.RequestEntityTooLarge);
  assert.equal(resultOf('lo-2b')?.code, 200);
  assert.equal(phone.get('./Vendor/Big'), undefined);
});

/** Hand-written client messages into the engine (no HTTP): the client side of large Results. */
function clientMsg(msgId: number, commands: Command[], final: boolean): SyncMLMessage {
  return { header: { verDTD: '1.2', verProto: 'DM/1.2', sessionId: '7', msgId: String(msgId), target: { locUri: 'depot' }, source: { locUri: 'dev' }, meta: { maxMsgSize: 8192 } }, commands, final };
}

test('DM Protocol "Large Object Handling" (client to server): Results in chunks with MoreData get 213 and Alert 1222 until the last; the job gets the reassembled value; a Size mismatch is 424', () => {
  for (const [label, declared, expectCode] of [['match', 3000, 200], ['mismatch', 2999, StatusCode.SizeMismatch]] as const) {
    // Authentication is not what this test is about: basic over an allowed config keeps it short.
    const basic = new DmServerSession('7', 'dev', [], { serverUri: 'depot', allowBasic: true }, 0);
    const account = { deviceId: 'dev', clientUsername: 'u', clientPassword: 'p', clientNonce: new Uint8Array() };
    const recv = (m: SyncMLMessage) => basic.receive({ message: decodeSyncML(encodeSyncML(m, 'xml'), 'xml'), encoding: 'xml', account, now: 1 });
    const p1 = clientMsg(1, [{ kind: 'Alert', cmdId: '1', code: AlertCode.ClientInitiatedManagement }], true);
    const first = recv({ ...p1, header: { ...p1.header, cred: { meta: { type: 'syncml:auth-basic', format: 'b64' }, data: Buffer.from('u:p').toString('base64') } } });
    basic.addJobs([{ id: `get-${label}`, kind: 'Get', uri: './Vendor/Log' }]);
    // Package 3 answers Depot's facts and brings nothing; Depot then sends the Get.
    const facts = first.reply.commands.filter((c) => c.kind === 'Get');
    const statuses: Command[] = [{ kind: 'Status', cmdId: '1', msgRef: first.reply.header.msgId, cmdRef: '0', cmd: 'SyncHdr', code: 200 }, ...facts.map((c, i): Command => ({ kind: 'Status', cmdId: String(i + 2), msgRef: first.reply.header.msgId, cmdRef: c.cmdId!, cmd: 'Get', code: 404 }))];
    const second = recv(clientMsg(2, statuses, true));
    const get = second.reply.commands.find((c) => c.kind === 'Get')!;
    const ref = second.reply.header.msgId;
    const whole = 'L'.repeat(3000);
    const chunk1: Command[] = [
      { kind: 'Status', cmdId: '1', msgRef: ref, cmdRef: '0', cmd: 'SyncHdr', code: 200 },
      { kind: 'Status', cmdId: '2', msgRef: ref, cmdRef: get.cmdId!, cmd: 'Get', code: 200 },
      { kind: 'Results', cmdId: '3', msgRef: ref, cmdRef: get.cmdId!, items: [{ source: { locUri: './Vendor/Log' }, meta: { size: declared }, data: whole.slice(0, 1000), moreData: true }] },
    ];
    const third = recv(clientMsg(3, chunk1, false));
    assert.deepEqual(third.reply.commands.filter((c) => c.kind === 'Status' && c.cmd === 'Results').map((c) => (c as { code: number }).code), [StatusCode.ChunkedItemAccepted]);
    assert.ok(third.reply.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.NextMessage), 'Alert 1222: send the rest');
    assert.equal(third.effects.filter((e) => e.kind === 'job-result').length, 0, 'no answer before the last chunk');
    const last = recv(clientMsg(4, [
      { kind: 'Status', cmdId: '1', msgRef: third.reply.header.msgId, cmdRef: '0', cmd: 'SyncHdr', code: 200 },
      { kind: 'Results', cmdId: '2', msgRef: ref, cmdRef: get.cmdId!, items: [{ source: { locUri: './Vendor/Log' }, data: whole.slice(1000) }] },
    ], true));
    const result = last.effects.find((e): e is Extract<SessionEffect, { kind: 'job-result' }> => e.kind === 'job-result');
    assert.equal(result?.code, expectCode, label);
    if (expectCode === 200) assert.equal(result?.items[0]?.data, whole);
    assert.deepEqual(last.reply.commands.filter((c) => c.kind === 'Status' && c.cmd === 'Results').map((c) => (c as { code: number }).code), [expectCode === 200 ? 200 : StatusCode.SizeMismatch]);
  }
});

test('RepPro <Sequence>: commands run in order and after a failure the rest are not executed (215); the job carries each command\'s code', async () => {
  const phone = await newPhone();
  extraJobs.set(phone.profile.deviceId, [{
    id: 'seq-1', kind: 'Sequence', uri: '',
    children: [
      { id: 'c1', kind: 'Add', uri: './DevDetail/A', data: '1' },
      { id: 'c2', kind: 'Exec', uri: './Vendor/Missing' },
      { id: 'c3', kind: 'Replace', uri: './Vendor/B', data: '2' },
    ],
  }]);
  const report = await phone.runSession(url);
  assert.equal(report.ended, 'completed');
  assert.ok(report.commands.some((c) => c.kind === 'Sequence' && (c).commands.length === 3));
  const r = resultOf('seq-1');
  assert.equal(r?.code, 200);
  assert.deepEqual(r?.children, [200, 404, StatusCode.NotExecuted]);
  assert.equal(phone.get('./DevDetail/A'), '1');
  assert.equal(phone.get('./Vendor/B'), undefined);
});

test('RepPro <Atomic>: all or nothing: one failure rolls every command back (216 for the executed ones), the Atomic gets 507', async () => {
  const phone = await newPhone();
  extraJobs.set(phone.profile.deviceId, [{
    id: 'atom-1', kind: 'Atomic', uri: '',
    children: [
      { id: 'a1', kind: 'Replace', uri: './DevDetail/FwV', data: 'changed' },
      { id: 'a2', kind: 'Add', uri: './No/Such/Parent/Leaf', data: 'x' },
    ],
  }, {
    id: 'atom-2', kind: 'Atomic', uri: '',
    children: [
      { id: 'b1', kind: 'Add', uri: './Vendor2', format: 'node' },
      { id: 'b2', kind: 'Copy', uri: './Vendor2Copy', sourceUri: './DevInfo/Man' },
      { id: 'b3', kind: 'Delete', uri: './DevDetail/OEM' },
    ],
  }]);
  const before = phone.get('./DevDetail/FwV');
  assert.equal((await phone.runSession(url)).ended, 'completed');
  const failed = resultOf('atom-1');
  assert.equal(failed?.code, StatusCode.AtomicFailed);
  assert.deepEqual(failed?.children, [StatusCode.AtomicRollBackOk, 404]);
  assert.equal(phone.get('./DevDetail/FwV'), before, 'rolled back');
  const ok = resultOf('atom-2');
  assert.equal(ok?.code, 200);
  assert.deepEqual(ok?.children, [200, StatusCode.ItemAdded, 200]);
  assert.equal(phone.get('./Vendor2Copy'), phone.get('./DevInfo/Man'));
  assert.equal(phone.get('./DevDetail/OEM'), undefined);
});

test('DM Protocol "User Interaction Commands": Alerts 1100-1104 from the server; the answers (Status, its Items) reach the job', async () => {
  const phone = await newPhone();
  extraJobs.set(phone.profile.deviceId, [
    { id: 'ui-1100', kind: 'Alert', uri: '', alertCode: AlertCode.Display, items: [{ data: 'MINDT=5' }, { data: 'Depot will update Maps tonight' }] },
    { id: 'ui-1101', kind: 'Alert', uri: '', alertCode: AlertCode.ContinueOrAbort, items: [{ data: '' }, { data: 'Install now?' }] },
    { id: 'ui-1102', kind: 'Alert', uri: '', alertCode: AlertCode.TextInput, items: [{ data: 'MAXLEN=10' }, { data: 'Type yes' }] },
    { id: 'ui-1103', kind: 'Alert', uri: '', alertCode: AlertCode.SingleChoice, items: [{ data: '' }, { data: 'When?' }, { data: 'Now' }, { data: 'Tonight' }] },
  ]);
  assert.equal((await phone.runSession(url)).ended, 'completed');
  assert.equal(resultOf('ui-1100')?.code, 200);
  assert.equal(resultOf('ui-1101')?.code, 200);
  assert.equal(resultOf('ui-1102')?.items[0]?.data, 'yes');
  assert.equal(resultOf('ui-1103')?.items[0]?.data, '1');
});

test('DM Protocol "Session initiation": Alert 1200 (server-initiated, after a notification) opens a session like 1201', async () => {
  const phone = await newPhone();
  const report = await phone.runSession(url, { serverInitiated: true });
  assert.equal(report.ended, 'completed');
  assert.equal(report.authenticated, true);
});

const alertEffect = (deviceId: string, correlator: string | undefined, data: string, type = 'org.openmobilealliance.softwarecomponent.OperationComplete'): SessionEffect => ({
  kind: 'generic-alert', deviceId, ...(correlator === undefined ? {} : { correlator }), items: [{ source: { locUri: './SCOMO/Download/x/Operations/DownloadInstall' }, meta: { type, format: 'chr' }, data }],
});

test('DM Protocol "Generic Alert" / SCOMO "Alert": the result is matched by Correlator, only for the device that owns the job; unknown correlators, other types and repeats change nothing', async () => {
  const a = await newPhone();
  const b = await newPhone();
  const job = await scomo.create({ deviceId: a.profile.deviceId, operation: 'Download', packageSha256: PKG_SHA });
  await store.omadmScomo.transition(job.id, ['queued'], { state: 'executing', root: './SCOMO' }, Date.now());
  await scomo.onEffect(alertEffect(b.profile.deviceId, job.correlator, '1200'));
  assert.equal((await scomo.get(job.id))?.state, 'executing', 'another device cannot finish the job');
  await scomo.onEffect(alertEffect(a.profile.deviceId, 'depot-unknown', '1200'));
  await scomo.onEffect(alertEffect(a.profile.deviceId, job.correlator, '1200', 'org.example.other'));
  await scomo.onEffect(alertEffect(a.profile.deviceId, undefined, '1200'));
  assert.equal((await scomo.get(job.id))?.state, 'executing');
  await scomo.onEffect(alertEffect(a.profile.deviceId, job.correlator, '<ResultCode>1402</ResultCode>'));
  const failed = await scomo.get(job.id);
  assert.deepEqual([failed?.state, failed?.resultCode, failed?.resultName, failed?.retry], ['failed', 1402, 'DOWNLOAD_FAILED', 'retry-resume']);
  await scomo.onEffect(alertEffect(a.profile.deviceId, job.correlator, '1200'));
  assert.equal((await scomo.get(job.id))?.state, 'failed', 'a repeated or late alert does not reopen the job');
});

test('SCOMO "Result Codes": every code has an operator message and retry advice; vendor ranges are classified', () => {
  for (const code of SCOMO_RESULT_CODES) {
    const a = scomoResultAdvice(code);
    assert.ok(a.message.length > 20, `${code} has a message`);
    assert.equal(a.retry === null, code === 1200, `${code}: only success has no retry advice`);
  }
  assert.equal(scomoResultAdvice(1260).retry, null);
  assert.equal(scomoResultAdvice(1460).name, 'CLIENT_ERROR_VENDOR');
  assert.equal(scomoResultAdvice(1560).retry, 'retry-resume');
  assert.equal(scomoResultAdvice(1999).name, 'UNKNOWN_RESULT');
});

/** A transport that loses one exchange: `dropReply` loses the server's answer, `dropRequest` the phone's message. */
function lossy(pred: { dropReply?: (body: Buffer) => boolean; dropRequest?: (body: Uint8Array) => boolean }): DmTransport {
  const t = httpTransport();
  let spent = false;
  return {
    async post(u, body, headers) {
      if (!spent && pred.dropRequest?.(body) === true) {
        spent = true;
        throw new Error('connection lost (request)');
      }
      const res = await t.post(u, body, headers);
      if (!spent && pred.dropReply?.(res.body) === true) {
        spent = true;
        throw new Error('connection lost (reply)');
      }
      return res;
    },
  };
}

const carries = (text: string) => (body: Uint8Array) => Buffer.from(body).includes(text);

test('SCOMO durability: the reply with the Exec lost on the way (the phone never got it): the next session asks (Get .../PkgID: 404) and sends it again; installed once', async () => {
  const phone = await newPhone({}, lossy({ dropReply: carries('DownloadInstall') }));
  const client = new ScomoClient(phone);
  const job = await scomo.create({ deviceId: phone.profile.deviceId, operation: 'DownloadInstall', packageSha256: PKG_SHA });
  await assert.rejects(phone.runSession(url), /connection lost/);
  assert.equal((await scomo.get(job.id))?.state, 'sent', 'written as sent before the reply left');
  assert.equal(client.installs, 0);
  const second = await phone.runSession(url);
  assert.ok(second.commands.some((c) => c.kind === 'Get' && c.items[0]?.target?.locUri.endsWith('/PkgID')), 'the probe');
  await client.idle();
  await phone.runSession(url);
  const done = await scomo.get(job.id);
  assert.equal(done?.state, 'succeeded', JSON.stringify(done));
  assert.equal(done?.sends, 2);
  assert.equal(client.installs, 1);
});

test('SCOMO durability: the phone ran the Exec but its answer was lost: the next session finds the Download node (200) and waits for the alert; the Exec is not sent again; installed once', async () => {
  // The phone's message carrying its Status 202 for the Exec is lost: the server never learns the outcome.
  const phone = await newPhone({}, lossy({ dropRequest: carries('Exec') }));
  const client = new ScomoClient(phone);
  const job = await scomo.create({ deviceId: phone.profile.deviceId, operation: 'DownloadInstall', packageSha256: PKG_SHA });
  await assert.rejects(phone.runSession(url), /connection lost/);
  await client.idle();
  const mid = await scomo.get(job.id);
  assert.ok(mid?.state === 'sent' || mid?.state === 'executing', mid?.state);
  for (let i = 0; i < 3 && (await scomo.get(job.id))?.state !== 'succeeded'; i++) {
    await phone.runSession(url);
    await client.idle();
  }
  const done = await scomo.get(job.id);
  assert.equal(done?.state, 'succeeded', JSON.stringify(done));
  assert.equal(done?.sends, 1, 'the Exec went out once');
  assert.equal(client.installs, 1);
});

test('SCOMO: a job the device has but never reports on fails NO_RESULT after the result deadline, with retry advice (checked whenever it is read)', async () => {
  let now = Date.now();
  const timed = new ScomoService({
    jobs: store.omadmScomo,
    catalog: { get: () => Promise.resolve({ sha256: PKG_SHA, name: 'app', version: '1.0', size: 1 }), pathOf: () => '/nonexistent' },
    accounts: store.omadmAccounts,
    downloadBase: () => 'https://depot.test',
    now: () => now,
    resultTimeoutMs: 60_000,
  });
  const phone = await newPhone();
  const job = await timed.create({ deviceId: phone.profile.deviceId, operation: 'DownloadInstall', packageSha256: PKG_SHA });
  await store.omadmScomo.transition(job.id, ['queued'], { state: 'executing' }, now);
  assert.equal((await timed.get(job.id))?.state, 'executing');
  now += 61_000;
  const failed = await timed.get(job.id);
  assert.deepEqual([failed?.state, failed?.resultName, failed?.retry], ['failed', 'NO_RESULT', 'retry']);
  assert.match(failed?.message ?? '', /no result within 1 min of getting the operation/);
});
