import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEMO_PROFILE, demoSigningKey } from '../app/demo-fleet.js';
import { ProfileError, parseProfile } from '../sim/profile.js';
import { Simulator } from '../sim/simulator.js';
import { runOmaDmSimCommand } from '../sim/omadm/cli.js';

const USAGE = `usage: depot sim --server <coap[s]://host:port> [--bootstrap <uri>] [--count N] [--profile <file>] [options]
  --server <uri>            LwM2M server the devices register with
  --bootstrap <uri>         Bootstrap-Server: devices bootstrap first (client-initiated)
  --count <n>               number of simulated devices (default 10)
  --profile <file>          JSON profile: models (manufacturer, model, firmwareVersion, osVersion, count|weight,
                            lwm2mVersion, formats, ...); default: the built-in demo fleet of depot serve --sim,
                            trusting the demo signing key in <data-dir>/demo-signing (made on first use)
  --endpoint-prefix <p>     endpoint names are <p><00001…> (default depot-sim-)
  --first-index <n>         index of the first device (default 1)
  --psk-identity <pattern>  PSK identity, {ep} is replaced by the endpoint name (default {ep})
  --psk-key <text>          PSK key as text, or
  --psk-key-hex <hex>       PSK key as hex (the same key for every device; see also psk.deriveFrom in the profile)
  --host <address>          local address to bind (default 0.0.0.0)
  --ramp <ms>               spread the start-up evenly over this long (default 20 ms per device, at most 60 s)
  --jitter <ms>             add a random delay up to this long to each device's start (default 0)
  --data-dir <dir>          Object 9 staging files for models with an installer behaviour (default
                            ./depot-sim with the demo fleet)
  --duration <s>            stop (and de-register) after this many seconds instead of waiting for Ctrl-C
  --lifetime <s>            registration lifetime of every device (default: the profile's, else 300)
  --ack-timeout <ms>        CoAP ACK_TIMEOUT of the devices (default 2000, RFC 7252 §4.8)
  --max-retransmit <n>      CoAP MAX_RETRANSMIT of the devices (default 4): with --ack-timeout, how
                            soon a device notices a server that stopped answering
  --retry <ms>              first registration retry delay (default 2000; doubles, with jitter)
  --retry-max <ms>          longest registration retry delay (default 60000)
  --quiet                   no progress lines
Ctrl-C (SIGINT) or SIGTERM de-registers every device and exits.`;

