/**
 * Interop against libcoap 4.3.1 (Debian libcoap3-bin) over loopback, in both directions:
 * Depot's CoapClient against coap-server-notls, and coap-client-notls against Depot's
 * CoapServer, plus the built `depot coap` CLI against both servers.
 *
 * The expected response codes are the ones libcoap really sends (checked by hand with
 * `coap-client-notls -v 6`); each test names the RFC clause it exercises.
 * Missing binaries make these tests fail, never skip.
 */
import { after, before, describe, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoapClient } from '../../src/coap/client.js';
import type { ClientResponse } from '../../src/coap/client.js';
import { Code, ContentFormat } from '../../src/coap/codes.js';
import { CoapServer } from '../../src/coap/server.js';
import type { UploadSink } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { OptionNumber, decodeString, encodeString } from '../../src/coap/options.js';
import { PeerProcess, pollUntil, requireExecutable, runProcess, withTimeout } from '../support/peer-process.js';
import { freeUdpPort, waitForCoapServer } from '../support/udp-probe.js';

const HOST = '127.0.0.1';
const BIG = 100 * 1024;
/** The compiled CLI: dist/test/interop/… → dist/src/cli/main.js. */
const DEPOT_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

// ---------------------------------------------------------------- libcoap plumbing

interface LibcoapServer {
  process: PeerProcess;
  port: number;
  base: string;
}

/** Starts coap-server-notls on a free loopback port and waits until it answers a CoAP ping. */
async function startLibcoapServer(binary: string, extraArgs: string[]): Promise<LibcoapServer> {
  let lastError: unknown;
  // The port is free when chosen but could be taken before libcoap binds it: retry then.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeUdpPort(HOST);
    const process = new PeerProcess(binary, ['-A', HOST, '-p', String(port), ...extraArgs]);
    try {
      await waitForCoapServer(HOST, port, 5000, () => (process.exited ? `it exited: ${process.output}` : undefined));
      return { process, port, base: `coap://${HOST}:${port}` };
    } catch (error) {
      lastError = error;
      await process.stop();
    }
  }
  throw lastError;
}

/** One PDU line of `coap-client-notls -v 6` ("v:1 t:ACK c:2.05 i:1234 {01} [ Opt:v, … ] :: 'payload'"). */
interface PduLine {
  type: string;
  code: string;
  options: string;
  payload: string | undefined;
}

function pduLines(output: string): PduLine[] {
  const lines: PduLine[] = [];
  for (const m of output.matchAll(/^v:1 t:(CON|NON|ACK|RST) c:(\S+) i:[0-9a-f]+ \{[0-9a-f]*\} \[(.*?)\](?: :: (.*))?$/gm)) {
    lines.push({ type: m[1]!, code: m[2]!, options: m[3]!, payload: m[4] });
  }
  return lines;
}

/** The responses (not requests, not empty ACKs) coap-client received. */
function responsesIn(output: string): PduLine[] {
  return pduLines(output).filter((l) => /^[2-5]\.\d\d$/.test(l.code));
}

function onlyResponse(output: string): PduLine {
  const responses = responsesIn(output);
  assert.equal(responses.length, 1, `expected exactly one response, got:\n${output}`);
  return responses[0]!;
}

/** "Observe:11743" → 11743 */
function optionValue(options: string, name: string): string | undefined {
  return new RegExp(`(?:^|, )${name}:([^,]*?)(?:,|\\s*$)`).exec(options.trim())?.[1];
}

/**
 * Registers the suite's setup. node:test would only cancel the tests of a suite whose
 * before hook throws; a missing peer binary must FAIL them, so the setup error is kept
 * and rethrown by the returned check, which every test calls first.
 */
function suiteSetup(setup: () => Promise<void>): () => void {
  let failure: Error | undefined;
  before(async () => {
    try {
      await setup();
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
    }
  });
  return () => {
    if (failure !== undefined) throw failure;
  };
}

// ---------------------------------------------------------------- Depot client → libcoap server

