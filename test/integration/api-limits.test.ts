/**
 * Resource limits of the HTTP API over real sockets: partial requests are dropped after the
 * configured timeouts, bodies and headers have size limits, path parameters are checked, and
 * package uploads stream to a temporary file that an aborted or oversized upload leaves behind
 * neither on disk nor in the catalog.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { RunningDepotServer } from '../../src/app/server.js';
import { startApiTestServer, type ApiTestServer } from '../support/api-server.js';
import { apiCall, rawRequest } from '../support/api-client.js';
import { makePackage } from '../unit/lwm2m/object9-support.js';

const TOKEN = 'limits-test-token-93ab';
const HEADERS_TIMEOUT_MS = 300;
const REQUEST_TIMEOUT_MS = 1500;
const KEEP_ALIVE_TIMEOUT_MS = 300;
const MAX_PACKAGE_BYTES = 200 * 1024;

let testServer: ApiTestServer;
let server: RunningDepotServer;
let port: number;
let base: string;

before(async () => {
  testServer = await startApiTestServer('limits', TOKEN, {
    limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS },
    maxPackageBytes: MAX_PACKAGE_BYTES,
  });
  ({ server, port } = testServer);
  base = `http://127.0.0.1:${port}`;
});

const connections: Socket[] = [];

after(async () => {
  // A connection a failed test left open would keep the server from closing.
  for (const socket of connections) socket.destroy();
  await testServer.close();
});

/** A raw connection: what it received, and when the server closed it. */
interface Connection {
  socket: Socket;
  received: () => string;
  closed: Promise<number>;
}

async function open(): Promise<Connection> {
  const socket = connect({ host: '127.0.0.1', port });
  connections.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const catalogTempFiles = (): string[] => readdirSync(server.catalog.dir).filter((f) => f.startsWith('.'));
const catalogCount = async (): Promise<number> => (await server.catalog.list({ limit: 1000 })).items.length;
const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
const bodyOf = (text: string): Record<string, unknown> => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;

test('a request whose headers never end is answered 408 and closed after the headers timeout', async () => {
  const c = await open();
  const started = Date.now();
  c.socket.write(`GET /api/v1/devices HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n`);
  const closedAt = await within(c.closed, HEADERS_TIMEOUT_MS * 10, 'the server did not close the half-sent request');
  assert.ok(closedAt - started >= HEADERS_TIMEOUT_MS * 0.8, `closed after ${closedAt - started} ms, before the timeout`);
  assert.equal(statusOf(c.received()), 408);
});

test('a request whose body never ends is closed after the request timeout', async () => {
  const c = await open();
  const started = Date.now();
  c.socket.write(`POST /api/v1/devices/some-ep/read HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"path":`);
  // Trickling keeps the connection busy but does not extend the deadline.
  const trickle = setInterval(() => c.socket.write(' '), 100);
  try {
    const closedAt = await within(c.closed, REQUEST_TIMEOUT_MS * 4, 'the server did not close the slow request');
    assert.ok(closedAt - started >= REQUEST_TIMEOUT_MS * 0.8, `closed after ${closedAt - started} ms`);
    assert.equal(statusOf(c.received()), 408);
  } finally {
    clearInterval(trickle);
  }
});

test('an idle keep-alive connection is closed after the keep-alive timeout', async () => {
  const c = await open();
  c.socket.write(`GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  await within(c.closed, KEEP_ALIVE_TIMEOUT_MS * 10, 'the idle connection stayed open');
  assert.equal(statusOf(c.received()), 200);
});

test('connections over the per-source cap are closed before a byte is read; a freed slot serves again', async () => {
  const capped = await startApiTestServer('conncap', TOKEN, { limits: { maxConnectionsPerSource: 3 } });
  const sockets: Socket[] = [];
  try {
    const capPort = capped.port;
    const held = await Promise.all([0, 1, 2].map(async () => {
      const socket = connect({ host: '127.0.0.1', port: capPort });
      sockets.push(socket);
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('connect', resolve));
      return socket;
    }));
    // The fourth from the same address is closed at once, with no answer (it could be an idle flood).
    const fourth = connect({ host: '127.0.0.1', port: capPort });
    sockets.push(fourth);
    fourth.on('error', () => undefined);
    const chunks: Buffer[] = [];
    fourth.on('data', (c: Buffer) => chunks.push(c));
    fourth.once('connect', () => fourth.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    await within(new Promise((resolve) => fourth.once('close', resolve)), 5000, 'the connection over the cap stayed open');
    assert.equal(chunks.length, 0, 'nothing answered over the cap');
    // The held connections still work, and a freed slot takes a new connection.
    held[0]!.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    const reply: Buffer[] = [];
    held[0]!.on('data', (c: Buffer) => reply.push(c));
    await within(new Promise((resolve) => held[0]!.once('close', resolve)), 5000, 'the held connection did not answer');
    assert.equal(statusOf(Buffer.concat(reply).toString('latin1')), 200);
    const again = await fetch(`http://127.0.0.1:${capPort}/api/health`);
    assert.equal(again.status, 200);
  } finally {
    for (const socket of sockets) socket.destroy();
    await capped.close();
  }
});

test('JSON bodies over 64 KiB are refused with 413; request heads over 16 KiB with 431', async () => {
  const big = JSON.stringify({ path: '/3/0/0', pad: 'x'.repeat(70 * 1024) });
  const tooLarge = await rawRequest(port, 'POST', '/api/v1/devices/some-ep/read', { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: big });
  assert.equal(tooLarge.status, 413);
  assert.equal((JSON.parse(tooLarge.body) as { error: string }).error, 'PAYLOAD_TOO_LARGE');
  // Just under the limit is read and handled (a long string value to write; the device unknown).
  const fits = await rawRequest(port, 'POST', '/api/v1/devices/some-ep/write', { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ path: '/3/0/14', value: { type: 'string', value: 'x'.repeat(60 * 1024) } }) });
  assert.equal(fits.status, 404);
  assert.equal((JSON.parse(fits.body) as { error: string }).error, 'NOT_REGISTERED');
  const hugeHeader = await rawRequest(port, 'GET', '/api/health', { headers: { 'x-pad': 'y'.repeat(20 * 1024) } });
  assert.equal(hugeHeader.status, 431);
});

