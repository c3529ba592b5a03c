import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import { startDepotServer } from '../app/server.js';
import { certificateOf, trustRootsOf } from './dtls-options.js';
import { startDemoCampaign } from '../app/demo-campaign.js';
import { loadPackageTrust } from './package.js';
import { logLevelOf } from '../observability/logger.js';

const USAGE = `usage: depot serve [--host <addr>] [--coap-port <port>] [--http-port <port>] [--data-dir <dir>] [--allow-unsecured]
  --host <addr>        address to listen on (default 0.0.0.0; use :: for IPv6)
  --coap-port <port>   CoAP (UDP) port for LwM2M devices (default 5683)
  --coaps-port <port>  CoAP over DTLS port (default 5684; "off" disables it)
  --dtls-max-associations <n>  DTLS sessions kept (default 10000, ~20 KiB each); size it to the fleet
  --cert <file.pem>    server certificate chain for ECDHE-ECDSA (with --key)
  --key <file.pem>     private key of --cert
  --ca <file.pem>      extra roots trusted for device certificates (Depot's CA is trusted already)
  --http-port <port>   HTTP API port (default 8080)
  --data-dir <dir>     where Depot keeps its data: SQLite store, API token (default ./depot-data)
  --allow-unsecured    accept LwM2M registrations over plain CoAP (trusted networks, simulations)
  --public-host <host> host devices reach Depot at, written into them at bootstrap
                       (default: the --host address, or the first external IPv4 address)
  --auto-accept-bootstrap  serve every bootstrap request without an operator decision (simulations)
  --insecure-bootstrap LAB MODE: also serve bootstrap over plain CoAP, sending DM keys in clear
                       (default: bootstrap over DTLS with a bootstrap credential only)
  --rebootstrap-interval <s>  a provisioned device is bootstrapped again at most this often (default 600)
  --bootstrap-credentials psk|x509  what bootstrap gives each device for the DM server: its own PSK
                       (default) or a certificate from Depot's CA ("depot ca init" first)
  --sim <n>            also run a simulated fleet of n devices (several makes/models, DTLS with per-device PSKs);
                       with --omadm-port a quarter of them are OMA DM phones of the compliance profiles
  --sim-profile <file> the fleet's profile (JSON, see docs/lwm2m-client.md); default: a built-in demo fleet
  --demo-campaign      with --sim: once the fleet is up, put a demo package (signed with the demo key)
                       in the catalog and run a campaign over every device, printing its progress
                       (docs/campaigns.md "Demo"); the simulated DM phones then open a session every 5 s
  --package-trust <id=file|file>  only accept packages signed by these keys (Ed25519 public key PEM,
                       repeatable; "depot package keygen" makes them). Without it Depot relays any
                       well-formed package and the device judges its signature
  --omadm-port <port>  serve OMA DM 1.2 (SyncML DM over HTTPS, certificate from Depot's CA) on this
                       port (default: off; 8443 is a common choice). With --sim and no CA yet, a CA
                       is made in <data-dir>/ca for the demo
  --omadm-insecure-http  LAB MODE: serve OMA DM over plain HTTP instead of HTTPS
  --pull-via coap|http where devices download packages from (Package URI): the CoAP listener
                       (default) or the HTTP listener (/pkg/<token>, with Range)
  --sms-callback-base <url>  turn SMS on: where Kannel reaches this API port (delivery reports, MO);
                       see "depot sms kannel-config" and docs/sms.md
  --sms-kannel <url>   smsbox's sendsms URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms (without it
                       SMS wait in the outbox)
  --sms-public-base <url>  origin of SMS download links (default: --sms-callback-base)
  --sms-from <sender>  default sender (number, short code or name)
  --sms-rate <n>       SMS handed to Kannel per second, at most (default 10)
  --trusted-proxy <addr|cidr>  a reverse proxy whose X-Forwarded-For names the client (repeatable):
                       the API's auth throttle, audit and request logs then see client addresses
  --http-max-connections-per-source <n>  open API connections from one address (default 256; 0 off,
                       e.g. behind a proxy)
  --log-level <level>  structured JSON logs on stdout: fatal, error, warn, info (default; or
                       DEPOT_LOG_LEVEL), debug, trace, silent
The console is at http://<host>:<http-port>/. At the first start (no users yet) an admin "admin"
is made with DEPOT_ADMIN_PASSWORD, or a random password printed once (DEPOT_ADMIN_USER names it).
The API token is DEPOT_API_TOKEN, or the file <data-dir>/api-token (created on first start).
PSK keys are sealed at rest with DEPOT_SECRET_KEY, or the key file <data-dir>/secrets.key (created
on first start; back it up apart from the database).`;

