/**
 * The device simulator: N LwM2M clients in one process, each with its own endpoint name and
 * socket (the server must see distinct addresses), Object 3 facts and credentials from a
 * profile. Start-up is spread over time (an even ramp, plus random jitter per device);
 * stop() de-registers every client.
 *
 * Per-client memory is kept small: no state file, a 64-entry CoAP deduplication store, and the
 * shared object definitions; Object 9 only for models with an installer behaviour.
 */
import { join } from 'node:path';
import { Lwm2mClient } from '../lwm2m/client/engine.js';
import type { ClientEvent, Lwm2mClientConfig } from '../lwm2m/client/engine.js';
import { SoftwareManagementAdapter } from '../lwm2m/client/object9-adapter.js';
import { simulatedSoftwareManagement } from './object9.js';
import { trustStore } from '../pkg/index.js';
import type { TrustStore } from '../pkg/index.js';
import type { TransmissionParameters } from '../coap/params.js';
import { systemClock } from '../util/clock.js';
import type { Clock, Timer } from '../util/clock.js';
import { assignModels, devicePsk } from './profile.js';
import type { SimModel, SimProfile } from './profile.js';
import { DefaultPackageFetcher } from '../lwm2m/client/package-fetcher.js';

export interface SimulatorOptions {
  /** LwM2M server URI (coap:// or coaps://). */
  server?: string;
  /** Bootstrap-Server URI: devices bootstrap first (then `server` is not needed). */
  bootstrap?: string;
  count: number;
  profile: SimProfile;
  /** Endpoint names are prefix + zero-padded index (default "depot-sim-"). */
  endpointPrefix?: string;
  /** First index (default 1). */
  firstIndex?: number;
  /** Local address to bind (default 0.0.0.0). */
  host?: string;
  /** Spread the starts evenly over this long (ms); default 20 ms per device, at most 60 s. */
  rampMs?: number;
  /**
   * Add a random delay in [0, jitterMs) to each device's start (default 0): a fleet that
   * reboots together (power cut, server outage) does not come back in lockstep. With
   * rampMs 0 the starts are spread uniformly at random over the jitter.
   */
  jitterMs?: number;
  /** Random numbers in [0, 1) for the jitter (default Math.random; tests give their own). */
  random?: () => number;
  /** Where Object 9 staging files go (needed for models with an installer behaviour). */
  dataDir?: string;
  /** PSK overriding the profile's: identity pattern ({ep} = endpoint name, default "{ep}") and key. */
  psk?: { identity?: string; key: Uint8Array };
  clock?: Clock;
  /** Retry back-off for registration (the first re-registration after a failed Update waits a random part of initialMs). */
  retry?: Lwm2mClientConfig['retry'];
  /** Registration lifetime (s) for every model, instead of the profile's. */
  lifetime?: number;
  /**
   * CoAP transmission parameters of every device (RFC 7252 §4.8): e.g. a shorter ACK_TIMEOUT or
   * fewer retransmissions make a lost server noticed sooner (tests; constrained-network tuning).
   */
  coapParams?: Partial<TransmissionParameters>;
  /** Every client event, with the device it came from. */
  onEvent?: (device: SimDevice, event: ClientEvent) => void;
}

export interface SimDevice {
  readonly index: number;
  readonly endpoint: string;
  readonly model: SimModel;
  readonly client: Lwm2mClient;
  registered: boolean;
  failures: number;
}

export interface SimStats {
  total: number;
  started: number;
  registered: number;
  registrationFailures: number;
}

/** A simulated device's endpoint name: the prefix and its index zero-padded to at least 5 digits. */
export function simulatedEndpointName(prefix: string, index: number, lastIndex: number): string {
  return prefix + String(index).padStart(Math.max(5, String(lastIndex).length), '0');
}

export class Simulator {
  readonly devices: SimDevice[] = [];
  private readonly clock: Clock;
  private readonly timers: Timer[] = [];
  /** Resolvers of starts still waiting on the ramp (released by stop()). */
  private readonly waiting = new Set<() => void>();
  private started = 0;
  private stopping = false;
  private trust: TrustStore | undefined;

  /** Pull downloads (Package URI) for every simulated device: CoAP Block2 or HTTP Range, streamed. */

  constructor(private readonly options: SimulatorOptions) {
    this.clock = options.clock ?? systemClock;
    if (!options.server && !options.bootstrap) throw new Error('the simulator needs --server or --bootstrap');
    if (!Number.isInteger(options.count) || options.count < 1) throw new Error('count must be a positive integer');
    for (const name of ['rampMs', 'jitterMs'] as const) {
      const v = options[name];
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new Error(`${name} must be a non-negative number`);
    }
  }

  /** When device n (0-based) of `count` starts, ms after start(): its place on the ramp plus its jitter. */
  startDelay(n: number, count: number): number {
    const ramp = this.options.rampMs ?? Math.min(60_000, 20 * count);
    const jitter = this.options.jitterMs ?? 0;
    const onRamp = count > 1 ? (ramp * n) / count : 0;
    return Math.floor(onRamp + (jitter > 0 ? (this.options.random ?? Math.random)() * jitter : 0));
  }

