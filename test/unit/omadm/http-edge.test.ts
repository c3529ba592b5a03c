/**
 * The OMA DM HTTP edge's own bounds (src/omadm/http.ts), over a real socket in lab mode (plain
 * HTTP: TLS is covered by the end-to-end tests) with an injected clock and an in-memory store
 * double that records writes: the session table is bounded and swept, strangers' sessions
 * expire sooner, GET is 405, a DM message from an unknown session start is refused, the
 * endpoint refuses to run without TLS unless asked.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { ManualClock } from '../../../src/util/clock.js';
import { OmaDmHttpServer } from '../../../src/omadm/http.js';
import type { OmaDmStore } from '../../../src/omadm/http.js';
import { decodeSyncML, encodeSyncML } from '../../../src/omadm/syncml.js';
import type { SyncMLMessage } from '../../../src/omadm/syncml.js';
import { DmPhone, httpTransport, phoneTree } from '../../../src/sim/omadm/phone.js';

const clock = new ManualClock(0);
const nonceWrites: string[] = [];
const store: OmaDmStore = {
  omadmAccounts: {
    get: (deviceId) => Promise.resolve(deviceId === 'known' ? { deviceId, clientUsername: 'u', clientPassword: 'p', clientNonce: Buffer.from('n') } : null),
    setNonce: (deviceId) => {
      nonceWrites.push(deviceId);
      return Promise.resolve(true);
    },
  },
  deviceFacts: { upsert: () => Promise.reject(new Error('no facts expected')) },
};
let server: OmaDmHttpServer;
let url: string;
const t = httpTransport();

before(async () => {
  server = new OmaDmHttpServer({ store, host: '127.0.0.1', port: 0, insecureHttp: true, clock, maxSessions: 2 });
  url = `http://127.0.0.1:${await server.listen()}/dm`;
});
after(() => server.close());

function first(deviceId: string, msgId = '1'): Uint8Array {
  const m: SyncMLMessage = {
    header: { verDTD: '1.2', verProto: 'DM/1.2', sessionId: '1', msgId, target: { locUri: url }, source: { locUri: deviceId } },
    commands: [{ kind: 'Alert', cmdId: '1', code: 1201 }],
    final: true,
  };
  return encodeSyncML(m, 'xml');
}

const post = (body: Uint8Array) => t.post(url, body, { 'content-type': 'application/vnd.syncml.dm+xml' });

test('the endpoint does not run without TLS unless plain HTTP is asked for', () => {
  assert.throws(() => new OmaDmHttpServer({ store, port: 0 }), /TLS/);
});

test('GET is 405; a first message with MsgID 5 is answered 400 and 1223 (no session to continue)', async () => {
  const res = await new Promise<number>((resolve, reject) => {
    fetch(url).then((r) => resolve(r.status), reject);
  });
  assert.equal(res, 405);
  const out = await post(first('someone', '5'));
  assert.equal(out.status, 200);
  const reply = decodeSyncML(out.body, 'xml');
  assert.equal(reply.commands.some((c) => c.kind === 'Status' && c.cmd === 'SyncHdr' && c.code === 400), true);
  assert.equal(reply.commands.some((c) => c.kind === 'Alert' && c.code === 1223), true);
  assert.equal(server.openSessions, 0);
});

test('the session table is bounded (503 past it); unauthenticated sessions expire after 30 s and make room', async () => {
  assert.equal((await post(first('stranger-1'))).status, 200);
  assert.equal((await post(first('known'))).status, 200);
  assert.equal(server.openSessions, 2);
  assert.deepEqual(nonceWrites, ['known'], 'a challenge to a known device is stored; to a stranger, nothing');
  assert.equal((await post(first('stranger-2'))).status, 503);
  clock.advance(29_000);
  assert.equal((await post(first('stranger-3'))).status, 503);
  clock.advance(2_000);
  const later = await post(first('stranger-3'));
  assert.equal(later.status, 200);
  assert.equal(server.openSessions, 1);
});

test('the session table is swept for idle sessions at most once a second while it has room (not a walk over the table per new session)', async () => {
  const own = new ManualClock(0);
  const edge = new OmaDmHttpServer({ store, host: '127.0.0.1', port: 0, insecureHttp: true, clock: own, maxSessions: 10 });
  const edgeUrl = `http://127.0.0.1:${await edge.listen()}/dm`;
  const open = async (deviceId: string): Promise<void> => {
    assert.equal((await t.post(edgeUrl, first(deviceId), { 'content-type': 'application/vnd.syncml.dm+xml' })).status, 200);
  };
  try {
    await open('s-1'); // swept (first admission), then admitted at 0
    own.advance(29_999);
    await open('s-2'); // swept at 29,999: s-1 is not idle for 30 s yet
    assert.equal(edge.openSessions, 2);
    own.advance(2); // s-1 is now past the 30 s of an unauthenticated session
    await open('s-3'); // 2 ms after the last sweep: no walk over the table
    assert.equal(edge.openSessions, 3);
    own.advance(1_000);
    await open('s-4'); // a second later: swept, s-1 goes
    assert.equal(edge.openSessions, 3);
  } finally {
    await edge.close();
  }
});

test('an MD5 session reads the account once (its first message), an HMAC session at every message; the rotated nonce and the facts are stored before each reply', async () => {
  const reads: string[] = [];
  const writes: string[] = [];
  let nonce: Uint8Array = Buffer.from('first');
  const counting: OmaDmStore = {
    omadmAccounts: {
      get: (deviceId) => {
        reads.push(deviceId);
        return Promise.resolve({ deviceId, clientUsername: deviceId, clientPassword: 'pw', clientNonce: nonce });
      },
      setNonce: (_deviceId, n) => {
        writes.push('nonce');
        nonce = n;
        return Promise.resolve(true);
      },
    },
    deviceFacts: { upsert: (endpoint) => (writes.push(`facts ${endpoint}`), Promise.resolve({} as never)) },
  };
  const edge = new OmaDmHttpServer({ store: counting, host: '127.0.0.1', port: 0, insecureHttp: true });
  const edgeUrl = `http://127.0.0.1:${await edge.listen()}/dm`;
  // Every reply the phone gets was sent after the writes its message caused.
  const seen: string[][] = [];
  const transport = { post: async (u: string, body: Uint8Array, headers: Record<string, string>) => {
    const res = await t.post(u, body, headers);
    seen.push([...writes]);
    return res;
  } };
  try {
    for (const auth of ['md5', 'hmac'] as const) {
      reads.length = 0;
      writes.length = 0;
      seen.length = 0;
      const phone = new DmPhone({ deviceId: `D-${auth}`, username: `D-${auth}`, password: 'pw', encoding: 'xml', auth, tree: phoneTree(`D-${auth}`, 1) }, transport);
      phone.nonce = nonce;
      const report = await phone.runSession(edgeUrl);
      assert.equal(report.ended, 'completed', auth);
      assert.equal(seen.length, 2, `${auth}: Package 1, then the Gets' answers (no operator jobs: the reply ends the session)`);
      assert.equal(reads.length, auth === 'md5' ? 1 : 2, auth);
      assert.deepEqual(seen[0], ['nonce', `facts omadm:D-${auth}`], `${auth}: the new nonce and Package 1's DevInfo were stored before the first reply`);
      // HMAC: every message is authenticated and rotates the nonce for the next MAC.
      assert.deepEqual(seen[1], auth === 'md5' ? ['nonce', `facts omadm:D-${auth}`, `facts omadm:D-${auth}`] : ['nonce', `facts omadm:D-${auth}`, 'nonce', `facts omadm:D-${auth}`], `${auth}: DevDetail stored before the second reply`);
    }
  } finally {
    await edge.close();
  }
});
