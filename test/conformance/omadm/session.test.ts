/**
 * The DM server session (src/omadm/session.ts) against OMA-TS-DM_Protocol-V1_2 and
 * OMA-TS-DM_Security-V1_2, clause by clause, with hand-written client messages (no simulator):
 * each test names the clause it checks. Clause numbers that were not checked against the spec
 * text are cited by section name.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { AuthType, hmacMac, md5Credential } from '../../../src/omadm/auth.js';
import { DmServerSession, FACT_URIS, nonceFromChallenge } from '../../../src/omadm/session.js';
import type { DmAccount, ReceiveInput, ServerJob, SessionEffect } from '../../../src/omadm/session.js';
import { AlertCode, StatusCode } from '../../../src/omadm/status-codes.js';
import { decodeSyncML, encodeSyncML } from '../../../src/omadm/syncml.js';
import type { Command, StatusCommand, SyncMLEncoding, SyncMLMessage } from '../../../src/omadm/syncml.js';

const DEV = 'IMEI:490154203237518';
const USER = 'dev-user';
const PASS = 'dev-secret';

function account(nonce: Uint8Array): DmAccount {
  return { deviceId: DEV, clientUsername: USER, clientPassword: PASS, clientNonce: nonce };
}

let nonceCounter = 0;
/** Deterministic, distinct nonces, so rotation is visible. */
const nonces = (): Uint8Array => Buffer.from(`nonce-${++nonceCounter}`);

function session(jobs: readonly ServerJob[] = [], extra: Partial<ConstructorParameters<typeof DmServerSession>[3]> = {}): DmServerSession {
  return new DmServerSession('1A', DEV, jobs, { serverUri: 'https://depot.test/dm', nonce: nonces, ...extra }, 0);
}

function message(msgId: number, commands: Command[], opts: { final?: boolean; cred?: string; credType?: string; maxMsgSize?: number } = {}): SyncMLMessage {
  return {
    header: {
      verDTD: '1.2', verProto: 'DM/1.2', sessionId: '1A', msgId: String(msgId),
      target: { locUri: 'https://depot.test/dm' }, source: { locUri: DEV },
      ...(opts.cred === undefined ? {} : { cred: { meta: { type: opts.credType ?? AuthType.Md5, format: 'b64' }, data: opts.cred } }),
      ...(opts.maxMsgSize === undefined ? {} : { meta: { maxMsgSize: opts.maxMsgSize } }),
    },
    commands,
    final: opts.final ?? true,
  };
}

const devInfo = (man = 'Acme', mod = 'Phone 1'): Command => ({
  kind: 'Replace', cmdId: '2',
  items: [{ source: { locUri: './DevInfo/Man' }, data: man }, { source: { locUri: './DevInfo/Mod' }, data: mod }, { source: { locUri: './DevInfo/DevId' }, data: DEV }],
});
const package1 = (): Command[] => [{ kind: 'Alert', cmdId: '1', code: AlertCode.ClientInitiatedManagement }, devInfo()];

function input(msg: SyncMLMessage, acct: DmAccount | undefined, more: Partial<ReceiveInput> = {}): ReceiveInput {
  // Every message goes through the real codec first, so the engine sees what a device's bytes decode to.
  const encoding: SyncMLEncoding = more.encoding ?? 'xml';
  return { message: decodeSyncML(encodeSyncML(msg, encoding), encoding), encoding, account: acct, now: 1000, ...more };
}

function hdrStatus(reply: SyncMLMessage): StatusCommand {
  const s = reply.commands.find((c): c is StatusCommand => c.kind === 'Status' && c.cmd === 'SyncHdr');
  assert.ok(s, 'the reply has a Status for SyncHdr');
  return s;
}

function effectsOf<K extends SessionEffect['kind']>(effects: readonly SessionEffect[], kind: K): Extract<SessionEffect, { kind: K }>[] {
  return effects.filter((e): e is Extract<SessionEffect, { kind: K }> => e.kind === kind);
}

