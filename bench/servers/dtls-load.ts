/**
 * The DTLS benchmark's load generator: one process (pinned by the driver to its own CPU) that runs
 * many PSK handshakes at once against one server with Depot's sans-IO client (dtls-handshaker.ts).
 *
 *   node dist/bench/servers/dtls-load.js rate PORT CONCURRENCY WARMUP_S DURATION_S
 *     C slots, each with its own UDP socket, handshake → close_notify → next handshake, for
 *     WARMUP_S + DURATION_S seconds; prints `window start` / `window end` around the measured
 *     DURATION_S, then one line `result {json}` for it:
 *     completed handshakes, failures, latency percentiles, and this process's own CPU.
 *   node dist/bench/servers/dtls-load.js sessions PORT CONCURRENCY COUNT
 *     establishes COUNT associations (C handshakes in flight), each from its own socket and each
 *     confirmed by one CoAP ping answered over it; prints `established {json}` and keeps them open
 *     (idle). A line `close` on stdin sends close_notify on all of them (the sockets stay open);
 *     the end of stdin closes everything and exits.
 */
import { performance } from 'node:perf_hooks';
import { coapPing, HandshakeSlot, isPingAnswer } from './dtls-handshaker.js';

const HOST = '127.0.0.1';
const [mode, portText, concurrencyText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const concurrency = Number(concurrencyText);
if ((mode !== 'rate' && mode !== 'sessions') || !Number.isInteger(port) || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: dtls-load.js rate PORT CONCURRENCY WARMUP_S DURATION_S | sessions PORT CONCURRENCY COUNT\n');
  process.exit(2);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function rate(warmupS: number, durationS: number): Promise<void> {
  let measuring = false;
  let stopping = false;
  let completed = 0;
  let failed = 0;
  const failures = new Map<string, number>();
  const latencies: number[] = [];
  const slots = Array.from({ length: concurrency }, () => new HandshakeSlot(HOST, port));
  const loops = slots.map(async (slot) => {
    while (!stopping) {
      try {
        const { latencyMs } = await slot.handshake();
        slot.closeAssociation(); // close_notify: the server frees the association at once
        if (measuring && !stopping) {
          completed++;
          latencies.push(latencyMs);
        }
      } catch (error) {
        slot.closeAssociation();
        if (measuring && !stopping) {
          failed++;
          const reason = error instanceof Error ? error.message : String(error);
          failures.set(reason, (failures.get(reason) ?? 0) + 1);
        }
      }
    }
  });
  await sleep(warmupS * 1000);
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  measuring = true;
  process.stdout.write('window start\n'); // the driver samples the server's CPU between these two lines
  await sleep(durationS * 1000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  const counted = { completed, failed };
  process.stdout.write('window end\n');
  stopping = true;
  // Handshakes still in flight finish (or time out after at most 10 s); they are not counted.
  await Promise.race([Promise.all(loops), sleep(12_000)]);
  await Promise.all(slots.map((s) => s.close()));
  latencies.sort((a, b) => a - b);
  const result = {
    handshakes: counted.completed,
    failed: counted.failed,
    failures: Object.fromEntries(failures),
    seconds: wall,
    perSecond: counted.completed / wall,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuPct: (100 * (cpu.user + cpu.system)) / 1e6 / wall,
    eventLoopUtilization: elu.utilization,
  };
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
}

async function sessions(count: number): Promise<void> {
  const slots: HandshakeSlot[] = [];
  let next = 0;
  let failed = 0;
  const failures = new Map<string, number>();
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      const slot = new HandshakeSlot(HOST, port);
      const messageId = index & 0xffff;
      let answered: () => void = () => {};
      const pinged = new Promise<void>((resolve) => (answered = resolve));
      try {
        await slot.handshake((data) => {
          if (isPingAnswer(data, messageId)) answered();
        });
        // One exchange over the association, so both servers are past the handshake (final flight
        // acknowledged, CoAP session state created) and idle, as after a device's first message.
        slot.send(coapPing(messageId));
        await Promise.race([pinged, sleep(5000).then(() => Promise.reject(new Error('no answer to a CoAP ping')))]);
        slots.push(slot);
      } catch (error) {
        failed++;
        const reason = error instanceof Error ? error.message : String(error);
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
        await slot.close();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  process.stdout.write(`established ${JSON.stringify({ established: slots.length, failed, failures: Object.fromEntries(failures), seconds: (performance.now() - started) / 1000 })}\n`);
  // A line "close" on stdin: close_notify on every association, sockets kept (their ports are not
  // reused by a later batch while a server may still hold state for them). End of stdin: exit.
  let input = '';
  process.stdin.on('data', (d: Buffer) => {
    input += d.toString();
    if (input.includes('close\n')) {
      input = '';
      for (const s of slots) s.closeAssociation();
      process.stdout.write('closed\n');
    }
  });
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.on('error', resolve);
    process.stdin.resume();
  });
  await Promise.all(slots.map((s) => s.close()));
  process.exit(0);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (mode === 'rate') {
  await rate(Number(rest[0] ?? 1), Number(rest[1] ?? 2));
  process.exit(0);
} else {
  await sessions(Number(rest[0] ?? 1000));
}
