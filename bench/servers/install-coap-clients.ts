/**
 * The libcoap side of the install benchmark: N `coap-client-notls` transfers of the same file,
 * all started at once (one process each, as Depot's simulator runs N devices at once), in a
 * process pinned to the load core by bench/install.ts (the clients inherit the pinning).
 *
 *   node dist/bench/servers/install-coap-clients.js '<json InstallClientsConfig>'
 *
 * Creates the N client processes held at a gate (see prepare), prints `{"type":"ready"}`, waits
 * for `go` on stdin, releases all N at once, then prints one `{"type":"done", ...}` line
 * (InstallClientsResult). `pull`: `-m get -b <block> -B <s> -o <file>`,
 * every output is checked against the package's SHA-256 after the clock stopped. `push`:
 * `-m put -b <block> -f <file>`; coap-client exits 0 even on an error response, so a transfer
 * counts as done when it printed nothing (it prints non-2.xx codes and warnings).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface InstallClientsConfig {
  coapClient: string;
  uri: string;
  method: 'pull' | 'push';
  /** push: the file sent; pull: unused. */
  file: string;
  sha256: string;
  count: number;
  blockSize: number;
  timeoutS: number;
  /** pull: where the N downloads are written (then checked and removed). */
  outDir: string;
}

export interface InstallClientsResult {
  type: 'done';
  /** Release of the gate to the last client's exit (a stuck client exits at its -B bound). */
  elapsedMs: number;
  /** Release of the gate to the exit of the last client whose transfer succeeded. */
  lastOkMs: number;
  /** Creating the N gated processes, before the clock started (not part of elapsedMs). */
  spawnMs: number;
  /** Per-transfer time (release to exit), ms. */
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  ok: number;
  failed: number;
  errors: string[];
}

const config = JSON.parse(process.argv[2]!) as InstallClientsConfig;

/** Clients still running: killed when this process is told to stop. */
const running = new Set<ChildProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts the N clients held at a gate: each is `sh -c 'read x < FIFO; exec coap-client-notls …'`,
 * blocked opening the FIFO. Creating N processes (≈20 ms each from Node on a busy core) is
 * done before the clock starts, as the simulated devices exist before Depot's jobs are created;
 * `release()` then lets all N through at once (one line each through the FIFO) and each `exec`s
 * its coap-client (loading the binary stays inside the window, as each simulated device creates
 * its CoAP client and socket per download inside Depot's window).
 */
async function prepare(): Promise<{ release: () => Promise<InstallClientsResult> }> {
  if (config.method === 'pull') mkdirSync(config.outDir, { recursive: true });
  const gate = join(config.outDir, 'gate.fifo');
  mkdirSync(config.outDir, { recursive: true });
  const made = spawnSync('mkfifo', [gate]);
  if (made.status !== 0) throw new Error(`mkfifo ${gate}: ${made.stderr.toString()}`);
  let t0 = 0;
  const ends: number[] = [];
  const outputs: (string | undefined)[] = [];
  let pending = config.count;
  let allDone: (r: InstallClientsResult) => void = () => undefined;
  const finished = new Promise<InstallClientsResult>((resolve) => (allDone = resolve));
  const endOf: number[] = [];
  const finish = (): void => {
    const elapsedMs = performance.now() - t0;
    let ok = 0;
    let lastOk = t0;
    const errors: string[] = [];
    for (let i = 0; i < config.count; i++) {
      let problem = outputs[i];
      if (problem === undefined && config.method === 'pull') {
        const file = join(config.outDir, `${i}.bin`);
        try {
          const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
          if (sha !== config.sha256) problem = 'downloaded bytes differ from the package';
        } catch (error) {
          problem = (error as Error).message;
        }
        rmSync(file, { force: true });
      }
      if (problem === undefined) {
        ok++;
        lastOk = Math.max(lastOk, endOf[i]!);
      } else if (errors.length < 5) errors.push(`#${i}: ${problem.trim().split('\n')[0]}`);
    }
    const durations = ends.map((e) => e - t0).sort((a, b) => a - b);
    const q = (p: number): number => durations[Math.min(durations.length - 1, Math.floor(p * durations.length))] ?? 0;
    rmSync(gate, { force: true });
    allDone({ type: 'done', elapsedMs, lastOkMs: lastOk - t0, spawnMs: preparedMs, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: q(1), ok, failed: config.count - ok, errors });
  };
  const p0 = performance.now();
  const pids: number[] = [];
  for (let i = 0; i < config.count; i++) {
    const args =
      config.method === 'pull'
        ? ['-m', 'get', '-b', String(config.blockSize), '-B', String(config.timeoutS), '-o', join(config.outDir, `${i}.bin`), config.uri]
        : ['-m', 'put', '-b', String(config.blockSize), '-B', String(config.timeoutS), '-f', config.file, config.uri];
    const child = spawn('sh', ['-c', 'read x < "$0"; exec "$@"', gate, config.coapClient, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    if (child.pid !== undefined) pids.push(child.pid);
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', (error) => (text += error.message));
    child.on('close', (code, signal) => {
      running.delete(child);
      ends.push(performance.now());
      endOf[i] = performance.now();
      if (code !== 0 || signal !== null) text += ` (exit ${code ?? signal})`;
      outputs[i] = text.trim() === '' ? undefined : text;
      if (--pending === 0) finish();
    });
  }
  // Every client blocked at the gate (its shell waits in open() of the FIFO: wchan wait_for_partner), at most 60 s.
  const bound = performance.now() + 60_000;
  for (;;) {
    const waiting = pids.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() === 'wait_for_partner';
      } catch {
        return false;
      }
    }).length;
    if (waiting >= config.count || performance.now() > bound) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const preparedMs = performance.now() - p0;
  return {
    release: () => {
      t0 = performance.now();
      // Opening for writing completes the readers' opens; one line lets each through. Kept open until
      // the end so that a late reader still finds a writer and its line.
      const fd = openSync(gate, 'w');
      writeSync(fd, '\n'.repeat(config.count));
      void finished.then(() => closeSync(fd));
      return finished;
    },
  };
}

const gate = await prepare();
process.stdout.write(JSON.stringify({ type: 'ready' }) + '\n');
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'go') return;
  lines.close();
  void gate.release().then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  });
});