/** A client that answers every Get in `reply` with Results and Status 200 from `tree`. */
function answer(reply: SyncMLMessage, msgId: number, tree: Record<string, string>, final = true): SyncMLMessage {
  const commands: Command[] = [{ kind: 'Status', cmdId: '1', msgRef: reply.header.msgId, cmdRef: '0', cmd: 'SyncHdr', code: 200 }];
  let id = 2;
  for (const c of reply.commands) {
    if (c.kind === 'Get') {
      const uri = c.items[0]!.target!.locUri;
      const value = tree[uri];
      commands.push({ kind: 'Status', cmdId: String(id++), msgRef: reply.header.msgId, cmdRef: c.cmdId, cmd: 'Get', code: value === undefined ? 404 : 200 });
      if (value !== undefined) commands.push({ kind: 'Results', cmdId: String(id++), msgRef: reply.header.msgId, cmdRef: c.cmdId, items: [{ source: { locUri: uri }, data: value }] });
    } else if (c.kind === 'Replace' || c.kind === 'Exec') {
      commands.push({ kind: 'Status', cmdId: String(id++), msgRef: reply.header.msgId, cmdRef: c.cmdId, cmd: c.kind, code: 200 });
    }
  }
  if (!reply.final) commands.push({ kind: 'Alert', cmdId: String(id), code: AlertCode.NextMessage });
  return message(msgId, commands, { final });
}

const TREE: Record<string, string> = {
  './DevInfo/DevId': DEV, './DevInfo/Man': 'Acme', './DevInfo/Mod': 'Phone 1', './DevInfo/DmV': '1.2', './DevInfo/Lang': 'en-US',
  './DevDetail/DevTyp': 'phone', './DevDetail/OEM': 'Acme OEM', './DevDetail/FwV': 'fw-9', './DevDetail/SwV': 'Android 4.4', './DevDetail/HwV': 'rev B',
};

test('Security "syncml:auth-md5" / Protocol "Authentication": no Cred gets 407 with a Chal; a wrong digest 401 with a fresh Chal; the right digest 212 and a new NextNonce', () => {
  const s = session();
  const first = s.receive(input(message(1, package1()), account(Buffer.from('old'))));
  const c1 = hdrStatus(first.reply);
  assert.equal(c1.code, StatusCode.MissingCredentials);
  assert.equal(c1.chal?.meta.type, AuthType.Md5);
  assert.equal(c1.chal?.meta.format, 'b64');
  const n1 = nonceFromChallenge(c1.chal.meta.nextNonce!);
  assert.equal(first.ended, false);
  assert.deepEqual(effectsOf(first.effects, 'client-nonce').map((e) => Buffer.from(e.nonce).toString()), [Buffer.from(n1).toString()]);
  // The refused message's commands were not processed: no Status for them, no facts.
  assert.equal(first.reply.commands.length, 1);
  assert.equal(effectsOf(first.effects, 'facts').length, 0);

  const wrong = s.receive(input(message(2, package1(), { cred: md5Credential(USER, 'guess', n1) }), account(n1)));
  const c2 = hdrStatus(wrong.reply);
  assert.equal(c2.code, StatusCode.InvalidCredentials);
  const n2 = nonceFromChallenge(c2.chal!.meta.nextNonce!);
  assert.notDeepEqual(n2, n1, 'each refusal carries a fresh nonce');

  const right = s.receive(input(message(3, package1(), { cred: md5Credential(USER, PASS, n2) }), account(n2)));
  const c3 = hdrStatus(right.reply);
  assert.equal(c3.code, StatusCode.AuthenticationAccepted);
  const n3 = nonceFromChallenge(c3.chal!.meta.nextNonce!);
  assert.notDeepEqual(n3, n2, 'the nonce is rotated once used');
  assert.deepEqual(effectsOf(right.effects, 'client-nonce').map((e) => Buffer.from(e.nonce).toString()), [Buffer.from(n3).toString()]);
  assert.equal(effectsOf(right.effects, 'authenticated').length, 1);
  // Package 1's DevInfo, now that the device is known, is a fact.
  assert.deepEqual(effectsOf(right.effects, 'facts')[0]!.facts, { './DevInfo/Man': 'Acme', './DevInfo/Mod': 'Phone 1', './DevInfo/DevId': DEV });
});

