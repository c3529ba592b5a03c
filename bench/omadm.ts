/**
 * OMA DM benchmark (issue 14): complete DM sessions per second against Depot's DM endpoint over
 * TLS, with simulated phones (src/sim/omadm), in XML and in WBXML; server CPU per session and
 * memory per open session; and, in the same run, the ceiling of Node's own HTTPS server
 * answering the same number of requests of the same sizes (the target: Depot at least 0.5x).
 *
 * One session: Package 1 (Alert 1201, DevInfo) with MD5 over the nonce of the previous session,
 * the server's Gets of ./DevInfo and ./DevDetail (11 leaves), one Get and one Replace, and the
 * completion: the phones run one session first (warm-up: the first digest of a new phone fails
 * by design and costs a round trip), then the measured one.
 *
 *   npm run bench:omadm                        # 1,000 phones, xml and wbxml
 *   npm run bench:omadm -- --phones 200 --concurrency 20
 */
import { request as httpsRequest, Agent } from 'node:https';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { AuthType, md5Credential } from '../src/omadm/auth.js';
import { AlertCode } from '../src/omadm/status-codes.js';
import { SYNCML_DM_WBXML, SYNCML_DM_XML, encodeSyncML } from '../src/omadm/syncml.js';
import type { SyncMLEncoding } from '../src/omadm/syncml.js';
import { DmPhone, phoneTree } from '../src/sim/omadm/phone.js';
import type { DmTransport } from '../src/sim/omadm/phone.js';
import { launch, listOption, numberOption, stopChild, type Tracked } from './support/children.js';
import { PINNING, cpuSeconds, machineBusySeconds, pinned } from './support/proc.js';

const USAGE = `usage: node dist/bench/omadm.js [--phones n] [--concurrency n] [--encodings xml,wbxml] [--open n]
  --phones <n>        simulated phones (default 1000)
  --concurrency <n>   sessions in flight (default 50)
  --encodings <list>  xml,wbxml (default both)
  --open <n>          sessions left open for the memory figure (default 1000)
  --profile <dir>     V8 CPU profile of the server during the measured round (one .cpuprofile per encoding)`;

