/**
 * Server authentication in the sans-IO DM session (src/omadm/session.ts), with hand-written
 * client messages: OMA-TS-DM_Security-V1_2 §5.3 (the server's syncml:auth-md5 Cred over server
 * ID, server password and the client's nonce) and OMA-TS-DM_Protocol-V1_2 §8 (Chal in the Status
 * for SyncHdr, in either direction).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { AuthType, md5Credential } from '../../../src/omadm/auth.js';
import { DmServerSession } from '../../../src/omadm/session.js';
import type { DmAccount, ReceiveInput, ServerJob, SessionEffect } from '../../../src/omadm/session.js';
import { AlertCode, StatusCode } from '../../../src/omadm/status-codes.js';
import { decodeSyncML, encodeSyncML } from '../../../src/omadm/syncml.js';
import type { Command, StatusCommand, SyncMLMessage } from '../../../src/omadm/syncml.js';

const DEV = 'IMEI:490154203237518';
const CLIENT_NONCE = Buffer.from('client-nonce');
const SERVER_NONCE = Buffer.from('server-nonce');
const ACCOUNT: DmAccount = { deviceId: DEV, clientUsername: DEV, clientPassword: 'client-pw', clientNonce: CLIENT_NONCE, serverId: 'depot', serverPassword: 'server-pw', serverNonce: SERVER_NONCE };

function msg(msgId: number, commands: Command[], cred = false): SyncMLMessage {
  return {
    header: {
      verDTD: '1.2', verProto: 'DM/1.2', sessionId: '7', msgId: String(msgId), target: { locUri: 'https://depot.test/dm' }, source: { locUri: DEV },
      ...(cred ? { cred: { meta: { type: AuthType.Md5, format: 'b64' }, data: md5Credential(DEV, 'client-pw', CLIENT_NONCE) } } : {}),
    },
    commands,
    final: true,
  };
}

function input(m: SyncMLMessage, account: DmAccount | undefined = ACCOUNT): ReceiveInput {
  return { message: decodeSyncML(encodeSyncML(m, 'xml'), 'xml'), encoding: 'xml', account, now: 1000 };
}

const pkg1: Command[] = [{ kind: 'Alert', cmdId: '1', code: AlertCode.ClientInitiatedManagement }];
const hdr = (reply: SyncMLMessage, code: number, nextNonce?: Buffer): StatusCommand => ({
  kind: 'Status', cmdId: '1', msgRef: reply.header.msgId, cmdRef: '0', cmd: 'SyncHdr', code,
  ...(nextNonce === undefined ? {} : { chal: { meta: { type: AuthType.Md5, format: 'b64', nextNonce: nextNonce.toString('base64') } } }),
});
const of = <K extends SessionEffect['kind']>(effects: readonly SessionEffect[], kind: K) => effects.filter((e): e is Extract<SessionEffect, { kind: K }> => e.kind === kind);

test('OMA-TS-DM_Security-V1_2 §5.3: no server Cred goes to a device that has not authenticated (the 401 is the same as for a stranger)', () => {
  const s = new DmServerSession('7', DEV, [], { serverUri: 'https://depot.test/dm' }, 0);
  const out = s.receive(input({ ...msg(1, pkg1), header: { ...msg(1, pkg1).header, cred: { meta: { type: AuthType.Md5, format: 'b64' }, data: md5Credential(DEV, 'wrong', CLIENT_NONCE) } } }));
  assert.equal(out.reply.commands.find((c) => c.kind === 'Status')?.code, StatusCode.InvalidCredentials);
  assert.equal(out.reply.header.cred, undefined);
  const [failed] = of(out.effects, 'auth-failed');
  assert.deepEqual([failed?.attempt, failed?.final, failed?.reason], [1, false, 'syncml:auth-md5 credential not accepted (wrong credential or stale nonce)']);
});

test('OMA-TS-DM_Protocol-V1_2 §8: a refused message with a Sequence is resent whole over the new nonce, and the children\'s Statuses in the resent message settle the job', () => {
  const job: ServerJob = { id: 'seq', kind: 'Sequence', uri: '', children: [{ id: 'a', kind: 'Replace', uri: './A', data: '1' }, { id: 'b', kind: 'Replace', uri: './B', data: '2' }] };
  const s = new DmServerSession('7', DEV, [job], { serverUri: 'https://depot.test/dm' }, 0);
  const first = s.receive(input(msg(1, pkg1, true)));
  assert.equal(first.reply.header.cred?.data, md5Credential('depot', 'server-pw', SERVER_NONCE));
  const fresh = Buffer.from('fresh-nonce');
  const retry = s.receive(input(msg(2, [hdr(first.reply, StatusCode.InvalidCredentials, fresh)])));
  assert.deepEqual(of(retry.effects, 'server-nonce').map((e) => Buffer.from(e.nonce)), [fresh], 'stored before the reply goes out');
  assert.equal(retry.reply.header.cred?.data, md5Credential('depot', 'server-pw', fresh));
  const sent = (m: SyncMLMessage) => m.commands.filter((c) => c.kind !== 'Status');
  assert.deepEqual(sent(retry.reply), sent(first.reply));
  // The device accepts and answers every command of the resent message (MsgRef = the resent one).
  const answers: Command[] = [hdr(retry.reply, StatusCode.AuthenticationAccepted, Buffer.from('next'))];
  let id = 2;
  for (const c of sent(retry.reply)) {
    answers.push({ kind: 'Status', cmdId: String(id++), msgRef: retry.reply.header.msgId, cmdRef: c.cmdId!, cmd: c.kind, code: 200 });
    if (c.kind === 'Get') answers.push({ kind: 'Results', cmdId: String(id++), msgRef: retry.reply.header.msgId, cmdRef: c.cmdId, items: [{ source: { locUri: c.items[0]!.target!.locUri }, data: 'x' }] });
    if (c.kind === 'Sequence') for (const child of c.commands) answers.push({ kind: 'Status', cmdId: String(id++), msgRef: retry.reply.header.msgId, cmdRef: child.cmdId!, cmd: child.kind, code: 200 });
  }
  const done = s.receive(input(msg(3, answers)));
  assert.equal(of(done.effects, 'protocol-warning').length, 0, 'every Status matched a command Depot sent');
  assert.deepEqual(of(done.effects, 'job-result').map((r) => [r.jobId, r.code, r.children]), [['seq', 200, [200, 200]]]);
  assert.equal(done.reply.header.cred, undefined, 'accepted: no Cred any more this session');
  assert.ok(done.ended);
});