test('Security "syncml:auth-md5": a digest over a nonce already used (a replay of the last session) is refused', () => {
  const used = Buffer.from('used-nonce');
  const s1 = session();
  const ok = s1.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, used) }), account(used)));
  assert.equal(hdrStatus(ok.reply).code, StatusCode.AuthenticationAccepted);
  const rotated = effectsOf(ok.effects, 'client-nonce')[0]!.nonce;
  // Next session: the store now holds the rotated nonce; the same captured digest no longer opens it.
  const s2 = session();
  const replay = s2.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, used) }), account(rotated)));
  assert.equal(hdrStatus(replay.reply).code, StatusCode.InvalidCredentials);
  assert.equal(effectsOf(replay.effects, 'auth-failed').length, 1);
});

test('Security: an unknown device gets the same answer as a wrong password (401 with a Chal), and nothing is stored for it', () => {
  const unknown = session().receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, Buffer.from('x')) }), undefined));
  const known = session().receive(input(message(1, package1(), { cred: md5Credential(USER, 'nope', Buffer.from('x')) }), account(Buffer.from('x'))));
  const a = hdrStatus(unknown.reply);
  const b = hdrStatus(known.reply);
  assert.equal(a.code, b.code);
  assert.deepEqual(Object.keys(a.chal!.meta).sort(), Object.keys(b.chal!.meta).sort());
  assert.equal(nonceFromChallenge(a.chal!.meta.nextNonce!).length, nonceFromChallenge(b.chal!.meta.nextNonce!).length);
  assert.equal(effectsOf(unknown.effects, 'client-nonce').length, 0);
});

test('Security: syncml:auth-basic is refused unless configured, accepted when it is', () => {
  const cred = Buffer.from(`${USER}:${PASS}`).toString('base64');
  const refused = session().receive(input(message(1, package1(), { cred, credType: AuthType.Basic }), account(Buffer.from('n'))));
  assert.equal(hdrStatus(refused.reply).code, StatusCode.InvalidCredentials);
  const allowed = session([], { allowBasic: true }).receive(input(message(1, package1(), { cred, credType: AuthType.Basic }), account(Buffer.from('n'))));
  assert.equal(hdrStatus(allowed.reply).code, StatusCode.AuthenticationAccepted);
});

test('Security "x-syncml-hmac": a MAC over the body with the current nonce authenticates each message; a MAC over other bytes is 401', () => {
  const s = session();
  const nonce = Buffer.from('hmac-nonce');
  const msg = message(1, package1());
  const body = encodeSyncML(msg, 'wbxml');
  const header = { algorithm: 'MD5' as const, username: USER, mac: hmacMac(USER, PASS, nonce, body) };
  const tampered = session().receive({ ...input(msg, account(nonce), { encoding: 'wbxml' }), hmac: { header, body: Buffer.concat([body, Buffer.of(0)]) } });
  assert.equal(hdrStatus(tampered.reply).code, StatusCode.InvalidCredentials);
  const ok = s.receive({ ...input(msg, account(nonce), { encoding: 'wbxml' }), hmac: { header, body } });
  const st = hdrStatus(ok.reply);
  assert.equal(st.code, StatusCode.AuthenticationAccepted);
  assert.equal(st.chal?.meta.type, AuthType.Hmac);
  // The next message of the session must carry a MAC again, over the nonce just issued.
  const next = nonceFromChallenge(st.chal.meta.nextNonce!);
  const msg2 = answer(ok.reply, 2, TREE);
  const body2 = encodeSyncML(msg2, 'wbxml');
  const ok2 = s.receive({ ...input(msg2, account(next), { encoding: 'wbxml' }), hmac: { header: { ...header, mac: hmacMac(USER, PASS, next, body2) }, body: body2 } });
  assert.equal(hdrStatus(ok2.reply).code, StatusCode.Ok);
});