const { values } = parseArgs({ options: { phones: { type: 'string' }, concurrency: { type: 'string' }, encodings: { type: 'string' }, open: { type: 'string' }, profile: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const PHONES = numberOption(values.phones, 1000, 'phones');
const CONCURRENCY = numberOption(values.concurrency, 50, 'concurrency');
const OPEN = numberOption(values.open, 1000, 'open');
const ENCODINGS = listOption(values.encodings, ['xml', 'wbxml'] as const, 'encodings');
const PASSWORD = 'bench-password';
const SERVER = fileURLToPath(new URL('./servers/omadm-server.js', import.meta.url));

interface Child { tracked: Tracked; port: number; caPem: string; next: () => Promise<string> }

async function startChild(args: string[]): Promise<Child> {
  const [cmd, argv] = pinned(1, process.execPath, ['--expose-gc', SERVER, ...args]);
  const tracked = launch('omadm-server', cmd, argv);
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  tracked.onLine((l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const next = (): Promise<string> => (lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((resolve) => waiters.push(resolve)));
  const first = JSON.parse(await next()) as { port: number; caPem: string };
  return { tracked, port: first.port, caPem: first.caPem, next };
}

interface GcReading { heapUsed: number; rss: number; writes?: { writes: number; commits: number; largestBatch: number } }

async function gcReading(child: Child): Promise<GcReading> {
  child.tracked.child.stdin!.write('gc\n');
  return JSON.parse(await child.next()) as GcReading;
}

/** HTTPS with one keep-alive agent (as a phone's stack keeps its connection), counting bytes. */
function countingTransport(caPem: string, agent: Agent, counts: { requests: number; reqBytes: number; resBytes: number }): DmTransport {
  return {
    post(url, body, headers) {
      return new Promise((resolve, reject) => {
        const req = httpsRequest(url, { method: 'POST', agent, ca: caPem, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const b = Buffer.concat(chunks);
            counts.requests++;
            counts.reqBytes += body.length;
            counts.resBytes += b.length;
            resolve({ status: res.statusCode ?? 0, body: b, contentType: String(res.headers['content-type'] ?? '') });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}

async function inParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

interface Row { encoding: SyncMLEncoding; sessionsPerSec: number; cpuMsPerSession: number; refCpuMsPerSession: number; clientCpuMsPerSession: number; reqPerSession: number; reqBytes: number; resBytes: number; refSessionsPerSec: number; openKiB: number; foreign: number }

async function run(encoding: SyncMLEncoding): Promise<Row> {
  const depot = await startChild(['depot', String(PHONES), PASSWORD]);
  const url = `https://127.0.0.1:${depot.port}/dm`;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const warm = { requests: 0, reqBytes: 0, resBytes: 0 };
  const phones = Array.from({ length: PHONES }, (_, i) => {
    const deviceId = `IMEI:35${String(i + 1).padStart(13, '0')}`;
    return new DmPhone({ deviceId, username: deviceId, password: PASSWORD, encoding, auth: 'md5', tree: phoneTree(deviceId, i) }, countingTransport(depot.caPem, agent, warm));
  });
  await inParallel(phones, async (p) => void (await p.runSession(url)));
  // The measured round: every phone's second session.
  const counts = { requests: 0, reqBytes: 0, resBytes: 0 };
  const measured = phones.map((p) => new DmPhone(p.profile, countingTransport(depot.caPem, agent, counts)));
  measured.forEach((m, i) => (m.nonce = phones[i]!.nonce));
  if (values.profile !== undefined) {
    depot.tracked.child.stdin!.write('prof-start\n');
    await depot.next();
  }
  const cpu0 = cpuSeconds(depot.tracked.child.pid!) ?? 0;
  const self0 = cpuSeconds('self') ?? 0;
  const busy0 = machineBusySeconds();
  const t0 = process.hrtime.bigint();
  let completed = 0;
  await inParallel(measured, async (p) => {
    if ((await p.runSession(url)).ended === 'completed') completed++;
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const serverCpu = (cpuSeconds(depot.tracked.child.pid!) ?? 0) - cpu0;
  const clientCpu = (cpuSeconds('self') ?? 0) - self0;
  // Other work on the machine during the measured round (the phones run in this process).
  const foreign = Math.max(0, (machineBusySeconds() - busy0 - serverCpu - clientCpu) / seconds);
  if (values.profile !== undefined) {
    mkdirSync(values.profile, { recursive: true });
    depot.tracked.child.stdin!.write(`prof-stop ${resolve(values.profile, `omadm-${encoding}.cpuprofile`)}\n`);
    process.stdout.write(`profile: ${(JSON.parse(await depot.next()) as { profile: string }).profile}\n`);
  }
  if (completed !== PHONES) throw new Error(`${PHONES - completed} sessions did not complete`);
  // Memory per open session: Package 1 accepted, the session left open in the table.
  const before = await gcReading(depot);
  if (before.writes !== undefined) process.stdout.write(`${encoding}: store group commit, warm-up and measured round: ${before.writes.writes} writes in ${before.writes.commits} commits (largest ${before.writes.largestBatch})\n`);
  const openCounts = { requests: 0, reqBytes: 0, resBytes: 0 };
  const openers = measured.slice(0, Math.min(OPEN, PHONES));
  const t = countingTransport(depot.caPem, agent, openCounts);
  await inParallel(openers, async (p) => {
    const body = encodeSyncML({
      header: {
        verDTD: '1.2', verProto: 'DM/1.2', sessionId: 'FF', msgId: '1', target: { locUri: url }, source: { locUri: p.profile.deviceId },
        cred: { meta: { type: AuthType.Md5, format: 'b64' }, data: md5Credential(p.profile.deviceId, PASSWORD, p.nonce) }, meta: { maxMsgSize: 16384 },
      },
      commands: [{ kind: 'Alert', cmdId: '1', code: AlertCode.ClientInitiatedManagement }],
      final: true,
    }, encoding);
    await t.post(url, body, { 'content-type': encoding === 'xml' ? SYNCML_DM_XML : SYNCML_DM_WBXML });
  });
  const after = await gcReading(depot);
  await stopChild(depot.tracked);
  agent.destroy();

  // The ceiling: node:https answering the same number of requests of the same (average) sizes.
  const reqSize = Math.round(counts.reqBytes / counts.requests);
  const resSize = Math.round(counts.resBytes / counts.requests);
  const ref = await startChild(['ref', '0', '', String(resSize)]);
  const refAgent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const refCounts = { requests: 0, reqBytes: 0, resBytes: 0 };
  const refT = countingTransport(ref.caPem, refAgent, refCounts);
  const body = Buffer.alloc(reqSize, 'x');
  const perPhone = counts.requests / PHONES;
  const jobs = Array.from({ length: PHONES }, (_, i) => i);
  await inParallel(jobs.slice(0, Math.min(100, PHONES)), async () => void (await refT.post(`https://127.0.0.1:${ref.port}/`, body, { 'content-type': 'application/octet-stream' })));
  const r0 = process.hrtime.bigint();
  const refCpu0 = cpuSeconds(ref.tracked.child.pid!) ?? 0;
  await inParallel(jobs, async () => {
    for (let k = 0; k < perPhone; k++) await refT.post(`https://127.0.0.1:${ref.port}/`, body, { 'content-type': 'application/octet-stream' });
  });
  const refSeconds = Number(process.hrtime.bigint() - r0) / 1e9;
  const refCpu = (cpuSeconds(ref.tracked.child.pid!) ?? 0) - refCpu0;
  await stopChild(ref.tracked);
  refAgent.destroy();
  return {
    encoding,
    sessionsPerSec: PHONES / seconds,
    cpuMsPerSession: (serverCpu * 1000) / PHONES,
    refCpuMsPerSession: (refCpu * 1000) / PHONES,
    clientCpuMsPerSession: (clientCpu * 1000) / PHONES,
    reqPerSession: perPhone,
    reqBytes: reqSize,
    resBytes: resSize,
    refSessionsPerSec: PHONES / refSeconds,
    openKiB: (after.heapUsed - before.heapUsed) / 1024 / openers.length,
    foreign,
  };
}

process.stdout.write(`bench:omadm: ${PHONES} phones, ${CONCURRENCY} sessions in flight, TLS (Depot's CA), server pinned to CPU 1${PINNING ? '' : ' (no taskset: not pinned)'}\n`);
const rows: Row[] = [];
for (const encoding of ENCODINGS) rows.push(await run(encoding));
process.stdout.write('\n| encoding | Depot sessions/s | node:https same requests, sessions/s | ratio | server CPU ms/session | node:https CPU ms/session | phones CPU ms/session | requests/session | avg request / reply bytes | heap per open session | foreign CPU |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n');
for (const r of rows) {
  process.stdout.write(`| ${r.encoding} | ${r.sessionsPerSec.toFixed(0)} | ${r.refSessionsPerSec.toFixed(0)} | ${(r.sessionsPerSec / r.refSessionsPerSec).toFixed(2)}x | ${r.cpuMsPerSession.toFixed(2)} | ${r.refCpuMsPerSession.toFixed(2)} | ${r.clientCpuMsPerSession.toFixed(2)} | ${r.reqPerSession.toFixed(1)} | ${r.reqBytes} / ${r.resBytes} | ${r.openKiB.toFixed(1)} KiB | ${(r.foreign * 100).toFixed(0)} % |\n`);
}
