/**
 * `depot client`: Depot's LwM2M device client for a real machine (a Linux gateway, a box in
 * the field): registers with a Depot server (or bootstraps first), reports its Object 3
 * facts, and installs software through Object 9 with the built-in directory installer
 * (versioned directories, atomic switch, lifecycle scripts). Its state — server account,
 * credentials from bootstrap, every Object 9 instance — persists in the data directory, so a
 * restarted client carries on where it was (see docs/object9.md for each state).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Lwm2mClient, SoftwareManagementAdapter, type ClientEvent } from '../lwm2m/client/index.js';
import { DefaultPackageFetcher } from '../lwm2m/client/package-fetcher.js';
import { DirectoryInstaller, SoftwareManagement, type PersistedObject } from '../lwm2m/objects/software-management/index.js';
import { KEY_FILE_MODE, writeFileAtomic } from '../pki/files.js';
import { loadPackageTrust } from './package.js';
import { dtlsOptionSpec, pskOf } from './dtls-options.js';

const USAGE = `usage: depot client (--server <coap[s]://host:port> | --bootstrap <uri>) --trust <key.pub.pem> [options]
  --server <uri>            the Depot (LwM2M) server
  --bootstrap <uri>         a Bootstrap-Server: bootstrap first (the operator accepts the device)
  --endpoint <name>         Endpoint Client Name (default: this host's name)
  --data-dir <dir>          state, staged packages and installed software (default ./depot-client)
  --install-dir <dir>       where software is installed (default <data-dir>/software)
  --trust <id=file|file>    package signing key(s) to trust (Ed25519 public key PEM; repeatable)
  --psk-identity <id>, --psk-key <text> | --psk-key-hex <hex>   DTLS PSK for coaps://
  --manufacturer <s> --model <s> --firmware-version <s> --os-version <s> --serial <s>   Object 3 facts
  --lifetime <s>            registration lifetime (default 300)
  --queue-mode              sleep between exchanges (LwM2M queue mode)
  --storage <bytes>         largest package accepted (default 1 GiB)
  --encoding seed|registry  Object 9 numbering (default seed)
  --lwm2m-version 1.0|1.1|1.2  LwM2M version offered in Register (default 1.1; on 4.12 the next lower one)
  --pin-version             offer only --lwm2m-version (no fallback on 4.12)
  --formats <cf,cf,…>       content formats announced (ct) and accepted, e.g. 110 or 11542 (default: all)
SIGINT / SIGTERM de-registers and exits.`;

async function loadObject9(path: string): Promise<PersistedObject | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as PersistedObject;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path}: unreadable Object 9 state (${(error as Error).message}); move it aside to start afresh`, { cause: error });
  }
}

function describe(e: ClientEvent): string | undefined {
  switch (e.type) {
    case 'registered':
      return `registered with ${e.serverUri} at ${e.location}`;
    case 'bootstrapped':
      return `bootstrapped; server ${e.serverUri}`;
    case 'bootstrapFailed':
      return `bootstrap failed: ${e.reason}; retry in ${Math.round(e.retryInMs / 1000)} s`;
    case 'registrationFailed':
      return `registration failed: ${e.reason}; retry in ${Math.round(e.retryInMs / 1000)} s`;
    case 'registrationDowngraded':
      return `${e.reason}; next Register offers LwM2M ${e.lwm2mVersion} with the ${e.ctForm} ct form`;
    case 'deregistered':
      return 'de-registered';
    case 'error':
      return `error: ${e.error.message}`;
    default:
      return undefined;
  }
}

export async function runClientCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        server: { type: 'string' },
        bootstrap: { type: 'string' },
        endpoint: { type: 'string' },
        'data-dir': { type: 'string', default: './depot-client' },
        'install-dir': { type: 'string' },
        trust: { type: 'string', multiple: true },
        manufacturer: { type: 'string', default: 'Depot' },
        model: { type: 'string', default: 'depot-client' },
        'firmware-version': { type: 'string', default: process.version },
        'os-version': { type: 'string', default: `${process.platform} ${process.arch}` },
        serial: { type: 'string' },
        lifetime: { type: 'string', default: '300' },
        'queue-mode': { type: 'boolean', default: false },
        storage: { type: 'string', default: String(1 << 30) },
        encoding: { type: 'string', default: 'seed' },
        'lwm2m-version': { type: 'string', default: '1.1' },
        'pin-version': { type: 'boolean', default: false },
        formats: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...dtlsOptionSpec,
      },
    }));
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    if (!values.server && !values.bootstrap) throw new Error('--server or --bootstrap is required');
    if (!values.trust?.length) throw new Error('--trust is required: the device installs only packages signed by a key it trusts');
    if (!/^[1-9]\d*$/.test(values.lifetime)) throw new Error('--lifetime takes seconds');
    if (!/^[1-9]\d*$/.test(values.storage)) throw new Error('--storage takes bytes');
    if (values.encoding !== 'seed' && values.encoding !== 'registry') throw new Error('--encoding is seed or registry');
    if (!['1.0', '1.1', '1.2'].includes(values['lwm2m-version'])) throw new Error('--lwm2m-version is 1.0, 1.1 or 1.2');
    if (values.formats !== undefined && (!/^\d{1,5}(,\d{1,5})*$/.test(values.formats) || values.formats.split(',').some((f) => Number(f) > 65535))) throw new Error('--formats takes content format numbers (0-65535) separated by commas, e.g. 110,11542');
  } catch (error) {
    process.stderr.write(`depot client: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const dataDir = values['data-dir'];
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const trust = await loadPackageTrust(values.trust);
  const installer = new DirectoryInstaller({ root: values['install-dir'] ?? join(dataDir, 'software') });
  const object9File = join(dataDir, 'object9.json');
  // One write at a time, in order: each snapshot supersedes the previous one.
  let saving = Promise.resolve();
  const deps = {
    dataDir: join(dataDir, 'staging'),
    trust,
    installer,
    quotaBytes: Number(values.storage),
    profile: values.encoding === 'registry' ? ('registry' as const) : ('seed' as const),
    // coaps:// Package URIs go over the DM server's DTLS session (bound once the client exists).
    // A download that gets no answer drops the dead DTLS association, as in the simulator.
    fetcher: new DefaultPackageFetcher({ session: (uri) => session.client?.sessionClientFor(uri), sessionFailed: async (uri, error) => session.client?.sessionRequestFailed(uri, error) }),
    persist: (snapshot: PersistedObject): Promise<void> => {
      const next = saving.then(() => writeFileAtomic(object9File, JSON.stringify(snapshot) + '\n', { mode: KEY_FILE_MODE }));
      // A failed save is the caller's error; it must not fail every later save too.
      saving = next.catch(() => undefined);
      return next;
    },
  };
  // Filled in once the client exists; a download restored before that cannot use the session yet.
  const session: { client?: Lwm2mClient } = {};
  const persisted = await loadObject9(object9File);
  let object9: SoftwareManagement;
  if (persisted) {
    const restored = await SoftwareManagement.restore(persisted, deps);
    object9 = restored.object;
    for (const r of restored.reports) process.stdout.write(`depot client: Object 9 restored: ${r.from.pkg} → ${r.to.pkg} (${r.action})\n`);
  } else {
    object9 = new SoftwareManagement(deps);
    await writeFile(object9File, JSON.stringify(object9.snapshot()) + '\n', { mode: 0o600 });
  }
  const psk = pskOf(values);
  const endpoint = values.endpoint ?? hostname();
  const client = (session.client = new Lwm2mClient({
    endpoint,
    ...(values.server ? { serverUri: values.server } : {}),
    ...(values.bootstrap ? { bootstrapUri: values.bootstrap } : {}),
    ...(psk ? { psk } : {}),
    lifetime: Number(values.lifetime),
    queueMode: values['queue-mode'],
    lwm2mVersion: values['lwm2m-version'] as '1.0' | '1.1' | '1.2',
    pinVersion: values['pin-version'],
    ...(values.formats !== undefined ? { formats: values.formats.split(',').map(Number) } : {}),
    stateFile: join(dataDir, 'client-state.json'),
    device: {
      manufacturer: values.manufacturer,
      modelNumber: values.model,
      serialNumber: values.serial ?? endpoint,
      firmwareVersion: values['firmware-version'],
      softwareVersion: values['os-version'],
    },
    objects: [new SoftwareManagementAdapter(object9)],
  }));
  client.on((e) => {
    const line = describe(e);
    if (line) process.stdout.write(`depot client: ${line}\n`);
  });
  object9.onChange((c) => process.stdout.write(`depot client: /9/${c.iid} ${c.transition}: ${c.state.pkg}, ${c.state.result}${c.detail ? ` (${c.detail})` : ''}\n`));
  await client.start();
  process.stdout.write(`depot client: ${endpoint} started\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // De-register, but do not hang when the server is gone (the registration then simply expires).
  const stopped = client.stop({ deregister: true });
  const gaveUp = await Promise.race([stopped.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 10_000).unref())]);
  await saving;
  if (gaveUp) {
    process.stdout.write('depot client: the server did not answer the de-registration; exiting anyway\n');
    process.exit(0); // the pending exchange would keep the process alive
  }
  return 0;
}
