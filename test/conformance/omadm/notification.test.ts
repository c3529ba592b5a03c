/**
 * The DM notification, package #0, against OMA-TS-DM_Notification-V1_2 (cited by section name:
 * "Package #0" for the layout, "Security" for the digest and the device's duty to ignore a
 * notification whose digest is wrong), and the bootstrap state machine as the table reads.
 * The digest's oracle is the OpenSSL CLI (md5 and base64), not Depot's code.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Initiator, NotificationFormatError, UiMode, decodeNotification, encodeNotification, encodeTrigger, notificationDigest, verifyNotification } from '../../../src/omadm/notification.js';
import { BootstrapState, TRANSITIONS, nextState } from '../../../src/omadm/bootstrap/machine.js';
import { requireExecutable, runProcess } from '../../support/peer-process.js';

const CREDS = { password: 'srv-pass', nonce: Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]) };
const N = { version: 12, uiMode: UiMode.UserInteraction, initiator: Initiator.Server, sessionId: 0xabcd, serverId: 'srv' } as const;

test('Package #0: version (10 bits), ui-mode (2), initiator (1), future-use (27, zero), session-id (16), length-identifier (8), server-identifier', () => {
  const trigger = encodeTrigger(N);
  // 12 = 0b0000001100 → byte 0 = 0b00000011; byte 1 = 00 (version low bits) 11 (ui-mode) 1 (initiator) 000.
  assert.deepEqual([...trigger], [0x03, 0x38, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x03, ...Buffer.from('srv')]);
  const body = encodeNotification(N, CREDS);
  assert.equal(body.length, 16 + trigger.length);
  assert.deepEqual(body.subarray(16), trigger);
  for (const uiMode of [0, 1, 2, 3] as const) {
    for (const initiator of [0, 1] as const) {
      const d = decodeNotification(encodeNotification({ ...N, uiMode, initiator, sessionId: 1, vendorSpecific: Uint8Array.from([7, 7]) }, CREDS));
      assert.equal(d.uiMode, uiMode);
      assert.equal(d.initiator, initiator);
      assert.equal(d.version, 12);
      assert.equal(d.sessionId, 1);
      assert.equal(d.serverId, 'srv');
      assert.deepEqual(d.vendorSpecific, Uint8Array.from([7, 7]));
    }
  }
});

test('Security: digest = H(B64(H(server-identifier:password)):nonce:B64(H(notification))), MD5, checked with openssl', async () => {
  const openssl = requireExecutable('openssl');
  const dir = mkdtempSync(join(tmpdir(), 'depot-notif-'));
  try {
    const md5b64 = async (data: Uint8Array | string): Promise<string> => {
      const f = join(dir, `f${Math.random()}`);
      writeFileSync(f, data);
      const r = await runProcess('sh', ['-c', '"$1" dgst -md5 -binary "$2" | "$1" base64 -A', 'sh', openssl, f], { timeoutMs: 10_000 });
      assert.equal(r.code, 0, r.output);
      return r.output.trim();
    };
    const trigger = encodeTrigger(N);
    const inner = await md5b64('srv:srv-pass');
    const expected = await md5b64(Buffer.concat([Buffer.from(`${inner}:`), CREDS.nonce, Buffer.from(`:${await md5b64(trigger)}`)]));
    assert.equal(Buffer.from(encodeNotification(N, CREDS).subarray(0, 16)).toString('base64'), expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Security: the device ignores a notification whose digest is wrong: another password, another nonce, a changed byte', () => {
  const body = encodeNotification(N, CREDS);
  assert.equal(verifyNotification(decodeNotification(body), CREDS), true);
  assert.equal(verifyNotification(decodeNotification(body), { ...CREDS, password: 'other' }), false);
  assert.equal(verifyNotification(decodeNotification(body), { ...CREDS, nonce: Uint8Array.from([1]) }), false);
  for (const at of [0, 15, 16, 17, 21, 22, body.length - 1]) {
    const changed = Uint8Array.from(body);
    changed[at]! ^= 0x02;
    let ok = false;
    try {
      ok = verifyNotification(decodeNotification(changed), CREDS);
    } catch (error) {
      assert.ok(error instanceof NotificationFormatError);
    }
    assert.equal(ok, false, `byte ${at} changed`);
  }
});

test('model quirks are data: another version number, the nonce hashed as its base64 text, a zero digest', () => {
  const v11 = decodeNotification(encodeNotification(N, CREDS, { version: 11 }));
  assert.equal(v11.version, 11);
  assert.equal(verifyNotification(v11, CREDS), true, 'the digest covers the trigger as sent');
  const textNonce = decodeNotification(encodeNotification(N, CREDS, { digest: 'nonce-as-base64-text' }));
  assert.equal(verifyNotification(textNonce, CREDS), false);
  assert.equal(verifyNotification(textNonce, CREDS, 'nonce-as-base64-text'), true);
  assert.deepEqual(textNonce.digest, notificationDigest('srv', 'srv-pass', CREDS.nonce, textNonce.trigger, 'nonce-as-base64-text'));
  assert.deepEqual([...decodeNotification(encodeNotification(N, CREDS, { digest: 'zero' })).digest], new Array(16).fill(0));
});

test('Package #0: anything that is not one is a NotificationFormatError (truncated, future-use set, server id past the end, too long)', () => {
  const body = encodeNotification(N, CREDS);
  for (let n = 0; n < body.length; n++) {
    if (n >= 16 + 8 + 1) continue; // a shorter server identifier is still a notification (its digest fails)
    assert.throws(() => decodeNotification(body.subarray(0, n)), NotificationFormatError, `length ${n}`);
  }
  const future = Uint8Array.from(body);
  future[16 + 3] = 1;
  assert.throws(() => decodeNotification(future), /future-use/);
  const long = Uint8Array.from(body);
  long[16 + 7] = 200;
  assert.throws(() => decodeNotification(long), /past the end/);
  assert.throws(() => decodeNotification(new Uint8Array(2000)), /longer than/);
  assert.throws(() => encodeTrigger({ ...N, serverId: '' }), RangeError);
  assert.throws(() => encodeTrigger({ ...N, sessionId: 0x10000 }), RangeError);
});

test('bootstrap machine: every row of the table, accepted is final, unknown events change nothing', () => {
  for (const [from, event, to] of TRANSITIONS) assert.equal(nextState(from, event), to, `${from} --${event}-->`);
  for (const event of ['send', 'dlr-delivered', 'dlr-failed', 'session', 'window-passed', 'limit-reached', 'operator-reject', 'operator-reset'] as const) {
    assert.equal(nextState('accepted', event), undefined, `accepted --${event}-->`);
  }
  // Every state but accepted and stopped can be sent (again) or stopped; a session accepts every sent state.
  for (const s of BootstrapState) {
    if (s === 'accepted' || s === 'stopped') continue;
    assert.ok(nextState(s, 'send') === 'sent' || s === 'new' || s === 'sent' || s === 'delivered');
    assert.equal(nextState(s, 'limit-reached'), 'stopped');
    if (s !== 'new') assert.equal(nextState(s, 'session'), 'accepted', s);
  }
  assert.equal(nextState('delivered', 'window-passed'), 'rejected');
  assert.equal(nextState('sent', 'window-passed'), 'expired');
});