/** An IPv4/IPv6 address, optionally with a /prefix (what Fastify's trustProxy list takes). */
function isProxyAddress(text: string): boolean {
  const [address, prefix, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be a port number (0-65535), got "${value}"`);
  return n;
}

/** `depot serve`: runs until SIGINT/SIGTERM. */
export async function runServeCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: 'string', default: '0.0.0.0' },
        'coap-port': { type: 'string', default: '5683' },
        'http-port': { type: 'string', default: '8080' },
        'coaps-port': { type: 'string', default: '5684' },
        'dtls-max-associations': { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string', multiple: true },
        'allow-unsecured': { type: 'boolean', default: false },
        'public-host': { type: 'string' },
        'auto-accept-bootstrap': { type: 'boolean', default: false },
        'insecure-bootstrap': { type: 'boolean', default: false },
        'rebootstrap-interval': { type: 'string' },
        sim: { type: 'string' },
        'sim-profile': { type: 'string' },
        'demo-campaign': { type: 'boolean', default: false },
        'data-dir': { type: 'string', default: './depot-data' },
        'package-trust': { type: 'string', multiple: true },
        'pull-via': { type: 'string', default: 'coap' },
        'bootstrap-credentials': { type: 'string', default: 'psk' },
        'omadm-port': { type: 'string' },
        'omadm-insecure-http': { type: 'boolean', default: false },
        'sms-callback-base': { type: 'string' },
        'sms-kannel': { type: 'string' },
        'sms-public-base': { type: 'string' },
        'sms-from': { type: 'string' },
        'sms-rate': { type: 'string' },
        'log-level': { type: 'string' },
        'trusted-proxy': { type: 'string', multiple: true },
        'http-max-connections-per-source': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    port(values['coap-port'], '--coap-port');
    port(values['http-port'], '--http-port');
    if (values['omadm-port'] !== undefined) port(values['omadm-port'], '--omadm-port');
    else if (values['omadm-insecure-http']) throw new Error('--omadm-insecure-http needs --omadm-port');
    if (values['coaps-port'] !== 'off') port(values['coaps-port'], '--coaps-port');
    certificateOf(values);
    if (values.sim !== undefined && !/^\d+$/.test(values.sim)) throw new Error(`--sim takes a number of devices, got "${values.sim}"`);
    if (values['demo-campaign'] && values.sim === undefined) throw new Error('--demo-campaign needs --sim <n>');
    logLevelOf(values['log-level'] ?? process.env.DEPOT_LOG_LEVEL);
    if (values['pull-via'] !== 'coap' && values['pull-via'] !== 'http') throw new Error(`--pull-via is coap or http, got "${values['pull-via']}"`);
    if (values['bootstrap-credentials'] !== 'psk' && values['bootstrap-credentials'] !== 'x509') throw new Error(`--bootstrap-credentials is psk or x509, got "${values['bootstrap-credentials']}"`);
    const rebootstrap = values['rebootstrap-interval'];
    if (rebootstrap !== undefined && !/^\d+$/.test(rebootstrap)) throw new Error(`--rebootstrap-interval takes seconds, got "${rebootstrap}"`);
    const max = values['dtls-max-associations'];
    if (max !== undefined && !/^[1-9]\d*$/.test(max)) throw new Error(`--dtls-max-associations takes a positive number, got "${max}"`);
    if ((values['sms-kannel'] ?? values['sms-public-base'] ?? values['sms-from'] ?? values['sms-rate']) !== undefined && !values['sms-callback-base']) throw new Error('the --sms-* options need --sms-callback-base');
    if (values['sms-rate'] !== undefined && !(Number(values['sms-rate']) > 0)) throw new Error(`--sms-rate takes a positive number, got "${values['sms-rate']}"`);
    const perSource = values['http-max-connections-per-source'];
    if (perSource !== undefined && !/^\d+$/.test(perSource)) throw new Error(`--http-max-connections-per-source takes a number, got "${perSource}"`);
    for (const proxy of values['trusted-proxy'] ?? []) if (!isProxyAddress(proxy)) throw new Error(`--trusted-proxy takes an IP address or CIDR range, got "${proxy}"`);
  } catch (error) {
    process.stderr.write(`depot serve: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  let packageTrust;
  try {
    packageTrust = values['package-trust']?.length ? await loadPackageTrust(values['package-trust']) : undefined;
  } catch (error) {
    process.stderr.write(`depot serve: ${(error as Error).message}\n`);
    return 2;
  }
  const ports: [string, string | undefined][] = [
    ['--http-port', values['http-port']],
    ['--coap-port', values['coap-port']],
    ['--coaps-port', values['coaps-port']],
    ['--omadm-port', values['omadm-port']],
  ];
  const startServer = () =>
    startDepotServer({
    log: { level: logLevelOf(values['log-level'] ?? process.env.DEPOT_LOG_LEVEL) },
    host: values.host,
    coapPort: port(values['coap-port'], '--coap-port'),
    coapsPort: values['coaps-port'] === 'off' ? null : port(values['coaps-port'], '--coaps-port'),
    ...(values['dtls-max-associations'] !== undefined ? { dtlsMaxAssociations: Number(values['dtls-max-associations']) } : {}),
    ...(values.cert ? { certificate: certificateOf(values)! } : {}),
    trustRoots: trustRootsOf(values),
    httpPort: port(values['http-port'], '--http-port'),
    dataDir: values['data-dir'],
    allowUnsecured: values['allow-unsecured'],
    autoAcceptBootstrap: values['auto-accept-bootstrap'],
    insecureBootstrap: values['insecure-bootstrap'],
    ...(values['rebootstrap-interval'] !== undefined ? { bootstrapLimits: { rebootstrapIntervalMs: Number(values['rebootstrap-interval']) * 1000 } } : {}),
    bootstrapCredentials: values['bootstrap-credentials'] === 'x509' ? 'x509' : 'psk',
    ...(values['public-host'] ? { publicHost: values['public-host'] } : {}),
    installs: { pullVia: values['pull-via'] === 'http' ? 'http' : 'coap', ...(packageTrust ? { trust: packageTrust } : {}) },
    ...(values['omadm-port'] !== undefined ? { omadm: { port: port(values['omadm-port'], '--omadm-port'), insecureHttp: values['omadm-insecure-http'] } } : {}),
    ...(values['sms-callback-base']
      ? { sms: { callbackBase: values['sms-callback-base'], ...(values['sms-kannel'] ? { kannel: { sendsmsUrl: values['sms-kannel'] } } : {}), ...(values['sms-public-base'] ? { publicBaseUrl: values['sms-public-base'] } : {}), ...(values['sms-from'] ? { from: values['sms-from'] } : {}), ...(values['sms-rate'] ? { ratePerSecond: Number(values['sms-rate']) } : {}) } }
      : {}),
    ...(values.sim !== undefined ? { simulate: { count: Number(values.sim), ...(values['sim-profile'] ? { profileFile: values['sim-profile'] } : {}), ...(values['demo-campaign'] ? { phoneSessionIntervalMs: 5000 } : {}) } } : {}),
    api: {
      ...(values['trusted-proxy']?.length ? { trustedProxies: values['trusted-proxy'] } : {}),
      ...(values['http-max-connections-per-source'] !== undefined ? { limits: { maxConnectionsPerSource: Number(values['http-max-connections-per-source']) } } : {}),
    },
  });
  let server;
  try {
    server = await startServer();
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { port?: number };
    if (e.code !== 'EADDRINUSE') throw error;
    const busy = e.port ?? Number(/:(\d+)\s*$/.exec(e.message)?.[1]);
    const flags = ports.filter(([, value]) => value !== undefined && Number(value) === busy).map(([flag]) => flag);
    process.stderr.write(`depot serve: port ${Number.isFinite(busy) ? busy : '?'} is already in use${flags.length ? ` (${flags.join(', ')})` : ''}; choose another with ${flags.length ? flags.map((f) => `${f} <port>`).join(' or ') : '--http-port, --coap-port, --coaps-port or --omadm-port'}\n`);
    return 1;
  }
  if (server.firstAdmin) {
    if (server.firstAdmin.password) process.stdout.write(`depot: first admin "${server.firstAdmin.username}" created with password ${server.firstAdmin.password}\ndepot: (shown once: sign in at the console and change it, or set DEPOT_ADMIN_PASSWORD before the first start)\n`);
    else process.stdout.write(`depot: first admin "${server.firstAdmin.username}" created with the password of DEPOT_ADMIN_PASSWORD\n`);
  }
  for (const [name, where] of Object.entries(server.listening)) process.stdout.write(`depot: ${name} ${where}\n`);
  if (values['insecure-bootstrap']) process.stderr.write('depot: WARNING: --insecure-bootstrap: Bootstrap-Requests over plain CoAP are served and DM keys are sent in clear; lab use only\n');
  if (server.simulator) process.stdout.write(`depot: simulated fleet of ${server.simulator.stats().total} devices started\n`);
  if (server.demoPhones) process.stdout.write(`depot: ${server.demoPhones.phones.length} simulated OMA DM phones started (${Object.entries(server.demoPhones.stats().byProfile).map(([p, n]) => `${n} ${p}`).join(', ')})\n`);
  process.stdout.write('depot: ready\n');
  const demo = values['demo-campaign']
    ? startDemoCampaign({
        dataDir: values['data-dir'],
        catalog: server.catalog,
        campaigns: server.campaigns,
        inventory: server.store.inventory,
        expected: (server.simulator?.stats().total ?? 0) + (server.demoPhones?.phones.filter((p) => p.phone !== undefined).length ?? 0),
        print: (line) => process.stdout.write(`depot: ${line}\n`),
      })
    : undefined;
  demo?.finished.catch((error: unknown) => process.stderr.write(`depot: demo campaign: ${(error as Error).message}\n`));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  demo?.stop();
  process.stdout.write('depot: shutting down\n');
  await server.close();
  return 0;
}
