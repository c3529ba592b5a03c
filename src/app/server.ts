import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createApi, type ApiOptions } from '../api/server.js';
import { Code, ContentFormat } from '../coap/codes.js';
import { CoapServer } from '../coap/server.js';
import { UdpTransport } from '../coap/udp.js';
import type { CertificateCredentials } from '../dtls/connection.js';
import { DtlsTransport } from '../dtls/transport.js';
import { InstallDriver, type PhaseTimeouts } from '../fleet/install-driver.js';
import { ChainDriver } from '../fleet/chain-driver.js';
import type { ChainJob } from '../fleet/domain.js';
import { MethodLearning, type LearningOptions } from '../fleet/learning.js';
import { MarkMethod } from '../fleet/methods/mark.js';
import { FirstAvailableMethod } from '../fleet/methods/handover.js';
import { inventoryResolver, ResolvedEndpointMethod } from '../fleet/methods/resolve.js';
import { ScomoMethod } from '../fleet/methods/scomo.js';
import { CertificateLinks, Lwm2mBootstrapChannel, SendCertificateMethod, SmsCertificateLinkChannel, TrustLedger, trustRootOf, type CertificateChannel } from '../fleet/methods/send-certificate.js';
import { StorePhoneDirectory } from '../fleet/methods/sms-link.js';
import { certificateRoutes } from '../api/certificates.js';
import { Object9Method } from '../fleet/methods/object9.js';
import { PackageEndpoint } from '../fleet/package-endpoint.js';
import { PackageCatalog } from '../fleet/packages.js';
import { DEVICE_ADDRESS_PREFIX, Inventory } from '../fleet/inventory.js';
import { Lwm2mInventoryFeed } from '../fleet/inventory-feed.js';
import { CampaignEngine } from '../fleet/campaigns.js';
import { recordCampaignHistory } from '../fleet/campaign-history.js';
import { chainJobPort } from '../fleet/campaign-chain.js';
import { BootstrapServer, type DeviceCertificateIssuer } from '../lwm2m/server/bootstrap.js';
import { CertificateAuthority, caPaths } from '../pki/ca.js';
import { describeSubject } from '../dtls/certificates.js';
import { Lwm2mServer } from '../lwm2m/server/server.js';
import type { TrustStore } from '../pkg/index.js';
import type { Simulator } from '../sim/simulator.js';
import { openSqliteStore } from '../store/index.js';
import type { DeviceFactsPatch, PendingLimits, Registration, SqliteStore } from '../store/index.js';
import { DEMO_KEY_ID, startDemoFleet, startDemoPhones } from './demo-fleet.js';
import type { DemoPhones } from './demo-fleet.js';
import { factsEndpointOf, OmaDmHttpServer } from '../omadm/http.js';
import { commandQueueHooks } from '../omadm/queue.js';
import { ScomoService } from '../omadm/scomo/service.js';
import { endpointHooks } from '../omadm/scomo/hooks.js';
import { OmaDmBootstrapService } from '../omadm/bootstrap/service.js';
import type { WapPushSender } from '../omadm/push-port.js';
import { forwardPushDeliveryReports, startSms, wapPushSenderOf, type RunningSms, type SmsServerConfig } from './sms.js';
import { adminRoutes, ensureFirstAdmin } from '../api/admin.js';
import { registerConsole } from '../api/console.js';
import { createLogger, type LogLevel, type Logger } from '../observability/logger.js';
import { DepotMetrics } from '../observability/metrics.js';
import { instrumentApi } from '../observability/http.js';
import type { DestinationStream } from 'pino';