test('endpoint names in paths: control bytes and names over 255 characters are 400; other names reach the store', async () => {
  const get = (target: string) => rawRequest(port, 'GET', target, { headers: { authorization: `Bearer ${TOKEN}` } });
  for (const bad of ['a%00b', '%0a', 'x%0d%0aSet-Cookie:%20y', 'del%7f', 'c1%c2%85', 'x'.repeat(256), '%78'.repeat(256)]) {
    const answer = await get(`/api/v1/devices/${bad}`);
    assert.equal(answer.status, 400, bad);
    assert.equal((JSON.parse(answer.body) as { error: string }).error, 'BAD_REQUEST', bad);
    assert.equal((await rawRequest(port, 'POST', `/api/v1/devices/${bad}/read`, { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"path":"/3/0/0"}' })).status, 400, bad);
  }
  for (const fine of ['x'.repeat(255), 'd%C3%A9vice-7', 'urn:imei:490154203237518']) {
    const answer = await get(`/api/v1/devices/${fine}`);
    assert.equal(answer.status, 404, fine);
    assert.equal((JSON.parse(answer.body) as { error: string }).error, 'NOT_REGISTERED', fine);
  }
  assert.equal((await get('/api/v1/devices?endpointPrefix=a%00')).status, 400);
  assert.equal((await get(`/api/v1/devices?endpointPrefix=${'p'.repeat(256)}`)).status, 400);
  assert.equal((await get('/api/v1/devices?endpointPrefix=')).status, 200);
  const instance = await rawRequest(port, 'POST', '/api/v1/devices/some-ep/software/abc/activate', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(instance.status, 400);
});

test('a package upload streams to the catalog: 201, the same bytes on disk, no temporary file left', async () => {
  const pkg = makePackage({ name: 'streamed', version: '1.0.0', files: [{ path: 'data', data: randomBytes(120 * 1024) }] });
  const added = await apiCall(base, TOKEN, '/api/v1/packages', { bytes: pkg });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.body.name, 'streamed');
  assert.equal(added.body.size, pkg.length);
  assert.deepEqual(readFileSync(server.catalog.pathOf(added.body.sha256 as string)), pkg);
  assert.equal((await apiCall(base, TOKEN, `/api/v1/packages/${added.body.sha256 as string}`)).status, 200);
  assert.deepEqual(catalogTempFiles(), []);
});

test('an upload aborted mid-body: the partial file was on disk, not in memory, and is removed; the catalog is unchanged', async () => {
  const before = await catalogCount();
  const pkg = makePackage({ name: 'aborted', version: '1.0.0', files: [{ path: 'data', data: randomBytes(150 * 1024) }] });
  const c = await open();
  c.socket.write(`POST /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${pkg.length}\r\n\r\n`);
  c.socket.write(pkg.subarray(0, pkg.length >> 1));
  // The half already sent is in a temporary file in the catalog's directory.
  const deadline = Date.now() + 5000;
  let partial = 0;
  while (Date.now() < deadline && partial < pkg.length >> 1) {
    const [temp] = catalogTempFiles();
    partial = temp ? statSync(join(server.catalog.dir, temp)).size : 0;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(partial, pkg.length >> 1, 'the received half is written to a temporary file as it arrives');
  c.socket.destroy();
  while (catalogTempFiles().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(catalogTempFiles(), [], 'the temporary file is removed');
  assert.equal(await catalogCount(), before);
  assert.deepEqual(readdirSync(server.catalog.dir).filter((f) => f.length === 64).length, before, 'no package file was added');
  // The server is fine afterwards.
  assert.equal((await apiCall(base, TOKEN, '/api/v1/packages')).status, 200);
});

test('an upload over the limit is refused with 413 and a clear message, whether its length is declared or chunked; nothing is kept', async () => {
  const before = await catalogCount();
  const oversized = makePackage({ name: 'too-big', version: '1.0.0', files: [{ path: 'data', data: randomBytes(MAX_PACKAGE_BYTES + 10_000) }] });

  // Declared: refused from the headers, before the body is read.
  const declared = await open();
  declared.socket.write(`POST /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${oversized.length}\r\n\r\n`);
  declared.socket.write(oversized.subarray(0, 1000));
  await within(declared.closed, 5000, 'no answer to the declared oversized upload');
  assert.equal(statusOf(declared.received()), 413);
  const tooLarge = `the package is larger than the upload limit of ${MAX_PACKAGE_BYTES} bytes`;
  assert.deepEqual(bodyOf(declared.received()), { type: 'about:blank', title: 'Payload Too Large', status: 413, error: 'TOO_LARGE', detail: tooLarge, message: tooLarge });

  // Chunked (no length given): refused once the limit is passed while streaming.
  const chunked = await open();
  chunked.socket.write(`POST /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`);
  for (let at = 0; at < oversized.length; at += 16 * 1024) {
    const piece = oversized.subarray(at, at + 16 * 1024);
    chunked.socket.write(`${piece.length.toString(16)}\r\n`);
    chunked.socket.write(piece);
    chunked.socket.write('\r\n');
  }
  chunked.socket.write('0\r\n\r\n');
  await within(chunked.closed, 5000, 'no answer to the chunked oversized upload');
  assert.equal(statusOf(chunked.received()), 413);
  assert.equal(bodyOf(chunked.received()).error, 'TOO_LARGE');

  assert.deepEqual(catalogTempFiles(), []);
  assert.equal(await catalogCount(), before);
});

test('an upload without the token is refused before its body is read, and the connection closed', async () => {
  const c = await open();
  c.socket.write(`POST /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`);
  c.socket.write(randomBytes(64 * 1024));
  await within(c.closed, 5000, 'the anonymous upload was not closed');
  assert.equal(statusOf(c.received()), 401);
  assert.match(c.received(), /\r\nconnection: close\r\n/i);
  assert.deepEqual(catalogTempFiles(), []);
});

test('an upload that is not a package is refused with 400 and leaves nothing behind', async () => {
  const before = await catalogCount();
  const garbage = await apiCall(base, TOKEN, '/api/v1/packages', { bytes: randomBytes(5000) });
  assert.equal(garbage.status, 400);
  assert.equal(garbage.body.error, 'CORRUPT_PACKAGE');
  const empty = await rawRequest(port, 'POST', '/api/v1/packages', { headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' } });
  assert.equal(empty.status, 400);
  assert.deepEqual(catalogTempFiles(), []);
  assert.equal(await catalogCount(), before);
});