  /** Creates the clients and starts them spread over the ramp; resolves when all have started. */
  async start(): Promise<void> {
    const { count, profile } = this.options;
    const prefix = this.options.endpointPrefix ?? 'depot-sim-';
    const first = this.options.firstIndex ?? 1;
    const models = assignModels(profile, count);
    if (profile.trust) this.trust = trustStore(profile.trust);
    for (let n = 0; n < count; n++) {
      const index = first + n;
      const endpoint = simulatedEndpointName(prefix, index, first + count - 1);
      const model = profile.models[models[n] as number] as SimModel;
      const client = await this.createClient(endpoint, index, model);
      const device: SimDevice = { index, endpoint, model, client, registered: false, failures: 0 };
      client.on((e) => {
        if (e.type === 'registered') device.registered = true;
        else if (e.type === 'registrationFailed') device.failures++;
        else if (e.type === 'updateFailed' || e.type === 'deregistered') device.registered = false;
        this.options.onEvent?.(device, e);
      });
      this.devices.push(device);
    }
    await Promise.all(
      this.devices.map(
        (d, n) =>
          new Promise<void>((resolve, reject) => {
            const go = (): void => {
              if (this.stopping) return resolve();
              d.client.start().then(() => {
                this.started++;
                resolve();
              }, reject);
            };
            const delay = this.startDelay(n, count);
            if (delay === 0) go();
            else {
              this.waiting.add(resolve);
              this.timers.push(
                this.clock.setTimer(delay, () => {
                  this.waiting.delete(resolve);
                  go();
                }),
              );
            }
          }),
      ),
    );
  }

  private async createClient(endpoint: string, index: number, model: SimModel): Promise<Lwm2mClient> {
    const { profile } = this.options;
    const psk = this.options.psk
      ? { identity: (this.options.psk.identity ?? '{ep}').split('{ep}').join(endpoint), key: this.options.psk.key }
      : devicePsk(profile, endpoint);
    const config: Lwm2mClientConfig = {
      endpoint,
      host: this.options.host ?? '0.0.0.0',
      lifetime: this.options.lifetime ?? model.lifetime ?? profile.lifetime ?? 300,
      ...(model.lwm2mVersion !== undefined ? { lwm2mVersion: model.lwm2mVersion } : {}),
      ...(model.pinVersion ? { pinVersion: true } : {}),
      ...(model.formats !== undefined ? { formats: model.formats } : {}),
      ...(model.queueMode ? { queueMode: true, ...(model.awakeMs !== undefined ? { queueModeAwakeMs: model.awakeMs } : {}) } : {}),
      device: {
        manufacturer: model.manufacturer,
        modelNumber: model.model,
        serialNumber: `${model.model}-${String(index).padStart(6, '0')}`,
        firmwareVersion: model.firmwareVersion,
        ...(model.deviceType !== undefined ? { deviceType: model.deviceType } : {}),
        ...(model.hardwareVersion !== undefined ? { hardwareVersion: model.hardwareVersion } : {}),
        ...(model.osVersion !== undefined ? { softwareVersion: model.osVersion } : {}),
      },
      clock: this.clock,
      coap: { deduplicationCapacity: 64, ...(this.options.coapParams ? { params: this.options.coapParams } : {}) },
      // Capped at a minute (the LwM2M 1.1 Communication Retry Timer default): a fleet whose server
      // was away for long is back within about a minute of its return, not five.
      retry: { initialMs: 2_000, maxMs: 60_000, ...this.options.retry },
    };
    if (this.options.server) config.serverUri = this.options.server;
    if (this.options.bootstrap) config.bootstrapUri = this.options.bootstrap;
    if (psk) config.psk = psk;
    const behaviours = model.behaviours;
    // Filled in below: coaps:// Package URIs are fetched over the device's own DTLS session.
    const device: { client?: Lwm2mClient } = {};
    if (behaviours?.installer) {
      if (!this.trust) throw new Error(`model ${model.model} has an installer behaviour but the profile has no trust keys`);
      if (!this.options.dataDir) throw new Error(`model ${model.model} has an installer behaviour: give a data directory`);
      const obj9 = await simulatedSoftwareManagement({ behaviours: { ...behaviours, installer: behaviours.installer }, deviceDir: join(this.options.dataDir, endpoint), trust: this.trust, clock: this.clock, fetcher: new DefaultPackageFetcher({ session: (uri) => device.client?.sessionClientFor(uri), sessionFailed: async (uri, error) => device.client?.sessionRequestFailed(uri, error) }) });
      config.objects = [new SoftwareManagementAdapter(obj9)];
    }
    device.client = new Lwm2mClient(config);
    return device.client;
  }

  stats(): SimStats {
    let registered = 0;
    let failures = 0;
    for (const d of this.devices) {
      if (d.registered) registered++;
      failures += d.failures;
    }
    return { total: this.devices.length, started: this.started, registered, registrationFailures: failures };
  }

  /** Resolves when every device is registered (polling the real time; rejects after `timeoutMs`). */
  async waitAllRegistered(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.stats().registered < this.devices.length) {
      if (Date.now() > end) throw new Error(`${this.stats().registered} of ${this.devices.length} devices registered after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** De-registers every client (at most `concurrency` at a time) and closes the sockets. */
  async stop(concurrency = 200): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) t.cancel();
    for (const release of this.waiting) release();
    this.waiting.clear();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < this.devices.length) {
        const d = this.devices[next++] as SimDevice;
        await d.client.stop().catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, this.devices.length) }, worker));
  }
}