test('Protocol "Package 2": Status for SyncHdr and each command with MsgRef/CmdRef, Gets of every DevInfo/DevDetail leaf; Package 3 answers become facts; a package of only Status ends the session', () => {
  const nonce = Buffer.from('n0');
  const s = session();
  const p2 = s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  assert.equal(p2.reply.header.sessionId, '1A');
  assert.equal(p2.reply.header.msgId, '1');
  assert.equal(p2.reply.header.target.locUri, DEV);
  const statuses = p2.reply.commands.filter((c): c is StatusCommand => c.kind === 'Status');
  assert.deepEqual(statuses.map((x) => [x.msgRef, x.cmdRef, x.cmd, x.code]), [['1', '0', 'SyncHdr', 212], ['1', '1', 'Alert', 200], ['1', '2', 'Replace', 200]]);
  const gets = p2.reply.commands.filter((c) => c.kind === 'Get');
  assert.deepEqual(gets.map((g) => (g.kind === 'Get' ? g.items[0]!.target!.locUri : '')), [...FACT_URIS]);
  const ids = p2.reply.commands.map((c) => c.cmdId);
  assert.equal(new Set(ids).size, ids.length, 'CmdIDs are unique in the message');
  assert.equal(p2.reply.final, true);

  const p4 = s.receive(input(answer(p2.reply, 2, TREE), undefined));
  const facts = effectsOf(p4.effects, 'facts')[0]!.facts;
  assert.equal(facts['./DevDetail/SwV'], 'Android 4.4');
  assert.equal(facts['./DevInfo/Lang'], 'en-US');
  assert.equal(facts['./DevDetail/LrgObj'], undefined, 'a 404 leaf is no fact');
  assert.equal(p4.reply.commands.every((c) => c.kind === 'Status'), true);
  assert.equal(p4.reply.final, true);
  assert.equal(p4.ended, true);
  assert.deepEqual(effectsOf(p4.effects, 'session-ended').map((e) => e.reason), ['completed']);
});

test('Protocol "Package 3": operator jobs run after the facts and report their Status and Results; a job without a Status is reported failed', () => {
  const nonce = Buffer.from('n0');
  const jobs: ServerJob[] = [
    { id: 'j-get', kind: 'Get', uri: './Vendor/Color' },
    { id: 'j-rep', kind: 'Replace', uri: './Vendor/Color', data: 'blue', format: 'chr' },
    { id: 'j-lost', kind: 'Exec', uri: './Vendor/Reboot' },
  ];
  const s = session(jobs);
  const p2 = s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  const rep = p2.reply.commands.find((c) => c.kind === 'Replace');
  assert.equal(rep?.kind === 'Replace' ? rep.items[0]!.data : undefined, 'blue');
  // The device answers all but the Exec.
  const withoutExec: SyncMLMessage = { ...p2.reply, commands: p2.reply.commands.filter((c) => c.kind !== 'Exec') };
  const p4 = s.receive(input(answer(withoutExec, 2, { ...TREE, './Vendor/Color': 'red' }), undefined));
  const results = new Map(effectsOf(p4.effects, 'job-result').map((r) => [r.jobId, r]));
  assert.equal(results.get('j-get')?.code, 200);
  assert.equal(results.get('j-get')?.items[0]?.data, 'red');
  assert.equal(results.get('j-rep')?.code, 200);
  assert.equal(results.get('j-lost')?.code, null);
});

test('jobs given after authentication (addJobs) go out in Depot\'s next package; an ended session takes none', () => {
  const nonce = Buffer.from('n0');
  const s = session();
  const p2 = s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  assert.equal(p2.reply.commands.some((c) => c.kind === 'Exec'), false);
  assert.equal(s.addJobs([{ id: 'late', kind: 'Exec', uri: './Vendor/Reboot' }]), true);
  const p4 = s.receive(input(answer(p2.reply, 2, TREE), undefined));
  assert.equal(p4.ended, false);
  const exec = p4.reply.commands.find((c) => c.kind === 'Exec');
  assert.ok(exec);
  const done = s.receive(input(message(3, [{ kind: 'Status', cmdId: '1', msgRef: p4.reply.header.msgId, cmdRef: String(exec.cmdId), cmd: 'Exec', code: 200 }]), undefined));
  assert.equal(effectsOf(done.effects, 'job-result')[0]?.code, 200);
  assert.equal(done.ended, true);
  assert.equal(s.addJobs([{ id: 'too-late', kind: 'Get', uri: './X' }]), false);
});

