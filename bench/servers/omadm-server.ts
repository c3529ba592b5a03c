/**
 * The server side of `npm run bench:omadm` (a child process, pinned to its core):
 *   depot  Depot's OMA DM endpoint (OmaDmHttpServer over TLS, a real SQLite store with the phones'
 *          accounts), each session: authenticate, DevInfo/DevDetail, one Get and one Replace;
 *   ref    node:https answering every POST with a fixed body of the size given: the ceiling
 *          of Node's own HTTPS server for the same number of requests of the same sizes.
 * Prints one JSON line {port, caPem} when listening; on a "gc" line on stdin it runs a full
 * GC and prints {heapUsed, rss}. "prof-start" and "prof-stop <file>" take a V8 CPU profile of the
 * part of the run in between (startup excluded), written as a .cpuprofile, and print {profile}.
 */
import { createServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileSync } from 'node:fs';
import { Session as InspectorSession } from 'node:inspector/promises';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { OmaDmHttpServer } from '../../src/omadm/http.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { softWriteStats } from '../../src/store/sqlite/batch.js';

const [mode = 'depot', phonesText = '1000', password = 'bench-password', replyBytesText = '1500'] = process.argv.slice(2);
const ca = await CertificateAuthority.create();
const issued = await ca.issueServerCertificate({ names: ['127.0.0.1'] });
const tls = { cert: issued.certificatePem, key: issued.privateKeyPem! };
let port: number;
let cleanup = (): void => {};

if (mode === 'ref') {
  const reply = Buffer.alloc(Number(replyBytesText), 'x');
  const server = createServer(tls, (req, res) => {
    req.on('data', () => {});
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/vnd.syncml.dm+xml', 'content-length': reply.length }).end(reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
} else {
  const dir = mkdtempSync(join(tmpdir(), 'depot-bench-omadm-'));
  const store = openSqliteStore({ dataDir: dir, secretKey: randomBytes(32) });
  for (let i = 1; i <= Number(phonesText); i++) {
    const deviceId = `IMEI:35${String(i).padStart(13, '0')}`;
    await store.omadmAccounts.put({ deviceId, clientUsername: deviceId, clientPassword: password }, randomBytes(16), Date.now());
  }
  let n = 0;
  const server = new OmaDmHttpServer({
    store, host: '127.0.0.1', port: 0, tls,
    // Per session one Get and one Replace after the facts (issue 14's benchmark session).
    jobsFor: () => [{ id: `g${++n}`, kind: 'Get', uri: './DevDetail/FwV' }, { id: `r${n}`, kind: 'Replace', uri: './Vendor/Bench', data: 'v', format: 'chr' }],
    throttleFailuresPerSource: 1_000_000,
    maxSessions: 100_000,
  });
  port = await server.listen();
  cleanup = () => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  };
}
process.stdout.write(`${JSON.stringify({ port, caPem: ca.exportRoot('pem') })}\n`);
const rl = createInterface({ input: process.stdin });
let profiler: InspectorSession | undefined;
rl.on('line', (line) => {
  const [word, arg] = line.trim().split(/\s+/, 2);
  if (word === 'prof-start') {
    profiler = new InspectorSession();
    profiler.connect();
    void profiler.post('Profiler.enable')
      .then(() => profiler!.post('Profiler.setSamplingInterval', { interval: 100 }))
      .then(() => profiler!.post('Profiler.start'))
      .then(() => process.stdout.write('{"profiling":true}\n'));
    return;
  }
  if (word === 'prof-stop' && profiler !== undefined && arg !== undefined) {
    const p = profiler;
    void p.post('Profiler.stop').then(({ profile }) => {
      writeFileSync(arg, JSON.stringify(profile));
      p.disconnect();
      process.stdout.write(`${JSON.stringify({ profile: arg })}\n`);
    });
    return;
  }
  if (word === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ heapUsed: m.heapUsed, rss: m.rss, cpu: process.cpuUsage(), writes: softWriteStats() })}\n`);
  }
});
rl.on('close', () => {
  cleanup();
  process.exit(0);
});
