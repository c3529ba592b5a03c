/**
 * The simulated fleet of bench/lwm2m.ts: one process running src/sim's Simulator (N
 * Lwm2mClient engines, each with its own UDP socket) against one `depot serve`.
 *
 *   node dist/bench/servers/lwm2m-fleet.js '<json FleetConfig>'
 *
 * It starts the devices as configured (an even ramp and/or random jitter; both 0 = all at
 * once), and prints one JSON line per phase
 * on stdout: `{"type":"phase","phase":"register",...}` when every device has its 2.01 (or
 * the phase timed out); then, on the stdin line "update", it asks every registered device for a
 * Registration Update (Lwm2mClient.requestUpdate) and prints the "update" phase line when every
 * 2.04 is back. Progress goes to stdout as `{"type":"progress",...}` every 2 s. Closing stdin
 * ends the process at once (no de-registration: the server is thrown away after the run).
 *
 * CPU counters (this process, the server, the machine) are read from /proc at the first
 * Register and at the last answer, so the percentages cover exactly the measured window.
 */
import { createInterface } from 'node:readline';
import { Lwm2mClient } from '../../src/lwm2m/client/engine.js';
import type { SimProfile } from '../../src/sim/profile.js';
import { Simulator } from '../../src/sim/simulator.js';
import type { CpuSample } from '../support/proc.js';
import { cpuPercent, machinePercent, memoryKiB, runQueueWaitPercent, sampleCpu } from '../support/proc.js';

export interface FleetConfig {
  server: string;
  count: number;
  endpointPrefix: string;
  profile: SimProfile;
  rampMs: number;
  /** Random start delay per device, up to this long (ms). */
  jitterMs: number;
  /** Bound of each phase, ms. */
  timeoutMs: number;
  /** The server's pid, for its CPU counters. */
  serverPid: number;
}

export interface PhaseResult {
  type: 'phase';
  phase: 'register' | 'update';
  total: number;
  /** Devices that completed the phase (first 2.01, or 2.04 to the requested Update). */
  done: number;
  complete: boolean;
  /** ms from the first request to the last answer (or to the timeout). */
  elapsedMs: number;
  /** done / elapsed. */
  perSecond: number;
  /** registrationFailed / updateFailed events in the phase (each retried by the engine). */
  failures: number;
  /** Re-registrations after a failed Update, during the update phase. */
  reRegistrations: number;
  simCpu: number | undefined;
  serverCpu: number | undefined;
  /** % of the window the main thread waited for its core (other load on it). */
  simWait: number | undefined;
  serverWait: number | undefined;
  machineCpu: number;
  udpDrops: number | undefined;
  simRssKiB: number | undefined;
  /** ms from the first request to the first answer. */
  firstAnswerMs: number | undefined;
}

const config = JSON.parse(process.argv[2] ?? '') as FleetConfig;
const out = (line: object): void => void process.stdout.write(JSON.stringify(line) + '\n');

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
// An exit (not death by the signal) lets --cpu-prof and similar flags write their files.
process.on('SIGTERM', () => process.exit(0));

/** One measured phase: first request → last answer, with /proc counters at both ends. */
class Phase {
  start: CpuSample | undefined;
  firstAnswer: number | undefined;
  done = 0;
  failures = 0;
  reRegistrations = 0;
  private finished = false;
  private timer: NodeJS.Timeout | undefined;
  private progress: NodeJS.Timeout | undefined;

  constructor(
    readonly name: 'register' | 'update',
    readonly total: number,
  ) {}

  begin(): void {
    if (this.start) return;
    this.start = sampleCpu([config.serverPid]);
    this.timer = setTimeout(() => this.finish(), config.timeoutMs);
    this.progress = setInterval(() => out({ type: 'progress', phase: this.name, done: this.done, total: this.total, failures: this.failures }), 2000);
    if (this.total === 0) this.finish();
  }

  answered(): void {
    if (this.finished) return;
    this.firstAnswer ??= performance.now();
    if (++this.done >= this.total) this.finish();
  }

  finish(): void {
    if (this.finished || !this.start) return;
    this.finished = true;
    clearTimeout(this.timer);
    clearInterval(this.progress);
    const end = sampleCpu([config.serverPid]);
    const elapsedMs = end.at - this.start.at;
    const result: PhaseResult = {
      type: 'phase',
      phase: this.name,
      total: this.total,
      done: this.done,
      complete: this.done >= this.total,
      elapsedMs,
      perSecond: elapsedMs > 0 ? (1000 * this.done) / elapsedMs : 0,
      failures: this.failures,
      reRegistrations: this.reRegistrations,
      simCpu: cpuPercent(this.start, end, 'self'),
      serverCpu: cpuPercent(this.start, end, config.serverPid),
      simWait: runQueueWaitPercent(this.start, end, 'self'),
      serverWait: runQueueWaitPercent(this.start, end, config.serverPid),
      machineCpu: machinePercent(this.start, end),
      udpDrops: end.udpDrops !== undefined && this.start.udpDrops !== undefined ? end.udpDrops - this.start.udpDrops : undefined,
      simRssKiB: memoryKiB('self')?.rss,
      firstAnswerMs: this.firstAnswer !== undefined ? this.firstAnswer - this.start.at : undefined,
    };
    out(result);
  }
}

const register = new Phase('register', config.count);
let update: Phase | undefined;

// The window opens at the first Lwm2mClient.start() (it binds the socket and sends Register at
// once); the Simulator has no hook there, so the prototype is wrapped in this process only.
const proto = Lwm2mClient.prototype as unknown as { start: (this: Lwm2mClient) => Promise<void> };
const originalStart = proto.start;
proto.start = function (this: Lwm2mClient): Promise<void> {
  register.begin();
  return originalStart.call(this);
};

const registered = new Uint8Array(config.count + 1);
const updated = new Uint8Array(config.count + 1);
const simulator = new Simulator({
  server: config.server,
  count: config.count,
  profile: config.profile,
  endpointPrefix: config.endpointPrefix,
  host: '127.0.0.1',
  rampMs: config.rampMs,
  jitterMs: config.jitterMs,
  onEvent: (device, event) => {
    switch (event.type) {
      case 'registered':
        if (update) update.reRegistrations++;
        if (!registered[device.index]) {
          registered[device.index] = 1;
          register.answered();
        }
        break;
      case 'registrationFailed':
        (update ?? register).failures++;
        break;
      case 'updated':
        if (update && !updated[device.index]) {
          updated[device.index] = 1;
          update.answered();
        }
        break;
      case 'updateFailed':
        if (update) update.failures++;
        break;
    }
  },
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'update' || update) return;
  const targets = simulator.devices.filter((d) => d.registered);
  update = new Phase('update', targets.length);
  update.begin();
  for (const d of targets) d.client.requestUpdate();
});

simulator.start().then(
  () => out({ type: 'started', count: simulator.devices.length }),
  (error: unknown) => {
    out({ type: 'error', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  },
);