test('RepPro "MaxMsgSize" / Protocol "Multiple messages in package": the server splits its package under the client\'s MaxMsgSize and sends the rest after Alert 1222', () => {
  const nonce = Buffer.from('n0');
  // WBXML is about a third of XML's size: each encoding gets a limit its package does not fit in.
  for (const [encoding, maxMsgSize] of [['xml', 1200], ['wbxml', 512]] as const) {
    const s = session();
    let reply = s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce), maxMsgSize }), account(nonce), { encoding })).reply;
    const gets: string[] = [];
    let msgId = 1;
    let messages = 0;
    for (;;) {
      messages++;
      assert.ok(encodeSyncML(reply, encoding).length <= maxMsgSize, `${encoding} message ${reply.header.msgId} fits`);
      for (const c of reply.commands) if (c.kind === 'Get') gets.push(c.items[0]!.target!.locUri);
      if (reply.final) break;
      assert.equal(reply.commands.some((c) => c.kind === 'Get'), true);
      // The client answers and asks for more with Alert 1222; its message has no Final.
      const out = s.receive(input(answer(reply, ++msgId, TREE, false), undefined, { encoding }));
      const alertStatus = out.reply.commands.find((c) => c.kind === 'Status' && c.cmd === 'Alert');
      assert.equal(alertStatus?.kind === 'Status' ? alertStatus.code : undefined, 200);
      reply = out.reply;
      assert.ok(messages < 20);
    }
    assert.ok(messages > 1, `${encoding}: the package was split`);
    assert.deepEqual(gets, [...FACT_URIS]);
  }
});

test('RepPro "MaxMsgSize": when not even one Status fits the client\'s MaxMsgSize, the session is aborted (413), the engine does not throw', () => {
  const nonce = Buffer.from('n0');
  const s = new DmServerSession('1A', 'D'.repeat(600), [], { serverUri: 'https://depot.test/dm', nonce: nonces }, 0);
  const msg = message(1, package1(), { cred: md5Credential(USER, PASS, nonce), maxMsgSize: 512 });
  const long: SyncMLMessage = { ...msg, header: { ...msg.header, source: { locUri: 'D'.repeat(600) } } };
  const out = s.receive(input(long, { ...account(nonce), deviceId: 'D'.repeat(600) }));
  assert.equal(out.ended, true);
  assert.equal(hdrStatus(out.reply).code, StatusCode.RequestEntityTooLarge);
  assert.deepEqual(effectsOf(out.effects, 'session-ended').map((e) => e.reason), ['server-abort']);
});

test('Protocol "Multiple messages in package": a client message without Final gets Status and Alert 1222, and no commands yet', () => {
  const nonce = Buffer.from('n0');
  const s = session();
  const out = s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce), final: false }), account(nonce)));
  assert.equal(out.reply.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.NextMessage), true);
  assert.equal(out.reply.commands.some((c) => c.kind === 'Get'), false);
  assert.equal(out.reply.final, false);
  const alert = out.reply.commands.find((c) => c.kind === 'Alert')!;
  const next = s.receive(input(message(2, [{ kind: 'Status', cmdId: '1', msgRef: out.reply.header.msgId, cmdRef: String(alert.cmdId), cmd: 'Alert', code: 200 }], {}), undefined));
  assert.equal(next.reply.commands.some((c) => c.kind === 'Get'), true);
  assert.equal(effectsOf(next.effects, 'protocol-warning').length, 0, 'the Status for Depot\'s Alert 1222 is expected');
});

test('Protocol "Session Abort": Alert 1223 from the client ends the session; the server aborts with 1223 after repeated authentication failures', () => {
  const nonce = Buffer.from('n0');
  const s = session();
  s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  const abort = s.receive(input(message(2, [{ kind: 'Alert', cmdId: '1', code: AlertCode.SessionAbort }]), undefined));
  assert.equal(abort.ended, true);
  assert.deepEqual(effectsOf(abort.effects, 'session-ended').map((e) => e.reason), ['client-abort']);

  const t = session([], { maxAuthAttempts: 2 });
  t.receive(input(message(1, package1(), { cred: 'AAAAAAAAAAAAAAAAAAAAAA==' }), account(nonce)));
  const gaveUp = t.receive(input(message(2, package1(), { cred: 'AAAAAAAAAAAAAAAAAAAAAA==' }), account(nonce)));
  assert.equal(gaveUp.ended, true);
  assert.equal(gaveUp.reply.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.SessionAbort), true);
  assert.equal(gaveUp.reply.final, true);
});

