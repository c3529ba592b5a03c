/**
 * The libcoap side of the install benchmark: N `coap-client-notls` transfers of the same file,
 * all started at once (one process each, as Depot's simulator runs N devices at once), in a
 * process pinned to the load core by bench/install.ts (the clients inherit the pinning).
 *
 *   node dist/bench/servers/install-coap-clients.js '<json InstallClientsConfig>'
 *
 * Prints `{"type":"ready"}`, waits for `go` on stdin, starts the N clients, then prints one
 * `{"type":"done", ...}` line (InstallClientsResult). `pull`: `-m get -b <block> -B <s> -o <file>`,
 * every output is checked against the package's SHA-256 after the clock stopped. `push`:
 * `-m put -b <block> -f <file>`; coap-client exits 0 even on an error response, so a transfer
 * counts as done when it printed nothing (it prints non-2.xx codes and warnings).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
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
  /** First spawn to last exit. */
  elapsedMs: number;
  /** First spawn to the last child spawned (process creation, part of elapsedMs). */
  spawnMs: number;
  /** Per-transfer time (spawn to exit), ms. */
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

function runAll(): Promise<InstallClientsResult> {
  if (config.method === 'pull') mkdirSync(config.outDir, { recursive: true });
  const t0 = performance.now();
  let spawnedAt = t0;
  const durations: number[] = [];
  const outputs: (string | undefined)[] = [];
  let pending = config.count;
  return new Promise((resolve) => {
    const finish = (): void => {
      const elapsedMs = performance.now() - t0;
      let ok = 0;
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
        if (problem === undefined) ok++;
        else if (errors.length < 5) errors.push(`#${i}: ${problem.trim().split('\n')[0]}`);
      }
      durations.sort((a, b) => a - b);
      const q = (p: number): number => durations[Math.min(durations.length - 1, Math.floor(p * durations.length))] ?? 0;
      resolve({ type: 'done', elapsedMs, spawnMs: spawnedAt - t0, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: q(1), ok, failed: config.count - ok, errors });
    };
    for (let i = 0; i < config.count; i++) {
      const start = performance.now();
      const args =
        config.method === 'pull'
          ? ['-m', 'get', '-b', String(config.blockSize), '-B', String(config.timeoutS), '-o', join(config.outDir, `${i}.bin`), config.uri]
          : ['-m', 'put', '-b', String(config.blockSize), '-B', String(config.timeoutS), '-f', config.file, config.uri];
      const child = spawn(config.coapClient, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(child);
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', (error) => (text += error.message));
      child.on('close', (code, signal) => {
        running.delete(child);
        durations.push(performance.now() - start);
        if (code !== 0 || signal !== null) text += ` (exit ${code ?? signal})`;
        outputs[i] = text.trim() === '' ? undefined : text;
        if (--pending === 0) finish();
      });
      spawnedAt = performance.now();
    }
  });
}

process.stdout.write(JSON.stringify({ type: 'ready' }) + '\n');
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'go') return;
  lines.close();
  void runAll().then((result) => {
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exit(0);
  });
});
