/**
 * The whole stack over DTLS: Depot's CoapServer / CoapClient (src/coap) on a DtlsTransport,
 * against libcoap's DTLS tools and against each other (RFC 7252 §9 coaps, RFC 7959 Block2 over DTLS).
 */
import { after, describe, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { fileURLToPath } from 'node:url';
import { lookup } from 'node:dns/promises';
import { CoapServer } from '../../src/coap/server.js';
import { CoapClient } from '../../src/coap/client.js';
import { Code, ContentFormat } from '../../src/coap/codes.js';
import { DtlsTransport } from '../../src/dtls/transport.js';
import { PeerProcess, requireBinary, sleep } from './dtls-helpers.js';
import { freeUdpPortPair } from '../support/udp-probe.js';
import { runProcess, type ProcessResult } from '../support/peer-process.js';

const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const HOST = '127.0.0.1';
const KEY_TEXT = 'stack-secret-key';
const KEY = Uint8Array.from(Buffer.from(KEY_TEXT));
const IDENTITY = 'stack-device';
const BIG = 'x'.repeat(2500) + 'END';


void describe('CoAP stack over DTLS', () => {
  const procs: PeerProcess[] = [];
  const closers: (() => Promise<void>)[] = [];

  after(async () => {
    for (const p of procs) p.kill();
    for (const c of closers) await c();
  });

  async function depotServer(host = HOST): Promise<{ server: CoapServer; port: number; identities: string[] }> {
    const transport = await DtlsTransport.bind({ host, server: { pskLookup: (id) => (id === IDENTITY ? KEY : undefined) } });
    const server = new CoapServer({ transport });
    const identities: string[] = [];
    server.resource('/hello', {
      get: (req) => {
        const who = req.peer.identity?.kind === 'psk' ? req.peer.identity.identity : 'nobody';
        identities.push(who);
        return { code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: `hello ${who}` };
      },
    });
    server.resource('/big', { get: () => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: BIG }) });
    closers.push(() => server.close());
    return { server, port: transport.address().port, identities };
  }

  for (const flavour of ['openssl', 'gnutls']) {
    void test(`RFC 7252 §9.1: coap-client-${flavour} -> Depot CoapServer on DtlsTransport (PSK identity reaches the handler)`, async () => {
      const bin = requireBinary(`coap-client-${flavour}`);
      const { port, identities } = await depotServer();
      const cli = new PeerProcess(bin, ['-B', '10', '-u', IDENTITY, '-k', KEY_TEXT, '-m', 'get', `coaps://${HOST}:${port}/hello`]);
      procs.push(cli);
      await cli.waitFor(new RegExp(`hello ${IDENTITY}`), 10_000);
      assert.deepEqual(identities, [IDENTITY]);
    });

    void test(`RFC 7959 §2 over RFC 6347: coap-client-${flavour} fetches a Block2 body from the Depot CoapServer over DTLS`, async () => {
      const bin = requireBinary(`coap-client-${flavour}`);
      const { port } = await depotServer();
      const cli = new PeerProcess(bin, ['-B', '10', '-b', '64', '-u', IDENTITY, '-k', KEY_TEXT, '-m', 'get', `coaps://${HOST}:${port}/big`]);
      procs.push(cli);
      await cli.waitFor(/x{100}[\s\S]*END/, 10_000);
      assert.ok(cli.stdout.includes(BIG), 'the whole body, reassembled from 64-byte blocks');
    });

    void test(`RFC 7252 §9.1: Depot CoapClient on DtlsTransport -> coap-server-${flavour}`, async () => {
      const bin = requireBinary(`coap-server-${flavour}`);
      const port = await freeUdpPortPair();
      const srv = new PeerProcess(bin, ['-A', HOST, '-p', String(port), '-k', KEY_TEXT]);
      procs.push(srv);
      await sleep(300);
      const client = new CoapClient({
        transportFactory: (scheme) => {
          if (scheme !== 'coaps') throw new Error(`unexpected scheme ${scheme}`);
          return DtlsTransport.bind({ host: HOST, client: { psk: { identity: IDENTITY, key: KEY } } });
        },
      });
      closers.push(() => client.close());
      const res = await client.get(`coaps://${HOST}:${port + 1}/`, { timeout: 10_000 });
      assert.equal(res.code, Code.Content);
      assert.match(res.text(), /libcoap/i);
    });
  }

  void test('RFC 7252 §9.1 / RFC 9146: Depot CoapClient -> Depot CoapServer over DTLS with a connection ID, Block2 body', async () => {
    const { port, identities } = await depotServer();
    const client = new CoapClient({
      transportFactory: () => DtlsTransport.bind({ host: HOST, client: { psk: { identity: IDENTITY, key: KEY }, connectionId: true } }),
    });
    closers.push(() => client.close());
    const hello = await client.get(`coaps://${HOST}:${port}/hello`, { timeout: 10_000 });
    assert.equal(hello.text(), `hello ${IDENTITY}`);
    const big = await client.get(`coaps://${HOST}:${port}/big`, { timeout: 10_000, blockSize: 128 });
    assert.equal(big.text(), BIG);
    assert.deepEqual(identities, [IDENTITY]);
  });

  void test('depot coap over coaps://localhost: the name is resolved, the handshake hint speaks only when no session was made', async () => {
    // The server listens where this machine's resolver puts localhost (127.0.0.1 or ::1: whichever
    // the CLI's own lookup picks first), so the test runs the same on every resolver setup.
    const localhost = (await lookup('localhost')).address;
    assert.ok(localhost.startsWith('127.') || localhost === '::1', `localhost resolves to ${localhost}, not a loopback address`);
    const { server, port } = await depotServer(localhost);
    server.resource('/silent', { get: () => new Promise(() => undefined) });
    const get = (path: string, key: string, timeout: string): Promise<ProcessResult> =>
      runProcess(process.execPath, [DEPOT_CLI, 'coap', 'get', `coaps://localhost:${port}${path}`, '--psk-identity', IDENTITY, '--psk-key', key, '--timeout', timeout], { timeoutMs: 30_000 });
    const ok = await get('/hello', KEY_TEXT, '10000');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.toString('utf8'), /hello stack-device/);
    // Established session, then a timeout: not a handshake problem, so no hint.
    const silent = await get('/silent', KEY_TEXT, '1500');
    assert.equal(silent.code, 1);
    assert.doesNotMatch(silent.stderr, /handshake did not complete/);
    // A wrong key: the server drops our Finished and only silence comes back; the hint says why.
    const wrong = await get('/hello', 'not-the-key', '1500');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /the DTLS handshake did not complete: check the PSK identity and key/);
  });
});