export interface DepotServerConfig {
  host: string;
  coapPort: number;
  /** CoAP over DTLS port; null turns the listener off. */
  coapsPort: number | null;
  /** Most DTLS associations kept (default 10,000; each idle one costs ~20 KiB); past it the least recently active goes. */
  dtlsMaxAssociations?: number;
  httpPort: number;
  /** Server certificate for ECDHE-ECDSA (PSK needs none). */
  certificate?: CertificateCredentials;
  /** Roots trusted for device certificates, besides Depot's own CA (if initialised). */
  trustRoots?: X509Certificate[];
  /** Address the HTTP API binds to (default: the same as host). */
  httpHost?: string;
  dataDir: string;
  /** Accept LwM2M registrations over plain CoAP (trusted networks and simulations only). */
  allowUnsecured: boolean;
  /** The API bearer token; default: DEPOT_API_TOKEN, else <dataDir>/api-token (created once). */
  apiToken?: string;
  /** Host name or address devices use to reach this server (written into them at bootstrap). */
  publicHost?: string;
  /** Accept every bootstrap request without an operator decision (simulations only). */
  autoAcceptBootstrap?: boolean;
  /** Lab mode: serve Bootstrap-Requests over plain CoAP (the DM key travels in clear). Default off. */
  insecureBootstrap?: boolean;
  /** Bootstrap bounds: re-bootstrap interval of a provisioned device, undecided records (BootstrapServerOptions). */
  bootstrapLimits?: { rebootstrapIntervalMs?: number; pending?: Partial<PendingLimits> };
  /** What bootstrap gives each device for the DM server: a PSK (default) or a certificate from Depot's CA. */
  bootstrapCredentials?: 'psk' | 'x509';
  /** Run a simulated fleet of this many devices beside the server. */
  simulate?: { count: number; profileFile?: string; /** How often each simulated DM phone opens a session of its own (default 60 s). */ phoneSessionIntervalMs?: number };
  /** Object 9 install driver settings (tests shorten the polling interval and timeouts). */
  /** How long a queue-mode device stays reachable after it last spoke, ms (default 93 s, MAX_TRANSMIT_WAIT). */
  queueModeAwakeTimeMs?: number;
  /** HTTP API limits: failed-authentication throttling, body sizes, timeouts (see docs/api.md). */
  api?: Pick<ApiOptions, 'authThrottle' | 'limits' | 'maxPackageBytes' | 'now' | 'trustedProxies'>;
  /** The OMA DM 1.2 endpoint (docs/omadm.md): off unless a port is given; HTTPS with a certificate from Depot's CA unless insecureHttp. */
  omadm?: { port: number; insecureHttp?: boolean; allowBasic?: boolean; /** WAP Push by SMS (the SMS layer): turns on bootstrap and start-dm (docs/omadm-bootstrap.md). */ pushSender?: WapPushSender; serverId?: string };
  /** SMS over Kannel (docs/sms.md): off unless configured. */
  sms?: SmsServerConfig;
  /** Structured JSON logs (pino): level (default DEPOT_LOG_LEVEL, else silent; `depot serve` says info) and where they go (default stdout). */
  log?: { level?: LogLevel; destination?: DestinationStream };
  installs?: { /** Package URIs on the CoAP listener (default) or the HTTP one. */ pullVia?: 'coap' | 'http'; pollIntervalMs?: number; timeouts?: Partial<PhaseTimeouts>; maxAttempts?: number; trust?: TrustStore };
  /** The install chain: safety-net tick, and per-model learning (skip after N failures, probe rate, seed). */
  chain?: {
    tickMs?: number;
    learning?: Pick<LearningOptions, 'skipAfter' | 'probeRate' | 'seed'>;
    /** Send certificate's longest wait for the device to take the root, ms (default 1 day). */
    trustStepTimeoutMs?: number;
    /** SCOMO: a job no DM session took for this long, on a device whose trust is not confirmed, sends the root (default 1 hour). */
    noSessionMs?: number;
  };
}