/** `depot sim …`: runs N simulated LwM2M devices. Returns the exit code. */
export async function runSimCommand(argv: string[]): Promise<number> {
  // OMA DM phones have their own options (src/sim/omadm/cli.ts).
  const protocol = argv.findIndex((a) => a === '--protocol' || a.startsWith('--protocol='));
  if (protocol >= 0) {
    const value = argv[protocol]!.includes('=') ? argv[protocol]!.slice('--protocol='.length) : argv[protocol + 1];
    if (value === 'omadm') return runOmaDmSimCommand(argv.filter((_, i) => i !== protocol && (argv[protocol]!.includes('=') || i !== protocol + 1)));
    if (value !== 'lwm2m') {
      process.stderr.write(`depot sim: --protocol is lwm2m or omadm, got "${value ?? ''}"\n`);
      return 2;
    }
    argv = argv.filter((_, i) => i !== protocol && (argv[protocol]!.includes('=') || i !== protocol + 1));
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        server: { type: 'string' },
        bootstrap: { type: 'string' },
        count: { type: 'string' },
        profile: { type: 'string' },
        'endpoint-prefix': { type: 'string' },
        'first-index': { type: 'string' },
        'psk-identity': { type: 'string' },
        'psk-key': { type: 'string' },
        'psk-key-hex': { type: 'string' },
        host: { type: 'string' },
        ramp: { type: 'string' },
        jitter: { type: 'string' },
        'data-dir': { type: 'string' },
        duration: { type: 'string' },
        lifetime: { type: 'string' },
        'ack-timeout': { type: 'string' },
        'max-retransmit': { type: 'string' },
        retry: { type: 'string' },
        'retry-max': { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const usage = (message: string): number => {
    process.stderr.write(`depot sim: ${message}\n${USAGE}\n`);
    return 2;
  };
  if (!v.server && !v.bootstrap) return usage('--server or --bootstrap is required');
  const count = v.count === undefined ? 10 : Number(v.count);
  if (!Number.isInteger(count) || count < 1) return usage('--count must be a positive integer');
  const numberOption = (name: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new ProfileError(`--${name} must be a non-negative number`);
    return n;
  };
  let profile;
  let dataDir = v['data-dir'];
  let ramp: number | undefined;
  let jitter: number | undefined;
  let duration: number | undefined;
  let firstIndex: number | undefined;
  let psk: { identity?: string; key: Uint8Array } | undefined;
  let lifetime: number | undefined;
  let ackTimeout: number | undefined;
  let maxRetransmit: number | undefined;
  let retry: number | undefined;
  let retryMax: number | undefined;
  try {
    if (v.profile) profile = parseProfile(JSON.parse(await readFile(v.profile, 'utf8')) as unknown);
    else {
      // The demo fleet of `depot serve --sim`: its installer models trust the demo signing key.
      dataDir = v['data-dir'] ?? './depot-sim';
      const key = await demoSigningKey(dataDir);
      profile = { ...DEMO_PROFILE, trust: { [key.keyId]: key.publicKeyPem } };
      if (!v.quiet) process.stderr.write(`depot sim: no --profile: the built-in demo fleet; packages signed with ${key.privateKeyFile} install on it\n`);
    }
    ramp = numberOption('ramp', v.ramp);
    jitter = numberOption('jitter', v.jitter);
    duration = numberOption('duration', v.duration);
    firstIndex = numberOption('first-index', v['first-index']);
    lifetime = numberOption('lifetime', v.lifetime);
    if (lifetime !== undefined && (!Number.isInteger(lifetime) || lifetime < 1)) throw new ProfileError('--lifetime must be a whole number of seconds, at least 1');
    ackTimeout = numberOption('ack-timeout', v['ack-timeout']);
    if (ackTimeout !== undefined && ackTimeout < 1) throw new ProfileError('--ack-timeout must be at least 1 ms');
    maxRetransmit = numberOption('max-retransmit', v['max-retransmit']);
    if (maxRetransmit !== undefined && !Number.isInteger(maxRetransmit)) throw new ProfileError('--max-retransmit must be a whole number');
    retry = numberOption('retry', v.retry);
    retryMax = numberOption('retry-max', v['retry-max']);
    if (v['psk-key'] !== undefined && v['psk-key-hex'] !== undefined) throw new ProfileError('give --psk-key or --psk-key-hex, not both');
    if (v['psk-key-hex'] !== undefined && !/^(?:[0-9a-fA-F]{2})+$/.test(v['psk-key-hex'])) throw new ProfileError('--psk-key-hex must be hex');
    const key = v['psk-key-hex'] !== undefined ? Buffer.from(v['psk-key-hex'], 'hex') : v['psk-key'] !== undefined ? Buffer.from(v['psk-key'], 'utf8') : undefined;
    if (key) psk = { key: Uint8Array.from(key), ...(v['psk-identity'] !== undefined ? { identity: v['psk-identity'] } : {}) };
    else if (v['psk-identity'] !== undefined) throw new ProfileError('--psk-identity needs --psk-key or --psk-key-hex');
  } catch (error) {
    if (error instanceof ProfileError || error instanceof SyntaxError) return usage(error.message);
    process.stderr.write(`depot sim: ${(error as Error).message}\n`);
    return 1;
  }
  const quiet = v.quiet ?? false;
  const sim = new Simulator({
    count,
    profile,
    ...(v.server ? { server: v.server } : {}),
    ...(v.bootstrap ? { bootstrap: v.bootstrap } : {}),
    ...(v['endpoint-prefix'] !== undefined ? { endpointPrefix: v['endpoint-prefix'] } : {}),
    ...(firstIndex !== undefined ? { firstIndex } : {}),
    ...(v.host !== undefined ? { host: v.host } : {}),
    ...(ramp !== undefined ? { rampMs: ramp } : {}),
    ...(jitter !== undefined ? { jitterMs: jitter } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(psk ? { psk } : {}),
    ...(lifetime !== undefined ? { lifetime } : {}),
    ...(ackTimeout !== undefined || maxRetransmit !== undefined ? { coapParams: { ...(ackTimeout !== undefined ? { ackTimeout } : {}), ...(maxRetransmit !== undefined ? { maxRetransmit } : {}) } } : {}),
    ...(retry !== undefined || retryMax !== undefined ? { retry: { ...(retry !== undefined ? { initialMs: retry } : {}), ...(retryMax !== undefined ? { maxMs: retryMax } : {}) } } : {}),
    onEvent: (device, e) => {
      if (quiet) return;
      if (e.type === 'registrationDowngraded') process.stderr.write(`${device.endpoint}: ${e.reason}; next Register offers LwM2M ${e.lwm2mVersion} (${e.ctForm} ct form)\n`);
      if (e.type === 'registrationFailed') process.stderr.write(`${device.endpoint}: registration failed (${e.reason}), retry in ${e.retryInMs} ms\n`);
      if (e.type === 'updateFailed') process.stderr.write(`${device.endpoint}: ${e.reason}; registering again\n`);
      if (e.type === 'bootstrapFailed') process.stderr.write(`${device.endpoint}: bootstrap failed (${e.reason})\n`);
    },
  });

  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (): void => stopRequested();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const durationTimer = duration !== undefined ? setTimeout(onSignal, duration * 1000) : undefined;
  let lastLine = '';
  const progress = setInterval(() => {
    if (quiet) return;
    const s = sim.stats();
    const line = `registered ${s.registered}/${s.total} (started ${s.started}, registration failures ${s.registrationFailures})`;
    if (line !== lastLine) process.stderr.write(line + '\n');
    lastLine = line;
  }, 2000);
  try {
    if (!quiet) process.stderr.write(`depot sim: starting ${count} devices against ${v.server ?? v.bootstrap}\n`);
    await Promise.race([sim.start(), stopped]);
    await stopped;
    if (!quiet) process.stderr.write('depot sim: de-registering ...\n');
    return 0;
  } catch (error) {
    process.stderr.write(`depot sim: ${(error as Error).message}\n`);
    return 1;
  } finally {
    clearInterval(progress);
    if (durationTimer) clearTimeout(durationTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sim.stop();
    const s = sim.stats();
    if (!quiet) process.stderr.write(`depot sim: stopped; ${s.total} devices, ${s.registered} still registered\n`);
  }
}