describe('Depot CoapClient → libcoap coap-server-notls', () => {
  let server: LibcoapServer;
  let echoServer: LibcoapServer;
  let client: CoapClient;

  const ready = suiteSetup(async () => {
    const binary = requireExecutable('coap-server-notls');
    // -d 20: PUT/POST may create up to 20 dynamic resources.
    server = await startLibcoapServer(binary, ['-d', '20']);
    // -e: a PUT is answered with its own body (used for combined Block1 + Block2).
    echoServer = await startLibcoapServer(binary, ['-d', '20', '-e']);
    client = new CoapClient();
  });

  after(async () => {
    await client?.close();
    await server?.process.stop();
    await echoServer?.process.stop();
  });

  test('RFC 7252 §5.8.1: GET / → 2.05 Content with libcoap\'s banner', async () => {
    ready();
    const response = await client.get(`${server.base}/`);
    assert.equal(response.codeText, '2.05');
    assert.match(response.text(), /libcoap/);
  });

  test('RFC 7252 §5.8.3/§5.8.2/§5.8.4: PUT creates (2.01) then changes (2.04), POST changes (2.04) or creates (2.01), DELETE → 2.02, then 4.04', async () => {
    ready();
    const uri = `${server.base}/depot-crud`;
    const created = await client.put(uri, 'first', { contentFormat: ContentFormat.TextPlain });
    assert.equal(created.codeText, '2.01', 'PUT on a resource that does not exist yet creates it (§5.8.3)');
    assert.equal((await client.get(uri)).text(), 'first');

    const changed = await client.put(uri, 'second', { contentFormat: ContentFormat.TextPlain });
    assert.equal(changed.codeText, '2.04', 'PUT on an existing resource changes it (§5.8.3)');
    const afterPut = await client.get(uri);
    assert.equal(afterPut.codeText, '2.05');
    assert.equal(afterPut.text(), 'second');

    // libcoap's dynamic resources treat POST on an existing one as a replacement.
    const posted = await client.post(uri, 'third', { contentFormat: ContentFormat.TextPlain });
    assert.equal(posted.codeText, '2.04', 'POST on an existing dynamic resource → 2.04 (§5.8.2)');
    assert.equal((await client.get(uri)).text(), 'third');

    const postCreated = await client.post(`${server.base}/depot-crud-post`, 'made by POST', { contentFormat: ContentFormat.TextPlain });
    assert.equal(postCreated.codeText, '2.01', 'POST creating a resource → 2.01 (§5.8.2)');
    assert.equal((await client.get(`${server.base}/depot-crud-post`)).text(), 'made by POST');

    const deleted = await client.delete(uri);
    assert.equal(deleted.codeText, '2.02', 'DELETE → 2.02 Deleted (§5.8.4)');
    assert.equal((await client.get(uri)).codeText, '4.04', 'the deleted resource is gone (§5.9.2.5)');
    assert.equal((await client.delete(`${server.base}/depot-crud-post`)).codeText, '2.02');
  });

  test('RFC 7252 §5.9.2.5: GET on a path that does not exist → 4.04 Not Found', async () => {
    ready();
    const response = await client.get(`${server.base}/no/such/resource`);
    assert.equal(response.code, Code.NotFound);
    assert.equal(response.codeText, '4.04');
  });

  test('RFC 7252 §5.9.2.6: POST on /example_data (GET/PUT only) → 4.05 Method Not Allowed', async () => {
    ready();
    const response = await client.post(`${server.base}/example_data`, 'x');
    assert.equal(response.codeText, '4.05');
  });

  test('RFC 7959 §2.5 + §2.4: a 100 KiB body PUT with Block1 reads back byte for byte with Block2', async () => {
    ready();
    const body = randomBytes(BIG);
    const uri = `${server.base}/depot-big`;
    const put = await client.put(uri, body, { contentFormat: ContentFormat.OctetStream });
    assert.equal(put.codeText, '2.01');
    const got = await client.get(uri);
    assert.equal(got.codeText, '2.05');
    assert.equal(got.payload.length, BIG);
    assert.ok(Buffer.from(got.payload).equals(body), 'Block2 reassembly gives back the exact bytes');
    // §2.3/§2.4: the client may ask for smaller blocks; libcoap must follow and the bytes stay the same.
    const small = await client.get(uri, { blockSize: 256 });
    assert.ok(Buffer.from(small.payload).equals(body), 'the same bytes with 256-byte blocks');
  });

  test('RFC 7959 §2.5 with SZX 2: a 100 KiB upload in 64-byte Block1 blocks', async () => {
    ready();
    const body = randomBytes(BIG);
    const uri = `${server.base}/depot-big-64`;
    const put = await client.put(uri, body, { contentFormat: ContentFormat.OctetStream, blockSize: 64 });
    assert.equal(put.codeText, '2.01');
    const got = await client.get(uri);
    assert.ok(Buffer.from(got.payload).equals(body));
  });

  test('RFC 7959 §2.7: Block1 upload answered with a Block2 body (libcoap -e echoes the 100 KiB PUT)', async () => {
    ready();
    const body = randomBytes(BIG);
    const response = await client.put(`${echoServer.base}/depot-echo`, body, { contentFormat: ContentFormat.OctetStream });
    assert.equal(response.codeText, '2.01');
    assert.equal(response.payload.length, BIG);
    assert.ok(Buffer.from(response.payload).equals(body), 'the echoed body equals what was sent');
  });

  test('RFC 7641 §3.2/§4.2: observing /example_data delivers a notification per PUT, in order, then cancels (§3.6)', async () => {
    ready();
    const uri = `${server.base}/example_data`;
    await client.put(uri, 'initial', { contentFormat: ContentFormat.TextPlain });
    const notifications: ClientResponse[] = [];
    const observation = await withTimeout(
      client.observe(uri, { onNotification: (r) => notifications.push(r) }),
      10_000,
      'the observe registration',
    );
    try {
      assert.ok(observation.established, 'libcoap accepted the observation (Observe option in the first response)');
      assert.equal(observation.first.codeText, '2.05');
      assert.equal(observation.first.text(), 'initial');
      for (const value of ['one', 'two', 'three']) {
        assert.equal((await client.put(uri, value, { contentFormat: ContentFormat.TextPlain })).codeText, '2.04');
        await pollUntil(() => notifications.some((n) => n.text() === value), 5000, `the notification "${value}"`);
      }
      const texts = notifications.map((n) => n.text());
      assert.deepEqual(texts.slice(-3), ['one', 'two', 'three']);
      for (const n of notifications) assert.equal(n.codeText, '2.05');
      const sequences = notifications.map((n) => n.observe);
      for (const s of sequences) assert.ok(s !== undefined, 'every notification carries Observe (§4.2)');
      for (let i = 1; i < sequences.length; i++) assert.ok(sequences[i]! > sequences[i - 1]!, `sequence numbers increase (§4.4): ${sequences.join(',')}`);
    } finally {
      await observation.cancel();
    }
  });

  test('RFC 7641 §4.2: observing /time yields at least 3 notifications (one per second)', { timeout: 15_000 }, async () => {
    ready();
    const notifications: ClientResponse[] = [];
    let third: () => void = () => undefined;
    const gotThree = new Promise<void>((resolve) => (third = resolve));
    const observation = await client.observe(`${server.base}/time`, {
      onNotification: (r) => {
        notifications.push(r);
        if (notifications.length >= 3) third();
      },
    });
    try {
      assert.ok(observation.established);
      await withTimeout(gotThree, 8000, '3 notifications of /time');
      for (const n of notifications) {
        assert.equal(n.codeText, '2.05');
        assert.match(n.text(), /\d\d:\d\d:\d\d/);
      }
      assert.equal(new Set(notifications.map((n) => n.observe)).size, notifications.length, 'distinct sequence numbers');
    } finally {
      await observation.cancel();
    }
  });

  test('RFC 7641 §3.3.1/§3.6: an established observation lasts until cancelled, however short the request timeout', { timeout: 15_000 }, async () => {
    ready();
    // The timeout bounds the wait for the registration's answer (RFC 7252 §4.8.2 MAX_TRANSMIT_WAIT
    // by default, 93 s); it must not end an observation that is delivering notifications.
    const notifications: ClientResponse[] = [];
    const ended: string[] = [];
    let fourth: () => void = () => undefined;
    const gotFour = new Promise<void>((resolve) => (fourth = resolve));
    const observation = await client.observe(
      `${server.base}/time`,
      {
        onNotification: (r) => {
          notifications.push(r);
          if (notifications.length >= 4) fourth();
        },
        onEnd: (reason) => ended.push(reason),
      },
      { timeout: 1500 },
    );
    try {
      assert.ok(observation.established);
      await withTimeout(gotFour, 10_000, `4 notifications of /time (observation ended: ${JSON.stringify(ended)})`);
      assert.deepEqual(ended, [], 'the observation was not ended');
    } finally {
      await observation.cancel();
    }
  });

  test('RFC 6690 §4 / RFC 7252 §7.2: /.well-known/core lists libcoap\'s resources as link-format', async () => {
    ready();
    const response = await client.get(`${server.base}/.well-known/core`);
    assert.equal(response.codeText, '2.05');
    assert.equal(response.contentFormat, ContentFormat.LinkFormat);
    assert.match(response.text(), /<\/time>;[^,]*obs/);
    assert.match(response.text(), /<\/example_data>/);
  });
});