/** The address devices reach us at: the bound address, or the first external IPv4 one. */
function defaultPublicHost(host: string): string {
  if (host !== '0.0.0.0' && host !== '::') return host;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export interface RunningDepotServer {
  bootstrap: BootstrapServer;
  simulator: Simulator | undefined;
  coap: CoapServer;
  coaps: CoapServer | undefined;
  lwm2m: Lwm2mServer;
  store: SqliteStore;
  /** The package catalog (<dataDir>/packages) and the Object 9 install driver. */
  catalog: PackageCatalog;
  installs: InstallDriver;
  /** Install jobs across methods (Object 9, then Mark for Installation): the method seam of issue 16. */
  chain: ChainDriver;
  learning: MethodLearning;
  /** One record per device across protocols (issue 16); OMA DM sessions report through inventory.recordContact. */
  inventory: Inventory;
  /** Staged installs across the fleet, through the install chain. */
  campaigns: CampaignEngine;
  api: FastifyInstance;
  omadm: OmaDmHttpServer | undefined;
  /** The SMS outbox and its routes (when configured). */
  sms: RunningSms | undefined;
  /** The structured logger and the Prometheus metrics (issue 17). */
  logger: Logger;
  metrics: DepotMetrics;
  /** The first admin made at this start (no users before): its password only when generated, to be shown once. */
  firstAdmin: { username: string; password?: string; fromEnv: boolean } | undefined;
  /** SCOMO jobs on OMA DM devices (docs/omadm.md "SCOMO"). */
  scomo: ScomoService;
  /** The simulated OMA DM phones of `--sim` when the DM endpoint is on. */
  demoPhones: DemoPhones | undefined;
  /** Where each listener is bound, e.g. { coap: 'coap://0.0.0.0:5683' }. */
  listening: Record<string, string>;
  close(): Promise<void>;
}

export const DEPOT_VERSION = '0.1.0';

/** The API token: given, from the environment, or generated once into the data dir (mode 0600). */
export function apiToken(dataDir: string, given?: string): { token: string; source: string } {
  if (given) return { token: given, source: 'command line' };
  const fromEnv = process.env.DEPOT_API_TOKEN;
  if (fromEnv) return { token: fromEnv, source: 'DEPOT_API_TOKEN' };
  const file = join(dataDir, 'api-token');
  if (!existsSync(file)) {
    const temp = file + '.tmp';
    writeFileSync(temp, randomBytes(24).toString('base64url') + '\n', { mode: 0o600 });
    renameSync(temp, file);
  }
  return { token: readFileSync(file, 'utf8').trim(), source: file };
}

/** Device certificates from Depot's CA for certificate-mode bootstrap: the key never leaves memory but to the device. */
function deviceCertificateIssuer(ca: CertificateAuthority): DeviceCertificateIssuer {
  return {
    trustAnchorDer: new X509Certificate(ca.exportRoot('pem')).raw,
    issue: async (endpoint) => {
      const issued = await ca.issueDeviceCertificate({ endpoint });
      const privateKeyDer = createPrivateKey(issued.privateKeyPem!).export({ type: 'pkcs8', format: 'der' });
      return { certificateDer: issued.certificateDer, privateKeyDer, subject: describeSubject(issued.certificate).subject };
    },
  };
}

/** Starts Depot: the embedded store, CoAP with the LwM2M server, and the HTTP API. */
export async function startDepotServer(config: DepotServerConfig): Promise<RunningDepotServer> {
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // What is open so far, closed in reverse if a later step fails (a port in use, say).
  const opened: (() => unknown)[] = [];
  try {
    return await start(config, dataDir, opened);
  } catch (error) {
    for (const close of opened.reverse()) await Promise.resolve().then(close).catch(() => undefined);
    throw error;
  }
}

/** Asked of the kernel for the CoAP socket: ~4,000 Registers of a rebooting fleet wait there while the server works. */
const UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;

async function start(config: DepotServerConfig, dataDir: string, opened: (() => unknown)[]): Promise<RunningDepotServer> {
  const store = openSqliteStore({ dataDir });
  opened.push(() => store.close());
  const logger = createLogger({ level: config.log?.level ?? ((process.env.DEPOT_LOG_LEVEL as LogLevel | undefined) || 'silent'), ...(config.log?.destination ? { destination: config.log.destination } : {}) });
  const metrics = new DepotMetrics({ queues: store.fleetSummary, devices: { counts: () => store.fleetSummary.counts(Date.now()) } });
  const transport = await UdpTransport.bind({ host: config.host, port: config.coapPort, receiveBufferSize: UDP_RECEIVE_BUFFER });
  const coap = new CoapServer({ transport });
  opened.push(() => coap.close());
  const started = Date.now();
  coap.resource('/depot/info', {
    title: 'Depot server information',
    contentFormats: [ContentFormat.Json],
    get: () => ({
      code: Code.Content,
      contentFormat: ContentFormat.Json,
      payload: JSON.stringify({ name: 'depot', version: DEPOT_VERSION, uptimeSeconds: Math.round((Date.now() - started) / 1000), insecureBootstrap: config.insecureBootstrap === true }),
    }),
  });
  const publicHost = config.publicHost ?? defaultPublicHost(config.host);
  // Depot's own CA (depot ca init), when there is one: trusted for device certificates, issuer
  // of the server's certificate (unless --cert is given) and of device certificates at bootstrap.
  const caDir = join(dataDir, 'ca');
  // A demo (--sim) with the DM endpoint on HTTPS gets a CA made for it, as it gets a demo signing
  // key: its phones need a root to trust. Anything else needs "depot ca init" first.
  const demoCa = !existsSync(caPaths(caDir).certPath) && config.simulate !== undefined && config.omadm !== undefined && config.omadm.insecureHttp !== true;
  const ca = demoCa ? await CertificateAuthority.init(caDir) : existsSync(caPaths(caDir).certPath) ? await CertificateAuthority.load(caDir) : undefined;
  if (config.bootstrapCredentials === 'x509' && (!ca || config.coapsPort === null)) {
    throw new Error('certificate bootstrap needs Depot\'s CA ("depot ca init") and the coaps listener');
  }
  let coaps: CoapServer | undefined;
  let serverCertificate = config.certificate;
  if (config.coapsPort !== null) {
    const caRoot = ca ? new X509Certificate(ca.exportRoot('pem')) : undefined;
    const trustRoots = [...(config.trustRoots ?? []), ...(caRoot ? [caRoot] : [])];
    if (!serverCertificate && ca) {
      const wildcard = config.host === '0.0.0.0' || config.host === '::';
      const issued = await ca.issueServerCertificate({ names: [...new Set([publicHost, ...(wildcard ? [] : [config.host])])] });
      serverCertificate = { chain: [issued.certificateDer], privateKey: createPrivateKey(issued.privateKeyPem!) };
    }
    const dtls = await DtlsTransport.bind({
      host: config.host,
      port: config.coapsPort,
      receiveBufferSize: 4 * 1024 * 1024,
      server: {
        ...(config.dtlsMaxAssociations !== undefined ? { maxConnections: config.dtlsMaxAssociations } : {}),
        // A device's PSK comes from the credential store; the identity binds it to one endpoint.
        // Bootstrap PSKs (identities never shared with device ones) only get a device to /bs.
        pskLookup: async (identity) => (await store.credentials.findPsk(identity))?.key.reveal() ?? (await store.bootstrapCredentials.find('psk', identity))?.key?.reveal(),
        ...(serverCertificate ? { certificate: serverCertificate } : {}),
        ...(trustRoots.length ? { trustRoots, clientCertificate: 'request' as const } : {}),
      },
    });
    coaps = new CoapServer({ transport: dtls });
    opened.push(() => coaps?.close());
  }
  const lwm2m: Lwm2mServer = new Lwm2mServer({ store, coap: { coap, ...(coaps ? { coaps } : {}) }, allowUnsecured: config.allowUnsecured, ...(config.queueModeAwakeTimeMs !== undefined ? { queueModeAwakeTime: config.queueModeAwakeTimeMs } : {}) });
  opened.push(() => lwm2m.close());
  const uriHost = publicHost.includes(':') ? `[${publicHost}]` : publicHost;
  const dmUri = coaps ? `coaps://${uriHost}:${coaps.endpoint.transport.address().port}` : `coap://${uriHost}:${transport.address().port}`;
  const bootstrap = new BootstrapServer({
    store,
    coap: { coap, ...(coaps ? { coaps } : {}) },
    dmServer: { uri: dmUri, shortServerId: 1, lifetimeSec: 300, binding: 'U' },
    autoAccept: config.autoAcceptBootstrap ?? false,
    insecureBootstrap: config.insecureBootstrap ?? false,
    ...(config.bootstrapLimits?.rebootstrapIntervalMs !== undefined ? { rebootstrapIntervalMs: config.bootstrapLimits.rebootstrapIntervalMs } : {}),
    ...(config.bootstrapLimits?.pending ? { pendingLimits: config.bootstrapLimits.pending } : {}),
    audit: (line) => process.stderr.write(`depot: bootstrap: ${line}\n`),
    ...(config.bootstrapCredentials === 'x509' && ca ? { certificates: deviceCertificateIssuer(ca) } : {}),
  });
  opened.push(() => bootstrap.close());
  let listeningHttpPort = config.httpPort;
  const catalog = new PackageCatalog({ dataDir, repository: store.packages, ...(config.installs?.trust ? { trust: config.installs.trust } : {}), targets: store.packageTargets, inUse: (sha256) => store.campaigns.packageInUse(sha256) });
  const packageEndpoint = new PackageEndpoint({ catalog, jobs: store.installJobs });
  packageEndpoint.mount(coap);
  if (coaps) packageEndpoint.mount(coaps);
  const installs = new InstallDriver({
    store,
    lwm2m,
    catalog,
    endpoint: packageEndpoint,
    // A device registered over DTLS pulls over its own DTLS session (coaps://, same host and port);
    // others from the plain CoAP listener, or HTTP (the token is the capability; the package is signed).
    packageBaseUri: (registration) =>
      config.installs?.pullVia === 'http'
        ? `http://${uriHost}:${listeningHttpPort}`
        : registration?.address.scheme === 'coaps' && coaps
          ? `coaps://${uriHost}:${coaps.endpoint.transport.address().port}`
          : `coap://${uriHost}:${transport.address().port}`,
    ...(config.installs?.pollIntervalMs !== undefined ? { pollIntervalMs: config.installs.pollIntervalMs } : {}),
    ...(config.installs?.timeouts ? { timeouts: config.installs.timeouts } : {}),
    ...(config.installs?.maxAttempts !== undefined ? { maxAttempts: config.installs.maxAttempts } : {}),
    onError: (error) => {
      metrics.error('installs');
      logger.warn({ err: error }, 'install driver error');
    },
    onTransition: (job, from) => {
      metrics.installTransition(job, from);
      logger.info({ job: job.id, kind: job.kind, endpoint: job.endpoint, method: job.method, from, to: job.state, result: job.resultName, attempts: job.attempts }, 'install job transition');
    },
  });
  opened.push(() => installs.close());
  const object9 = new Object9Method({ engine: installs, registrations: store.registrations, catalog: store.packages });
  const learning = new MethodLearning({ stats: store.methodStats, deviceFacts: store.deviceFacts, ...config.chain?.learning });
  // SMS before the chain: its link method is one of the chain's.
  const sms = config.sms ? await startSms(store, catalog, config.sms) : undefined;
  if (sms) opened.push(() => sms.close());
  let omadmDownloadBase: string | undefined;
  const scomo = new ScomoService({ jobs: store.omadmScomo, catalog, accounts: store.omadmAccounts, downloadBase: () => omadmDownloadBase, log: (line) => process.stderr.write(`depot: ${line}\n`) });
  // Send certificate (docs/trust.md): Depot's root to devices that lack it, by SMS link or the LwM2M bootstrap's trust anchor.
  const trustRoot = ca ? trustRootOf(ca.exportRoot('der')) : undefined;
  const trustLedger = trustRoot ? new TrustLedger({ trust: store.trust, inventory: store.inventory, root: () => trustRoot }) : undefined;
  const certificateChannels: CertificateChannel[] = [];
  if (trustRoot && sms && config.sms) {
    const numbers = new StorePhoneDirectory({ numbers: store.sms.numbers, deviceFacts: store.deviceFacts, registrations: store.registrations });
    // A phone bootstrapped by SMS is known by its number there too.
    const directory = { numberOf: async (endpoint: string) => (await numbers.numberOf(endpoint)) ?? (endpoint.startsWith('omadm:') ? ((await store.omadmBootstrap.getByDeviceId(endpoint.slice('omadm:'.length)))?.msisdn ?? null) : null) };
    certificateChannels.push(new SmsCertificateLinkChannel({ outbox: sms.outbox, directory, trust: store.trust, root: () => trustRoot, publicBaseUrl: config.sms.certificateBaseUrl ?? config.sms.publicBaseUrl ?? config.sms.callbackBase, ...(config.sms.linkTtlMs ? { linkTtlMs: config.sms.linkTtlMs } : {}) }));
  }
  if (trustRoot && config.bootstrapCredentials === 'x509') {
    certificateChannels.push(new Lwm2mBootstrapChannel({ trust: store.trust, root: () => trustRoot, bootstrapsWithCertificates: async (endpoint) => (await store.registrations.getByEndpoint(endpoint)) !== null }));
  }
  const sendCertificate = trustLedger && certificateChannels.length > 0 ? new SendCertificateMethod({ channels: certificateChannels, ledger: trustLedger, ...(config.chain?.trustStepTimeoutMs !== undefined ? { stepTimeoutMs: config.chain.trustStepTimeoutMs } : {}) }) : undefined;
  // Trust first only where SCOMO runs over HTTPS with Depot's own certificate and the root can be sent.
  const scomoTrust = sendCertificate && config.omadm && config.omadm.insecureHttp !== true ? { stateOf: (endpoint: string) => trustLedger!.stateOf(endpoint), ...(config.chain?.noSessionMs !== undefined ? { noSessionMs: config.chain.noSessionMs } : {}) } : undefined;
  const scomoMethod = new ScomoMethod({ scomo, accounts: store.omadmAccounts, deviceFacts: store.deviceFacts, ...(scomoTrust ? { trust: scomoTrust } : {}) });
  // The chain of issue 16: LwM2M Object 9 → OMA DM SCOMO → SMS link (when SMS is configured) →
  // Mark for Installation, which installs at the next contact by Object 9 or SCOMO.
  const inventory = new Inventory({ repository: store.inventory });
  const inventoryWarn = (error: unknown): void => process.emitWarning(`inventory: ${error instanceof Error ? error.message : String(error)}`);
  // An install that ended well puts the package in the device's software list (whatever method did it).
  const onChainInstalled = (job: ChainJob, method: string): void =>
    void catalog
      .get(job.packageSha256)
      .then((pkg) => (pkg ? inventory.recordInstalled(job.endpoint, { name: pkg.name, version: pkg.version }, `install:${method}`) : null))
      .catch(inventoryWarn);
  const chain = new ChainDriver({
    store,
    methods: [object9, scomoMethod, ...(sms ? [sms.linkMethod] : []), new MarkMethod({ handover: new ResolvedEndpointMethod(new FirstAvailableMethod([object9, scomoMethod]), inventoryResolver(store.inventory)) })],
    learning,
    onInstalled: onChainInstalled,
    ...(scomoTrust && sendCertificate ? { trust: sendCertificate } : {}),
    ...(config.chain?.tickMs !== undefined ? { tickMs: config.chain.tickMs } : {}),
    onError: (error) => {
      metrics.error('chain');
      logger.warn({ err: error }, 'install chain error');
    },
  });
  const lwm2mEvent = (event: 'registered' | 'updated' | 'deregistered' | 'expired') => (registration: { endpoint: string }): void => {
    metrics.lwm2m(event);
    logger.debug({ endpoint: registration.endpoint, event }, 'lwm2m');
  };
  const lwm2mListeners = (['registered', 'updated', 'deregistered', 'expired'] as const).map((event) => [event, lwm2mEvent(event)] as const);
  for (const [event, listener] of lwm2mListeners) lwm2m.on(event, listener);
  const lwm2mError = (error: Error): void => {
    metrics.error('lwm2m');
    logger.warn({ err: error }, 'lwm2m error');
  };
  lwm2m.on('error', lwm2mError);
  // A registration or update is the device's "next contact" for marked installs.
  const onContact = (registration: { endpoint: string }): void => void chain.contact(registration.endpoint, 'lwm2m');
  lwm2m.on('registered', onContact);
  lwm2m.on('updated', onContact);
  opened.push(() => chain.close());
  // An SMS link install reported by the device moves its attempt on now (not at the next tick).
  const offSmsInstalled = sms?.onInstalled((endpoint) => void chain.contact(endpoint, 'sms'));
  // The inventory hears every registration, update, Object 3 facts and bootstrap (issue 16).
  // A device known only from an imported list has jobs addressed `device:<id>` (marked): its first
  // contact on any protocol is theirs too, once the inventory has joined the identity to its record.
  const contactImported = (protocol: 'lwm2m' | 'omadm') => (device: { id: string } | null): void => {
    if (device) void chain.contact(`${DEVICE_ADDRESS_PREFIX}${device.id}`, protocol);
  };
  // A device's registration, facts and updates within 50 ms are one inventory write (issue 18).
  const inventoryFeed = new Lwm2mInventoryFeed({ inventory, onError: inventoryWarn, onContact: contactImported('lwm2m') });
  const onInventoryContact = (registration: Registration): void => inventoryFeed.registration(registration);
  const onInventoryFacts = (endpoint: string, patch: DeviceFactsPatch): void => inventoryFeed.facts(endpoint, patch);
  const onInventoryBootstrap = (endpoint: string): void => void inventory.recordContact({ protocol: 'lwm2m', endpoint, bootstrapState: 'bootstrapped' }).catch(inventoryWarn);
  lwm2m.on('registered', onInventoryContact);
  lwm2m.on('updated', onInventoryContact);
  lwm2m.on('factsLearned', onInventoryFacts);
  bootstrap.on('bootstrapped', onInventoryBootstrap);
  const campaigns = new CampaignEngine({ campaigns: store.campaigns, inventory: store.inventory, catalog, jobs: chainJobPort(chain, (endpoint, sha256, since) => store.campaigns.chainJobSince(endpoint, sha256, since)), onError: (error) => process.emitWarning(`campaigns: ${error.message}`) });
  // Progress over time for the console's rollout chart (issue 17).
  const stopCampaignHistory = recordCampaignHistory(campaigns, store.campaignHistory, Date.now, (error) => process.emitWarning(`campaign history: ${error.message}`));
  opened.push(() => campaigns.close());
  // A campaign wave's send rate paces its SMS link installs (spec smsPerMinute).
  sms?.setPacing((target) => campaigns.smsPace(target.endpoint, target.packageSha256));
  const { token, source } = apiToken(dataDir, config.apiToken);
  // OMA DM bootstrap by SMS: needs the DM endpoint's URI (known once it listens) and a push sender.
  let omadmServerUri: string | undefined;
  const pushSender = config.omadm?.pushSender ?? (sms ? wapPushSenderOf(sms.outbox) : undefined);
  const omadmBootstrap = pushSender
    ? new OmaDmBootstrapService({ store: store.omadmBootstrap, accounts: store.omadmAccounts, sender: pushSender, serverId: config.omadm?.serverId ?? 'depot', serverUri: () => omadmServerUri ?? 'https://localhost/dm', ...(ca ? { rootCertificate: ca.exportRoot('der') } : {}), log: (line) => process.stderr.write(`depot: ${line}\n`) })
    : undefined;
  omadmBootstrap?.start();
  // Delivery reports of the pushes the bootstrap sent move its records on (sent → delivered/failed).
  if (sms && omadmBootstrap) opened.push(forwardPushDeliveryReports(sms.outbox, omadmBootstrap));
  opened.push(() => omadmBootstrap?.close());
  const accounts = { users: store.users, audit: store.audit };
  const firstAdmin = await ensureFirstAdmin(accounts, Date.now());
  const api = createApi({
    lwm2m,
    bootstrap,
    store,
    token,
    version: DEPOT_VERSION,
    catalog,
    installs,
    packageEndpoint,
    omadm: { accounts: store.omadmAccounts, commands: store.omadmCommands, deviceFacts: store.deviceFacts, scomo },
    omadmBootstrap: { store: store.omadmBootstrap, ...(omadmBootstrap ? { service: omadmBootstrap } : {}) },
    ...(sms ? { sms: sms.api } : {}),
    inventory: { inventory, catalog },
    campaigns: { engine: campaigns, history: store.campaignHistory },
    installChain: {
      chain,
      learning,
      rules: store.methodStats,
      requirePackage: (sha256) => catalog.require(sha256),
      knownDevice: async (endpoint) =>
        (await store.registrations.getByEndpoint(endpoint)) !== null ||
        (await store.deviceFacts.get(endpoint)) !== null ||
        // An OMA DM device with an account that never got a session through (e.g. it lacks Depot's root).
        (endpoint.startsWith('omadm:') && (await store.omadmAccounts.get(endpoint.slice('omadm:'.length))) !== null),
    },
    accounts,
    extraRoutes: (now) => [
      ...adminRoutes({ accounts, fleet: store.fleetSummary, now }),
      ...certificateRoutes({
        ...(trustRoot ? { root: trustRoot, links: new CertificateLinks({ trust: store.trust, root: () => trustRoot }) } : {}),
        ...(sendCertificate ? { sender: sendCertificate } : {}),
        channels: certificateChannels.map((c) => c.name),
        trust: store.trust,
        inventory: store.inventory,
        now,
      }),
    ],
    instrument: (app) => {
      instrumentApi(app, logger, metrics);
      registerConsole(app);
    },
    ...config.api,
  });
  const httpHost = config.httpHost ?? config.host;
  opened.push(() => api.close());
  await api.listen({ host: httpHost, port: config.httpPort });
  const a = transport.address();
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  const httpAddress = api.server.address();
  const httpPort = typeof httpAddress === 'object' && httpAddress ? httpAddress.port : config.httpPort;
  listeningHttpPort = httpPort;
  // After the listeners: resumed jobs may write Package URIs naming them.
  await installs.start();
  await chain.start();
  await campaigns.start();
  const secure = coaps?.endpoint.transport.address();
  let simulator: Simulator | undefined;
  // With the OMA DM endpoint on, a quarter of the simulated fleet (at least one) are OMA DM phones of the compliance profiles.
  const demoPhoneCount = config.simulate && config.omadm ? Math.min(config.simulate.count, Math.max(1, Math.floor(config.simulate.count / 4))) : 0;
  if (config.simulate && config.simulate.count - demoPhoneCount > 0) {
    // The fleet reaches the server at the public host, as real devices would (and as Package URIs say).
    const local = coaps ? `coaps://${uriHost}:${coaps.endpoint.transport.address().port}` : `coap://${uriHost}:${a.port}`;
    if (!coaps && !config.allowUnsecured) throw new Error('a simulated fleet needs the coaps listener, or --allow-unsecured');
    simulator = await startDemoFleet({ count: config.simulate.count - demoPhoneCount, serverUri: local, store, dataDir, ...(config.simulate.profileFile ? { profileFile: config.simulate.profileFile } : {}) });
  }
  let omadm: OmaDmHttpServer | undefined;
  let omadmUrl: string | undefined;
  let demoPhones: DemoPhones | undefined;
  if (config.omadm) {
    if (!ca && config.omadm.insecureHttp !== true) throw new Error('the OMA DM endpoint needs Depot\'s CA ("depot ca init") for its certificate, or --omadm-insecure-http');
    const wildcard = config.host === '0.0.0.0' || config.host === '::';
    const issued = config.omadm.insecureHttp === true ? undefined : await ca!.issueServerCertificate({ names: [...new Set([publicHost, ...(wildcard ? [] : [config.host])])] });
    const scheme = issued ? 'https' : 'http';
    omadm = new OmaDmHttpServer({
      store,
      host: config.host,
      port: config.omadm.port,
      ...(issued ? { tls: { cert: issued.certificatePem, key: issued.privateKeyPem! } } : { insecureHttp: true }),
      serverUri: `${scheme}://${uriHost}:${config.omadm.port}/dm`,
      ...(config.omadm.allowBasic === undefined ? {} : { allowBasic: config.omadm.allowBasic }),
      ...endpointHooks(commandQueueHooks(store.omadmCommands), scomo),
      onAuthenticated: async (deviceId) => {
        await omadmBootstrap?.onAuthenticated(deviceId);
        // A DM session is the device's contact for its open install jobs (marked installs, SCOMO).
        void chain.contact(factsEndpointOf(deviceId), 'omadm');
      },
      onFacts: (deviceId, facts) =>
        void inventory
          .recordContact({ protocol: 'omadm', devId: deviceId, ...omadmInventoryFacts(facts) })
          .then(contactImported('omadm'))
          // A session over HTTPS proves the device trusts Depot's certificate: a push waiting for that is
          // confirmed (after the session's facts are stored: the device then counts as having had a session).
          .then(() => (issued ? trustLedger?.confirmed(factsEndpointOf(deviceId), 'the device opened an HTTPS DM session after the push') : undefined))
          .catch(inventoryWarn),
      log: (line) => process.stderr.write(`depot: ${line}\n`),
    });
    opened.push(() => omadm?.close());
    // Commands a session of the previous process held ('sent') have an unknown outcome now (issue 14: command expiry).
    const abandoned = await store.omadmCommands.abandonSent(Date.now());
    if (abandoned > 0) process.stderr.write(`depot: ${abandoned} OMA DM command(s) held by a session when the server stopped are now "unknown"\n`);
    const port = await omadm.listen();
    omadmServerUri = `${scheme}://${uriHost}:${port}/dm`;
    omadmDownloadBase = `${scheme}://${uriHost}:${port}`;
    if (demoPhoneCount > 0) {
      demoPhones = await startDemoPhones({ count: demoPhoneCount, dmUrl: `${scheme}://${uriHost}:${port}/dm`, caPem: ca?.exportRoot('pem'), store, log: (line) => process.stderr.write(`depot: ${line}\n`), ...(config.simulate?.phoneSessionIntervalMs ? { sessionIntervalMs: config.simulate.phoneSessionIntervalMs } : {}) });
      opened.push(() => demoPhones?.stop());
    }
    omadmUrl = `${scheme}://${uriHost}:${port}/dm${issued ? '' : ' (INSECURE: plain HTTP, lab mode)'}`;
  }
  const demoKeyFile = join(dataDir, 'demo-signing', `${DEMO_KEY_ID}.key.pem`);
  return {
    omadm,
    scomo,
    demoPhones,
    simulator,
    bootstrap,
    coap,
    coaps,
    lwm2m,
    store,
    catalog,
    installs,
    chain,
    learning,
    inventory,
    campaigns,
    api,
    sms,
    logger,
    metrics,
    firstAdmin,
    listening: {
      coap: `coap://${host}:${a.port}`,
      ...(secure ? { coaps: `coaps://${secure.family === 'IPv6' ? `[${secure.address}]` : secure.address}:${secure.port}` } : {}),
      http: `http://${httpHost.includes(':') ? `[${httpHost}]` : httpHost}:${httpPort}/api/v1 (OpenAPI at /api/openapi.json)`,
      console: `http://${httpHost === '0.0.0.0' || httpHost === '::' ? uriHost : httpHost.includes(':') ? `[${httpHost}]` : httpHost}:${httpPort}/`,
      metrics: `http://${httpHost.includes(':') ? `[${httpHost}]` : httpHost}:${httpPort}/metrics (any API token or session; role viewer)`,
      'dm server (written at bootstrap)': dmUri,
      ...(omadmUrl ? { 'oma dm': omadmUrl } : {}),
      bootstrap: bootstrap.insecureBootstrap ? 'INSECURE lab mode: plain CoAP served, DM keys sent in clear' : 'over DTLS with bootstrap credentials only',
      'api token': source,
      'secret key (seals PSKs at rest)': store.secretKeySource,
      'data dir': dataDir,
      ...(demoCa ? { 'demo CA (made for --sim with the DM endpoint)': caDir } : {}),
      'coap udp receive buffer': `${Math.round(transport.bufferSizes().receive / 1024)} KiB (asked ${UDP_RECEIVE_BUFFER / 1024} KiB; Linux caps it at net.core.rmem_max); overload answers 5.03 with Max-Age past ${lwm2m.admissionStats().maxPendingContacts} devices waiting`,
      ...(simulator && existsSync(demoKeyFile) ? { 'demo fleet trusts packages signed with': demoKeyFile } : {}),
    },
    close: async () => {
      await simulator?.stop();
      await api.close();
      lwm2m.off('registered', onContact);
      lwm2m.off('updated', onContact);
      lwm2m.off('registered', onInventoryContact);
      lwm2m.off('updated', onInventoryContact);
      lwm2m.off('factsLearned', onInventoryFacts);
      bootstrap.off('bootstrapped', onInventoryBootstrap);
      stopCampaignHistory();
      await inventoryFeed.flush();
      await campaigns.close();
      for (const [event, listener] of lwm2mListeners) lwm2m.off(event, listener);
      lwm2m.off('error', lwm2mError);
      offSmsInstalled?.();
      await chain.close();
      await sms?.close();
      await demoPhones?.stop();
      await omadm?.close();
      await installs.close();
      await packageEndpoint.close();
      await lwm2m.close();
      await bootstrap.close();
      await coap.close();
      await coaps?.close();
      store.close();
    },
  };
}

/** What a DM session's stored facts tell the inventory (the DevInfo/DevDetail fields it keeps). */
function omadmInventoryFacts(facts: DeviceFactsPatch): { make?: string | null; model?: string | null; osVersion?: string | null; firmware?: string | null } {
  return {
    ...(facts.manufacturer !== undefined ? { make: facts.manufacturer } : {}),
    ...(facts.modelNumber !== undefined ? { model: facts.modelNumber } : {}),
    ...(facts.osVersion !== undefined ? { osVersion: facts.osVersion } : facts.softwareVersion !== undefined ? { osVersion: facts.softwareVersion } : {}),
    ...(facts.firmwareVersion !== undefined ? { firmware: facts.firmwareVersion } : {}),
  };
}
