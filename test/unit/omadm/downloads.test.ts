/**
 * Package downloads on the OMA DM endpoint (`GET /pkg/<token>`, the SCOMO PkgURL): the token
 * resolves to a file, Range (RFC 9110 §14) serves the rest of a partial download with 206 and
 * Content-Range, a range past the end is 416, an unknown token 404, HEAD only the headers; the
 * bytes served are reported for the job's progress.
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OmaDmHttpServer, parseByteRange } from '../../../src/omadm/http.js';

const bytes = randomBytes(10_000);
const served: number[] = [];
let dir: string;
let server: OmaDmHttpServer;
let base: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-omadm-dl-'));
  writeFileSync(join(dir, 'p'), bytes);
  server = new OmaDmHttpServer({
    store: { omadmAccounts: { get: () => Promise.resolve(null), setNonce: () => Promise.resolve(false) }, deviceFacts: { upsert: () => Promise.reject(new Error('unused')) } },
    host: '127.0.0.1', port: 0, insecureHttp: true,
    downloads: { resolve: (t) => Promise.resolve(t === 'good-token' ? { jobId: 'j1', path: join(dir, 'p'), size: bytes.length } : undefined), served: (_j, end) => void served.push(end) },
  });
  base = `http://127.0.0.1:${await server.listen()}`;
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the whole package, then the rest from an offset (206, Content-Range), a piece (bytes=N-M), past the end 416, unknown token 404, HEAD', async () => {
  const all = await get('/pkg/good-token');
  assert.equal(all.status, 200);
  assert.ok(all.body.equals(bytes));
  assert.equal(all.headers['accept-ranges'], 'bytes');
  const rest = await get('/pkg/good-token', { range: 'bytes=4000-' });
  assert.equal(rest.status, 206);
  assert.equal(rest.headers['content-range'], `bytes 4000-9999/${bytes.length}`);
  assert.ok(rest.body.equals(bytes.subarray(4000)));
  const piece = await get('/pkg/good-token', { range: 'bytes=100-199' });
  assert.equal(piece.status, 206);
  assert.ok(piece.body.equals(bytes.subarray(100, 200)));
  const past = await get('/pkg/good-token', { range: 'bytes=10000-' });
  assert.equal(past.status, 416);
  assert.equal(past.headers['content-range'], `bytes */${bytes.length}`);
  assert.equal((await get('/pkg/other')).status, 404);
  assert.equal((await get('/pkg/good-token/x')).status, 405, 'only /pkg/<token>');
  const head = await get('/pkg/good-token', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(bytes.length));
  assert.ok(served.includes(bytes.length), 'progress reported');
});

test('parseByteRange: the forms a resuming client sends, and what is ignored', () => {
  assert.deepEqual(parseByteRange('bytes=5-', 10), { start: 5, end: 9 });
  assert.deepEqual(parseByteRange('bytes=5-100', 10), { start: 5, end: 9 });
  assert.equal(parseByteRange('bytes=10-', 10), 'unsatisfiable');
  assert.equal(parseByteRange('bytes=6-5', 10), 'unsatisfiable');
  assert.equal(parseByteRange('bytes=-5', 10), undefined);
  assert.equal(parseByteRange('bytes=0-1,4-5', 10), undefined);
  assert.equal(parseByteRange(undefined, 10), undefined);
});
