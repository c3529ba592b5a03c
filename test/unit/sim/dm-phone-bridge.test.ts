/**
 * The bridge between a simulated handset's SMS and its OMA DM phone (src/sim/sms/dm-phone-bridge.ts),
 * without Kannel (the interop test omadm-bootstrap-kannel runs it through a real one): whole WAP
 * Pushes reach the phone with content type, SEC/MAC and body as sent, concatenated ones once
 * joined; what does not decode, what the phone fails on, and texts never throw at the handset.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SimHandset, type FakeSmscNetwork } from '../../../src/sim/sms/handsets.js';
import { bridgeDmPhone, receivedPushOf } from '../../../src/sim/sms/dm-phone-bridge.js';
import { SimulatedHandset } from '../../../src/sim/omadm/provisioning-client.js';
import type { ReceivedPush } from '../../../src/sim/omadm/notification-client.js';
import { wapPushSegments } from '../../../src/sms/wap-push.js';
import { segmentBinary } from '../../../src/sms/udh.js';

const handsetOf = (n: string): SimHandset => new SimHandset(n, {} as FakeSmscNetwork);
const deliver = (h: SimHandset, segments: { udh: Uint8Array | null; data: Uint8Array }[]): void => {
  for (const s of segments) h.deliver({ from: '4242', to: h.number, type: s.udh ? 'udh' : 'data', udh: s.udh, data: s.data });
};

test('a concatenated provisioning push reaches the phone once, joined, with SEC, MAC and the body as sent', async () => {
  const handset = handsetOf('+46700000101');
  const got: ReceivedPush[] = [];
  const phone = { receive: (p: ReceivedPush) => (got.push(p), Promise.resolve({ kind: 'refused' as const, reason: 'test' })) } as unknown as SimulatedHandset;
  const bridge = bridgeDmPhone(handset, phone);
  const body = Uint8Array.from(randomBytes(400));
  const segments = wapPushSegments({ contentType: 'application/vnd.wap.connectivity-wbxml', parameters: { SEC: 'USERPIN', MAC: 'AB'.repeat(20) }, body }, 7);
  assert.ok(segments.length > 1);
  deliver(handset, segments.slice(0, -1));
  await bridge.idle();
  assert.equal(got.length, 0, 'nothing before the last part');
  deliver(handset, segments.slice(-1));
  await bridge.waitForEvent(() => true, 2000);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], { contentType: 'application/vnd.wap.connectivity-wbxml', parameters: { SEC: 'USERPIN', MAC: 'AB'.repeat(20) }, body });
  bridge.stop();
});

test('pushes that do not decode, pushes the phone fails on and texts become ignored events or nothing, never exceptions', async () => {
  const handset = handsetOf('+46700000102');
  let calls = 0;
  const phone = { receive: () => (calls++, Promise.reject(new Error('boom'))) } as unknown as SimulatedHandset;
  const bridge = bridgeDmPhone(handset, phone);
  // WSP PDU type 0x07 is not Push.
  deliver(handset, segmentBinary(Uint8Array.from([1, 0x07, 1, 0xc4]), { ports: { destination: 2948, source: 9200 }, ref: 1 }));
  deliver(handset, wapPushSegments({ contentType: 'application/vnd.syncml.notification', body: Uint8Array.of(1, 2, 3) }, 2));
  // A text and data to another port are not the phone's business.
  deliver(handset, [{ udh: null, data: new TextEncoder().encode('hello') }]);
  deliver(handset, segmentBinary(Uint8Array.of(9), { ports: { destination: 5000, source: 5000 }, ref: 3 }));
  await bridge.idle();
  assert.equal(calls, 1);
  assert.deepEqual(bridge.events.map((e) => e.kind), ['ignored', 'ignored']);
  assert.match((bridge.events[0] as { reason: string }).reason, /does not decode: .*not Push/);
  assert.match((bridge.events[1] as { reason: string }).reason, /failed on the push: boom/);
});

test('a real never-bootstrapped phone ignores a notification (it has no account) and installs nothing', async () => {
  const handset = handsetOf('+46700000103');
  const phone = new SimulatedHandset({ msisdn: handset.number, imei: '352000000000103', userPin: '12345' });
  const bridge = bridgeDmPhone(handset, phone);
  deliver(handset, wapPushSegments({ contentType: 'application/vnd.syncml.notification', applicationId: 'x-wap-application:syncml.dm', body: Uint8Array.from(randomBytes(30)) }, 4));
  const event = await bridge.waitForEvent(() => true, 2000);
  assert.equal(event.kind, 'ignored');
  assert.equal(phone.installed.length, 0);
  assert.deepEqual(receivedPushOf(handset.pushes[0]!).applicationId, 'x-wap-application:syncml.dm');
});