// ---------------------------------------------------------------- libcoap client → Depot server

/** What the streaming upload resource saw. */
interface StreamedUpload {
  chunks: number;
  body: Buffer;
  offsets: number[];
}

describe('libcoap coap-client-notls → Depot CoapServer', () => {
  let coapClient: string;
  let server: CoapServer;
  let base: string;
  let dir: string;
  let observed = 'state-0';
  let bigBody: Buffer;
  let uploaded: Buffer | undefined;
  let streamed: StreamedUpload | undefined;
  let stored = 'stored-0';
  /** Body length seen by each run of the /echo PUT handler. */
  const echoCalls: number[] = [];
  /** State of the resources below the /objects prefix resource, by path. */
  const versions = new Map<string, string>();
  let items = 0;

  /**
   * Runs coap-client-notls; -v 6 prints the PDUs it sends and receives on stdout (-v 7 also
   * every intermediate Block1 exchange and the deregistration of an observation), -B bounds its own wait.
   */
  async function libcoapClient(args: string[], timeoutMs = 15_000, verbosity = 6): Promise<{ output: string; code: number | null }> {
    const result = await runProcess(coapClient, ['-v', String(verbosity), '-B', '10', ...args], { timeoutMs });
    return { output: result.output, code: result.code };
  }

  const ready = suiteSetup(async () => {
    coapClient = requireExecutable('coap-client-notls');
    dir = mkdtempSync(join(tmpdir(), 'depot-libcoap-'));
    bigBody = randomBytes(BIG);
    server = new CoapServer({ transport: await UdpTransport.bind({ host: HOST, port: 0 }) });
    base = `coap://${HOST}:${server.endpoint.transport.address().port}`;
    server.resource('/store', {
      title: 'Store',
      get: () => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: stored }),
      put: (request) => {
        stored = decodeString(request.payload);
        return { code: Code.Changed };
      },
      post: (request) => {
        const name = `item${++items}`;
        const body = Buffer.from(request.payload);
        server.resource(`/store/${name}`, {
          get: () => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: body }),
          delete: () => {
            server.removeResource(`/store/${name}`);
            return { code: Code.Deleted };
          },
        });
        return { code: Code.Created, locationPath: ['store', name] };
      },
    });
    server.resource('/big', { title: 'Big', get: () => ({ code: Code.Content, contentFormat: ContentFormat.OctetStream, payload: bigBody }) });
    server.resource('/upload', {
      put: (request) => {
        uploaded = Buffer.from(request.payload);
        return { code: Code.Changed };
      },
    });
    server.resource('/upload-stream', {
      upload: (): UploadSink => {
        const state: StreamedUpload = { chunks: 0, body: Buffer.alloc(0), offsets: [] };
        const parts: Buffer[] = [];
        return {
          write(chunk, offset) {
            state.chunks++;
            state.offsets.push(offset);
            parts.push(Buffer.from(chunk));
          },
          end() {
            state.body = Buffer.concat(parts);
            streamed = state;
            return { code: Code.Changed };
          },
          abort() {},
        };
      },
    });
    server.resource('/obs', { title: 'Observable', observable: true, get: () => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: observed }) });
    server.resource('/objects', {
      prefix: true,
      observable: true,
      get: (request) => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: `${request.path} ${versions.get(request.path) ?? 'v1'}` }),
    });
    server.resource('/swap', { observable: true, get: () => ({ code: Code.Content, payload: 'old handler' }) });
    server.resource('/echo', {
      put: (request) => {
        echoCalls.push(request.payload.length);
        return { code: Code.Changed, contentFormat: ContentFormat.OctetStream, payload: Buffer.from(request.payload) };
      },
    });
  });

  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('RFC 7252 §5.8.1/§5.2.1: GET → piggybacked 2.05 with Content-Format text/plain', async () => {
    ready();
    const { output } = await libcoapClient([`${base}/store`]);
    const response = onlyResponse(output);
    assert.equal(response.type, 'ACK', 'piggybacked on the ACK (§5.2.1)');
    assert.equal(response.code, '2.05');
    assert.match(response.options, /Content-Format:text\/plain/);
    assert.equal(response.payload, `'${stored}'`);
  });

  test('RFC 7252 §5.8.3: PUT → 2.04 Changed, and the server holds the new text', async () => {
    ready();
    const { output } = await libcoapClient(['-m', 'put', '-e', 'put-by-libcoap', `${base}/store`]);
    assert.equal(onlyResponse(output).code, '2.04');
    assert.equal(stored, 'put-by-libcoap');
  });

  test('RFC 7252 §5.8.2/§5.10.7/§5.8.4: POST → 2.01 with Location-Path, GET it, DELETE → 2.02, then 4.04', async () => {
    ready();
    const post = onlyResponse((await libcoapClient(['-m', 'post', '-e', 'posted body', `${base}/store`])).output);
    assert.equal(post.code, '2.01');
    const location = [...post.options.matchAll(/Location-Path:([^,\s]+)/g)].map((m) => m[1]);
    assert.equal(location.length, 2, `Location-Path options: ${post.options}`);
    const itemUri = `${base}/${location.join('/')}`;
    const get = onlyResponse((await libcoapClient([itemUri])).output);
    assert.equal(get.code, '2.05');
    assert.equal(get.payload, "'posted body'");
    const del = onlyResponse((await libcoapClient(['-m', 'delete', itemUri])).output);
    assert.equal(del.code, '2.02');
    assert.equal(onlyResponse((await libcoapClient([itemUri])).output).code, '4.04');
  });

  test('RFC 7252 §5.9.2.5: a path with no resource → 4.04; §5.9.2.6: a method the resource lacks → 4.05', async () => {
    ready();
    assert.equal(onlyResponse((await libcoapClient([`${base}/no/such/thing`])).output).code, '4.04');
    assert.equal(onlyResponse((await libcoapClient(['-m', 'delete', `${base}/store`])).output).code, '4.05');
  });

  test('RFC 7252 §5.4.1: a request with an unrecognized critical option → 4.02 Bad Option; an unknown elective one is ignored', async () => {
    ready();
    assert.equal(onlyResponse((await libcoapClient(['-O', '9,abc', `${base}/store`])).output).code, '4.02');
    const elective = onlyResponse((await libcoapClient(['-O', '65000,x', `${base}/store`])).output);
    assert.equal(elective.code, '2.05');
  });

  test(
    'RFC 7252 §5.10.8: a PUT with If-None-Match on an existing resource, or If-Match with a stale ETag, is not performed (4.12, or 4.02 if unsupported)',
    async () => {
      ready();
      stored = 'precondition';
      const ifNoneMatch = onlyResponse((await libcoapClient(['-m', 'put', '-O', '5', '-e', 'overwritten', `${base}/store`])).output);
      assert.ok(['4.12', '4.02'].includes(ifNoneMatch.code), `If-None-Match on an existing resource answered ${ifNoneMatch.code}`);
      const ifMatch = onlyResponse((await libcoapClient(['-m', 'put', '-O', '1,0x7777', '-e', 'overwritten', `${base}/store`])).output);
      assert.ok(['4.12', '4.02'].includes(ifMatch.code), `If-Match with an ETag the resource never had answered ${ifMatch.code}`);
      assert.equal(stored, 'precondition', 'the conditional PUTs changed nothing');
    },
  );

  test('RFC 7252 §5.10.2: Proxy-Uri or Proxy-Scheme to a server that is not a forward-proxy → 5.05, never a local resource', async () => {
    ready();
    // coap-client -P sends the request to Depot with Proxy-Uri coap://example.com/store.
    const proxyUri = onlyResponse((await libcoapClient(['-P', base, 'coap://example.com/store'])).output);
    assert.equal(proxyUri.code, '5.05');
    // Proxy-Scheme with Uri-Path /store: the target is http://…/store, not Depot's /store. (coap-client
    // redirects a request carrying -O 39 itself, so Depot's client sends this one.)
    const client = new CoapClient();
    try {
      const proxyScheme = await client.get(`${base}/store`, { options: [{ number: OptionNumber.ProxyScheme, value: encodeString('http') }] });
      assert.equal(proxyScheme.codeText, '5.05');
    } finally {
      await client.close();
    }
  });

  test('RFC 6690 §4 / RFC 7252 §7.2: /.well-known/core → 2.05 application/link-format listing the resources', async () => {
    ready();
    const response = onlyResponse((await libcoapClient([`${base}/.well-known/core`])).output);
    assert.equal(response.code, '2.05');
    assert.match(response.options, /Content-Format:application\/link-format/);
    const links = response.payload ?? '';
    for (const path of ['/store', '/big', '/upload', '/obs']) assert.ok(links.includes(`<${path}>`), `${path} in ${links}`);
    assert.match(links, /<\/obs>;[^,]*obs/, 'the observable resource is marked obs');
    assert.ok(!links.includes('.well-known'), 'the discovery resource itself is not listed');
  });

  test('RFC 6690 §4.1: /.well-known/core?title=Big filtering (query forwarded as Uri-Query)', async () => {
    ready();
    const response = onlyResponse((await libcoapClient([`${base}/.well-known/core?title=Big`])).output);
    assert.equal(response.code, '2.05');
    assert.equal(response.payload, "'</big>;title=\"Big\"'");
  });

  for (const blockSize of [undefined, 64]) {
    test(`RFC 7959 §2.4: a 100 KiB resource read with Block2${blockSize ? ` (${blockSize}-byte blocks asked by the client, §2.3)` : ''} is byte-identical`, async () => {
      ready();
      const file = join(dir, `big-${blockSize ?? 'default'}.out`);
      const { output, code } = await libcoapClient(['-o', file, ...(blockSize ? ['-b', String(blockSize)] : []), `${base}/big`], 30_000);
      assert.equal(code, 0, output.slice(-2000));
      const got = readFileSync(file);
      assert.equal(got.length, BIG);
      assert.ok(got.equals(bigBody), 'the reassembled file equals the served bytes');
      const responses = responsesIn(output);
      const size = blockSize ?? 1024;
      assert.equal(responses.length, BIG / size, 'one response per block');
      for (const r of responses) {
        assert.equal(r.code, '2.05');
        assert.match(r.options, new RegExp(`Block2:\\d+/[_M]/${size}\\b`));
      }
      assert.match(responses[0]!.options, new RegExp(`Size2:${BIG}\\b`), 'Size2 on the first block (RFC 7959 §4)');
    });
  }

  for (const blockSize of [undefined, 128]) {
    test(`RFC 7959 §2.5/§2.9.1: a 100 KiB PUT with Block1${blockSize ? ` in ${blockSize}-byte blocks` : ''}: 2.31 Continue per block, 2.04 at the end, exact bytes received`, async () => {
      ready();
      const body = randomBytes(BIG);
      const file = join(dir, `upload-${blockSize ?? 'default'}.bin`);
      writeFileSync(file, body);
      uploaded = undefined;
      const { output, code } = await libcoapClient(['-m', 'put', '-f', file, ...(blockSize ? ['-b', String(blockSize)] : []), `${base}/upload`], 30_000, 7);
      assert.equal(code, 0, output.slice(-2000));
      const responses = responsesIn(output);
      const size = blockSize ?? 1024;
      assert.equal(responses.length, BIG / size);
      for (const r of responses.slice(0, -1)) assert.equal(r.code, '2.31', `intermediate block answered ${r.code}`);
      assert.equal(responses.at(-1)!.code, '2.04');
      assert.match(responses.at(-1)!.options, new RegExp(`Block1:${BIG / size - 1}/_/${size}\\b`), 'the final response echoes the last Block1 (§2.3)');
      const received = uploaded as Buffer | undefined;
      assert.ok(received, 'the PUT handler ran');
      assert.equal(received.length, BIG);
      assert.ok(received.equals(body), 'the server received the exact bytes');
    });
  }

  test(
    'RFC 7959 §2.7/§3.3: a Block1 PUT whose response needs Block2: the rest of the response comes from the kept body, the handler runs once',
    async () => {
      ready();
      const body = randomBytes(10 * 1024);
      const file = join(dir, 'echo.bin');
      const out = join(dir, 'echo.out');
      writeFileSync(file, body);
      echoCalls.length = 0;
      const { output, code } = await libcoapClient(['-m', 'put', '-f', file, '-o', out, `${base}/echo`], 30_000, 7);
      assert.equal(code, 0, output.slice(-2000));
      // coap-client asks for blocks 1… of the response with PUT + Block2 and no payload (RFC 7959 §3.3, Figure 12).
      assert.deepEqual(echoCalls, [body.length], 'the PUT handler ran once, with the whole body');
      assert.ok(readFileSync(out).equals(body), 'the response body, assembled from Block2, is the echoed upload');
    },
  );

  test('RFC 7959 §2.5: a 100 KiB Block1 PUT streamed into an UploadSink arrives in order, byte-identical', async () => {
    ready();
    const body = randomBytes(BIG);
    const file = join(dir, 'upload-stream.bin');
    writeFileSync(file, body);
    streamed = undefined;
    const { output, code } = await libcoapClient(['-m', 'put', '-f', file, `${base}/upload-stream`], 30_000);
    assert.equal(code, 0);
    assert.equal(responsesIn(output).at(-1)!.code, '2.04');
    const sink = streamed as StreamedUpload | undefined;
    assert.ok(sink, 'the upload sink was ended');
    assert.equal(sink.chunks, BIG / 1024);
    assert.deepEqual(sink.offsets, Array.from({ length: BIG / 1024 }, (_, i) => i * 1024));
    assert.ok(sink.body.equals(body));
  });

  test('RFC 7641 §3.1/§4.2: coap-client -s observes, gets 3 notifications from notifyChanged, then deregisters (§3.6)', { timeout: 20_000 }, async () => {
    ready();
    observed = 'state-0';
    const watcher = new PeerProcess(coapClient, ['-v', '7', '-B', '10', '-w', '-s', '4', `${base}/obs`]);
    try {
      await pollUntil(() => server.observerCount('/obs') === 1, 5000, 'the observe registration at the Depot server');
      await watcher.waitForOutput(/:: 'state-0'/, 5000);
      for (let k = 1; k <= 3; k++) {
        observed = `state-${k}`;
        server.notifyChanged('/obs');
        await watcher.waitForOutput(new RegExp(`:: 'state-${k}'`), 5000);
      }
      const status = await watcher.waitForExit(10_000);
      assert.equal(status.code, 0, watcher.output.slice(-2000));
      const responses = responsesIn(watcher.stdout);
      assert.deepEqual(
        responses.map((r) => r.payload),
        ["'state-0'", "'state-1'", "'state-2'", "'state-3'"],
        'the registration response and three notifications',
      );
      assert.equal(responses[0]!.type, 'ACK');
      for (const r of responses.slice(1)) assert.equal(r.type, 'NON', 'notifications go as NON while the observer is fresh (§4.5)');
      const sequences = responses.map((r) => Number(optionValue(r.options, 'Observe')));
      for (const s of sequences) assert.ok(Number.isInteger(s), `Observe in ${JSON.stringify(responses)}`);
      for (let i = 1; i < sequences.length; i++) assert.ok(sequences[i]! > sequences[i - 1]!, `sequence numbers increase (§4.4): ${sequences.join(',')}`);
      // libcoap ends with GET Observe=1 (and exits without waiting for the answer); Depot must drop the observer.
      assert.ok(pduLines(watcher.stdout).some((l) => l.code === 'GET' && optionValue(l.options, 'Observe') === '1'), 'coap-client deregistered');
      await pollUntil(() => server.observerCount('/obs') === 0, 3000, 'the observer to be removed');
    } finally {
      await watcher.stop();
    }
  });

  /** Starts `coap-client -s` on a path and waits until Depot holds the observation and the first answer arrived. */
  async function observeWithLibcoap(path: string, routePath: string, firstPayload: string): Promise<PeerProcess> {
    const before = server.observerCount(routePath);
    const watcher = new PeerProcess(coapClient, ['-v', '7', '-B', '10', '-w', '-s', '10', `${base}${path}`]);
    await pollUntil(() => server.observerCount(routePath) === before + 1, 5000, `the observation of ${path}`);
    await watcher.waitForOutput(new RegExp(`:: '${firstPayload}'`), 5000);
    return watcher;
  }

  test('RFC 7641 §4.2: notifyChanged("/objects/1") does not notify an observer of the sibling /objects/10 (prefix resource)', { timeout: 20_000 }, async () => {
    ready();
    const watcher = await observeWithLibcoap('/objects/10', '/objects', '/objects/10 v1');
    try {
      versions.set('/objects/1', 'v2');
      server.notifyChanged('/objects/1');
      versions.set('/objects/10', 'v2');
      server.notifyChanged('/objects/10');
      await watcher.waitForOutput(/:: '\/objects\/10 v2'/, 5000);
      // Notifications go NON over loopback from one socket, so they arrive in the order sent.
      assert.deepEqual(
        responsesIn(watcher.stdout).map((r) => r.payload),
        ["'/objects/10 v1'", "'/objects/10 v2'"],
        'only the change of /objects/10 itself is notified',
      );
    } finally {
      await watcher.stop();
      versions.clear();
    }
  });

  test('RFC 7641 §4.2: after a resource is registered again, its observers are notified with the new GET handler', { timeout: 20_000 }, async () => {
    ready();
    const watcher = await observeWithLibcoap('/swap', '/swap', 'old handler');
    try {
      server.resource('/swap', { observable: true, get: () => ({ code: Code.Content, payload: 'new handler' }) });
      assert.equal(server.observerCount('/swap'), 1, 'the observation survives the re-registration');
      server.notifyChanged('/swap');
      await watcher.waitForOutput(/:: '(new|old) handler'[^]*:: '(new|old) handler'/, 5000);
      assert.deepEqual(responsesIn(watcher.stdout).map((r) => r.payload), ["'old handler'", "'new handler'"]);
    } finally {
      await watcher.stop();
      server.resource('/swap', { observable: true, get: () => ({ code: Code.Content, payload: 'old handler' }) });
    }
  });

  test('RFC 7641 §3.2: removing /objects/7 does not end the observation of /objects/5 served by the /objects prefix', { timeout: 20_000 }, async () => {
    ready();
    const watcher = await observeWithLibcoap('/objects/5', '/objects', '/objects/5 v1');
    try {
      server.resource('/objects/7', { get: () => ({ code: Code.Content, payload: 'seven' }) });
      assert.equal(server.observerCount('/objects/7'), 0, 'nobody observes /objects/7');
      server.removeResource('/objects/7');
      versions.set('/objects/5', 'v2');
      server.notifyChanged('/objects/5');
      await watcher.waitForOutput(/c:(2\.05|4\.04) [^\n]*\n(?:[^]*)c:(2\.05|4\.04) /, 5000);
      const responses = responsesIn(watcher.stdout);
      assert.deepEqual(
        responses.map((r) => `${r.code} ${r.payload ?? ''}`),
        ["2.05 '/objects/5 v1'", "2.05 '/objects/5 v2'"],
        'no 4.04 ends the observation of /objects/5; it still gets notifications',
      );
      assert.equal(server.observerCount('/objects'), 1);
    } finally {
      await watcher.stop();
      versions.clear();
    }
  });
});