test('RepPro <MsgID>: a repeated or skipped MsgID aborts the session; a Status with a MsgRef/CmdRef Depot never sent is a warning, not a result', () => {
  const nonce = Buffer.from('n0');
  const s = session([{ id: 'j', kind: 'Get', uri: './X' }]);
  const p2 = s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  const bogus = answer(p2.reply, 2, TREE);
  const wrongRef: SyncMLMessage = { ...bogus, commands: [...bogus.commands, { kind: 'Status', cmdId: '99', msgRef: '7', cmdRef: '3', cmd: 'Get', code: 200 }] };
  const out = s.receive(input(wrongRef, undefined));
  assert.equal(effectsOf(out.effects, 'protocol-warning').length, 1);
  assert.equal(effectsOf(out.effects, 'job-result').find((r) => r.jobId === 'j')?.code, 404, 'the real Status still counts');

  const r = session();
  r.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  const replay = r.receive(input(message(1, package1()), undefined));
  assert.equal(replay.ended, true);
  assert.equal(hdrStatus(replay.reply).code, StatusCode.BadRequest);
});

test('RepPro "Response Status Codes": DS commands get 406, DM commands sent to the server 405, unknown alerts 406; Generic Alert 1226 is reported', () => {
  const nonce = Buffer.from('n0');
  const s = session();
  const out = s.receive(input(message(1, [
    { kind: 'Alert', cmdId: '1', code: AlertCode.ClientInitiatedManagement },
    { kind: 'Get', cmdId: '2', items: [{ target: { locUri: './Depot' } }] },
    { kind: 'Alert', cmdId: '3', code: 1299 },
    { kind: 'Alert', cmdId: '4', code: AlertCode.GenericAlert, correlator: 'c-1', items: [{ meta: { type: 'org.example.x', format: 'chr' }, data: 'done' }] },
  ], { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  const codes = Object.fromEntries(out.reply.commands.filter((c): c is StatusCommand => c.kind === 'Status').map((c) => [c.cmdRef, c.code]));
  assert.deepEqual(codes, { 0: 212, 1: 200, 2: 405, 3: 406, 4: 200 });
  assert.equal(effectsOf(out.effects, 'generic-alert')[0]?.correlator, 'c-1');

  // Map (a DS command) through the real XML decoder.
  const xml = `<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1A</SessionID><MsgID>2</MsgID><Target><LocURI>x</LocURI></Target><Source><LocURI>${DEV}</LocURI></Source></SyncHdr><SyncBody><Map><CmdID>5</CmdID></Map><Final/></SyncBody></SyncML>`;
  const map = s.receive({ message: decodeSyncML(Buffer.from(xml), 'xml'), encoding: 'xml', account: undefined, now: 1000 });
  const st = map.reply.commands.find((c) => c.kind === 'Status' && c.cmdRef === '5');
  assert.equal(st?.kind === 'Status' ? st.code : 0, 406);
});

test('Protocol "Session": a session idle past its timeout is over (408 and 1223 if the client comes back)', () => {
  const nonce = Buffer.from('n0');
  const s = session([], { timeoutMs: 60_000 });
  s.receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce)));
  assert.deepEqual(s.expire(30_000), []);
  const late = s.receive(input(answer({ header: { ...message(1, []).header, msgId: '1' }, commands: [], final: true }, 2, TREE), undefined, { now: 1000 + 61_000 }));
  assert.equal(late.ended, true);
  assert.equal(hdrStatus(late.reply).code, StatusCode.RequestTimeout);
  assert.equal(late.reply.commands.some((c) => c.kind === 'Alert' && c.code === AlertCode.SessionAbort), true);
  const t = session([{ id: 'never-sent', kind: 'Exec', uri: './X' }], { timeoutMs: 60_000 });
  assert.deepEqual(t.expire(60_000), [{ kind: 'job-unsent', deviceId: DEV, jobId: 'never-sent' }, { kind: 'session-ended', deviceId: DEV, reason: 'timeout' }]);
  assert.deepEqual(t.expire(120_000), [], 'once');
});

test('throttled: the credentials are not checked at all and the answer is the usual 401', () => {
  const nonce = Buffer.from('n0');
  const out = session().receive(input(message(1, package1(), { cred: md5Credential(USER, PASS, nonce) }), account(nonce), { throttled: true }));
  assert.equal(hdrStatus(out.reply).code, StatusCode.InvalidCredentials);
  assert.ok(hdrStatus(out.reply).chal);
});