// ---------------------------------------------------------------- the depot CLI against both servers

describe('depot coap get (built CLI) → both servers', () => {
  let libcoap: LibcoapServer;
  let depot: CoapServer;
  let depotBase: string;

  const ready = suiteSetup(async () => {
    assert.ok(existsSync(DEPOT_CLI), `the CLI is not built: ${DEPOT_CLI} (run npm run build)`);
    libcoap = await startLibcoapServer(requireExecutable('coap-server-notls'), []);
    depot = new CoapServer({ transport: await UdpTransport.bind({ host: HOST, port: 0 }) });
    depot.resource('/depot/info', { title: 'Depot server information', get: () => ({ code: Code.Content, payload: '{}' }) });
    depotBase = `coap://${HOST}:${depot.endpoint.transport.address().port}`;
  });

  after(async () => {
    await depot?.close();
    await libcoap?.process.stop();
  });

  async function depotCoap(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const result = await runProcess(process.execPath, [DEPOT_CLI, 'coap', ...args], { timeoutMs: 20_000 });
    return { code: result.code, stdout: result.stdout.toString('utf8'), stderr: result.stderr };
  }

  test('RFC 6690 §4: depot coap get …/.well-known/core against a Depot server', async () => {
    ready();
    const r = await depotCoap('get', `${depotBase}/.well-known/core`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^2\.05 /);
    assert.equal(r.stdout.trim(), '</depot/info>;title="Depot server information"');
  });

  test('RFC 6690 §4: depot coap get …/.well-known/core against libcoap', async () => {
    ready();
    const r = await depotCoap('get', `${libcoap.base}/.well-known/core`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^2\.05 /);
    assert.match(r.stdout, /<\/time>;[^,]*obs/);
    assert.match(r.stdout, /<\/example_data>/);
  });

  test('RFC 7252 §5.9.2.5: depot coap get on a missing path exits 1 and prints 4.04 (both servers)', async () => {
    ready();
    for (const base of [depotBase, libcoap.base]) {
      const r = await depotCoap('get', `${base}/missing`);
      assert.equal(r.code, 1, `${base}: ${r.stderr}`);
      assert.match(r.stderr, /^4\.04 /);
    }
  });
});
