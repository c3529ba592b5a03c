/**
 * Depot's operator HTTP API (v1). Routes are declared once in a table that both
 * registers them with Fastify and produces the OpenAPI 3 document at /api/openapi.json.
 * Every route needs `Authorization: Bearer <token>` unless it is marked public (health,
 * the OpenAPI document, the package download whose token is the capability): see auth.ts
 * and docs/api.md.
 */
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { limitConnections } from './connection-limits.js';
import { AuthFailureThrottle, defaultAccess, installAuthorization, registeredRoutes, SESSION_COOKIE, type AccountsPort, type AuthThrottleOptions, type Role } from './auth.js';
import { Lwm2mCodecError } from '../lwm2m/errors.js';
import type { Lwm2mNode } from '../lwm2m/node.js';
import { Node } from '../lwm2m/node.js';
import { parsePath } from '../lwm2m/path.js';
import type { BootstrapServer } from '../lwm2m/server/bootstrap.js';
import type { DeviceResponse, Lwm2mServer, OperationOutcome } from '../lwm2m/server/server.js';
import { Lwm2mServerError } from '../lwm2m/server/server.js';
import { StoreError } from '../store/errors.js';
import type { BootstrapCredential, DeviceFacts, QueuedOperation, Registration, Store } from '../store/types.js';
import { JsonValueError, nodeToJson, valueFromJson } from './json.js';
import { InstallDriverError, type InstallDriver, type JobView } from '../fleet/install-driver.js';
import { PackageError, type OpaqueMetadata, type PackageCatalog } from '../fleet/packages.js';
import type { PackageEndpoint } from '../fleet/package-endpoint.js';
import { sendFileRange } from './file-range.js';
import type { PackageRecord } from '../store/types.js';
import { omadmRoutes, type OmaDmApiOptions } from './omadm.js';
import { omadmBootstrapRoutes, sharedBootstrapJson, type OmaDmBootstrapApiOptions } from './omadm-bootstrap.js';
import { installRoutes, type InstallsApiOptions } from './installs.js';
import { smsRoutes, type SmsApiOptions } from './sms.js';
import { inventoryRoutes, type InventoryApiOptions } from './inventory.js';
import { campaignRoutes, type CampaignApiOptions } from './campaigns.js';
import { resultCodeRoutes } from './result-codes.js';
import { frameworkErrorProblem, installProblemReplies, PROBLEM_SCHEMA, PROBLEM_TYPE, problemBody } from './problem.js';

export interface ApiOptions {
  lwm2m: Lwm2mServer;
  /** Needed for server-initiated bootstrap. */
  bootstrap?: BootstrapServer;
  store: Pick<Store, 'registrations' | 'deviceFacts' | 'operations' | 'bootstrap' | 'bootstrapCredentials'>;
  /** The bearer token operators present. */
  token: string;
  /**
   * Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For names the client: the auth
   * throttle, audit log and request log then see the client's address. Never a blanket trust.
   */
  trustedProxies?: readonly string[];
  version: string;
  now?: () => number;
  /** The package catalog and the Object 9 install driver (package and install routes). */
  catalog?: PackageCatalog;
  installs?: InstallDriver;
  /** Serves GET /pkg/<token> over HTTP (no bearer token: the download token is the capability). */
  packageEndpoint?: PackageEndpoint;
  /** Largest package upload, bytes (default 256 MiB). */
  maxPackageBytes?: number;
  /** Throttling of failed authentications per source address (the clock is `now`). */
  authThrottle?: Partial<AuthThrottleOptions>;
  /** Body sizes and HTTP server timeouts. */
  limits?: Partial<HttpLimits>;
  /** OMA DM accounts and device facts (src/api/omadm.ts); without it those routes are absent. */
  omadm?: Omit<OmaDmApiOptions, 'now'>;
  /** OMA DM bootstrap by SMS and DM start (src/api/omadm-bootstrap.ts); also lists its bootstraps in GET /api/v1/bootstrap. */
  omadmBootstrap?: Omit<OmaDmBootstrapApiOptions, 'now'>;
  /** Install chain jobs and the learned method table (src/api/installs.ts); without it those routes are absent. */
  installChain?: Omit<InstallsApiOptions, 'now'>;
  /** SMS outbox, Kannel callbacks and SMS link downloads (src/api/sms.ts); without it those routes are absent. */
  sms?: Omit<SmsApiOptions, 'now'>;
  /** Inventory, selection and package targets (src/api/inventory.ts); without it those routes are absent. */
  inventory?: InventoryApiOptions;
  /** Campaigns (src/api/campaigns.ts); without it those routes are absent. */
  campaigns?: CampaignApiOptions;
  /** Users, API tokens, sessions and the audit log (auth.ts); without them only `token` is known. */
  accounts?: AccountsPort;
  /** More routes from other areas (admin.ts, …), registered and documented like the table's. */
  extraRoutes?: (now: () => number) => RouteSpec[];
  /** Called with the app before any route is added: hooks (request logging, metrics) and extra plain routes. */
  instrument?: (app: FastifyInstance) => void;
}

export interface HttpLimits {
  /** Largest JSON request body, bytes. */
  jsonBodyBytes: number;
  /** Time a client has to send a request's headers, ms (slowloris-style partial requests are dropped with 408). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included (a package upload too), ms. */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open, ms. */
  keepAliveTimeoutMs: number;
  /** Largest request head (request line and headers), bytes; past it 431. */
  maxHeaderBytes: number;
  /** Open connections at most, all sources together; past it new ones are closed at once (0: no cap). */
  maxConnections: number;
  /** Open connections at most from one source address (0: no cap, e.g. behind a reverse proxy). */
  maxConnectionsPerSource: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  jsonBodyBytes: 64 * 1024,
  headersTimeoutMs: 10_000,
  // A 256 MiB upload needs about 7 Mbit/s to make it.
  requestTimeoutMs: 5 * 60_000,
  keepAliveTimeoutMs: 5_000,
  maxHeaderBytes: 16 * 1024,
  maxConnections: 4096,
  maxConnectionsPerSource: 256,
};

type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  summary: string;
  /** Reachable without the bearer token. */
  public?: boolean;
  /** The least role that may call it, overriding auth.ts's default rule (GET viewer, else operator, admin areas admin). */
  role?: Role;
  /** Path parameters and their descriptions; each is validated with PARAM_SCHEMAS (or the default). */
  params?: Record<string, string>;
  query?: Record<string, object>;
  body?: object;
  /** The body is raw bytes (application/octet-stream), handed to the handler as a stream; up to this many bytes. */
  rawBodyLimit?: number;
  /** The media types a raw body may come as (default application/octet-stream). */
  rawBodyTypes?: readonly string[];
  handler: Handler;
}

const pathProperty = { type: 'string', pattern: '^/\\d{1,5}(/\\d{1,5}){0,3}$', description: 'LwM2M path, e.g. /3/0/1' };
const page = { limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string' } };
/** No control bytes (C0, DEL, C1): path parameters end up in logs, the store and CoAP requests. */
const NO_CONTROL_BYTES = '^[^\\u0000-\\u001f\\u007f-\\u009f]+$';
/** Endpoint client names: as long as registration accepts (255), no control bytes. */
const endpointParam = { type: 'string', minLength: 1, maxLength: 255, pattern: NO_CONTROL_BYTES };
const PARAM_SCHEMAS: Record<string, object> = {
  endpoint: endpointParam,
  instance: { type: 'string', pattern: '^\\d{1,5}$' },
};
const DEFAULT_PARAM_SCHEMA = { type: 'string', minLength: 1, maxLength: 255, pattern: NO_CONTROL_BYTES };

/** Whether a JSON schema for a body names required fields (or is not an object schema at all). */
function hasRequiredFields(schema: object): boolean {
  const s = schema as { type?: unknown; required?: unknown[] };
  return s.type !== 'object' || (Array.isArray(s.required) && s.required.length > 0);
}

export function createApi(options: ApiOptions): FastifyInstance {
  const { lwm2m, store } = options;
  const now = options.now ?? Date.now;
  const limits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  const app = Fastify({
    logger: false,
    // request.ip is the TCP peer unless it is a configured proxy (then X-Forwarded-For's last untrusted hop).
    trustProxy: options.trustedProxies !== undefined && options.trustedProxies.length > 0 ? [...options.trustedProxies] : false,
    // An unknown property is the caller's mistake (a misspelt option): 400, not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
    bodyLimit: limits.jsonBodyBytes,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      // Also here (fastify sets it again) so that node checks it against headersTimeout.
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      // Node checks the two timeouts above only this often (30 s by default).
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    // Longer than any parameter the schemas allow, so a long one is a 400 from validation, not a 404.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: frameworkErrorProblem,
  });
  limitConnections(app.server, limits);
  installAuthorization(app, { token: options.token, now, throttle: new AuthFailureThrottle(options.authThrottle), ...(options.accounts ? { accounts: options.accounts } : {}) });
  installProblemReplies(app);
  // Every route, also those added outside the table (metrics, console, package links), for the OpenAPI document.
  const allRoutes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => void allRoutes.push(route));
  options.instrument?.(app);

  const param = (request: FastifyRequest, name: string): string => (request.params as Record<string, string>)[name]!;
  const body = <T>(request: FastifyRequest): T => request.body as T;

  const routes: RouteSpec[] = [
    {
      method: 'GET',
      url: '/api/health',
      summary: 'Liveness: answers {"status":"ok"} while the API serves requests (no token needed)',
      public: true,
      handler: () => Promise.resolve({ status: 'ok' }),
    },
    {
      method: 'GET',
      url: '/api/v1/roles',
      summary: 'The roles (viewer, operator, admin), what each is for, and every route each may use (from the same rule that authorizes requests)',
      handler: () => Promise.resolve({ roles: rolesJson(registeredRoutes(app)) }),
    },
    {
      method: 'GET',
      url: '/api/v1/devices',
      summary: 'Registered devices with their facts (make, model, versions) and registration state',
      query: { ...page, endpointPrefix: { type: 'string', maxLength: 255, pattern: NO_CONTROL_BYTES.replace('+$', '*$') } },
      handler: async (request) => {
        const q = request.query as { endpointPrefix?: string };
        const result = await store.registrations.list({ ...pageRequest(request), ...(q.endpointPrefix ? { endpointPrefix: q.endpointPrefix } : {}) });
        const devices = await Promise.all(result.items.map(async (r) => deviceJson(r, await store.deviceFacts.get(r.endpoint), now())));
        return { devices, next: result.next };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint',
      summary: 'One device',
      params: { endpoint: 'Endpoint client name' },
      handler: async (request, reply) => {
        const registration = await store.registrations.getByEndpoint(param(request, 'endpoint'));
        if (!registration) return reply.code(404).send({ error: 'NOT_REGISTERED', message: `device "${param(request, 'endpoint')}" is not registered` });
        return deviceJson(registration, await store.deviceFacts.get(registration.endpoint), now());
      },
    },
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/read',
      summary: 'Read a path on the device (queued while a queue-mode device sleeps)',
      params: { endpoint: 'Endpoint client name' },
      body: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: pathProperty, accept: { type: 'integer' } } },
      handler: async (request) => {
        const b = body<{ path: string; accept?: number }>(request);
        return outcomeJson(await lwm2m.read(param(request, 'endpoint'), b.path, b.accept !== undefined ? { accept: b.accept } : {}));
      },
    },
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/write',
      summary: 'Write a resource value (or a whole node) on the device',
      params: { endpoint: 'Endpoint client name' },
      body: {
        type: 'object',
        required: ['path'],
        additionalProperties: false,
        properties: {
          path: pathProperty,
          value: { type: 'object', required: ['type', 'value'], properties: { type: { type: 'string' }, value: {} } },
          mode: { type: 'string', enum: ['replace', 'update'] },
          contentFormat: { type: 'integer' },
        },
      },
      handler: async (request) => {
        const b = body<{ path: string; value?: { type: string; value: unknown }; mode?: 'replace' | 'update'; contentFormat?: number }>(request);
        const target = parsePath(b.path);
        if (!b.value || target.length < 3) throw new JsonValueError('write takes a resource path (/o/i/r) and a value { type, value }');
        const value = valueFromJson(b.value);
        const node: Lwm2mNode = target.length === 4 ? Node.resourceInstance(target[3], value) : Node.resource(target[2]!, value);
        return outcomeJson(await lwm2m.write(param(request, 'endpoint'), b.path, node, { ...(b.mode ? { mode: b.mode } : {}), ...(b.contentFormat !== undefined ? { contentFormat: b.contentFormat } : {}) }));
      },
    },
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/execute',
      summary: 'Execute a resource on the device, with optional arguments',
      params: { endpoint: 'Endpoint client name' },
      body: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: pathProperty, arguments: { type: 'string' } } },
      handler: async (request) => {
        const b = body<{ path: string; arguments?: string }>(request);
        return outcomeJson(await lwm2m.execute(param(request, 'endpoint'), b.path, b.arguments));
      },
    },
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/discover',
      summary: 'Discover the objects, instances and attributes under a path',
      params: { endpoint: 'Endpoint client name' },
      body: { type: 'object', required: ['path'], additionalProperties: false, properties: { path: pathProperty } },
      handler: async (request) => outcomeJson(await lwm2m.discover(param(request, 'endpoint'), body<{ path: string }>(request).path)),
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint/observe',
      summary: 'Observe a path: a text/event-stream of "notification" events (the first is the current value) until the client disconnects',
      params: { endpoint: 'Endpoint client name' },
      query: { path: pathProperty },
      handler: async (request, reply) => {
        const { path } = request.query as { path?: string };
        if (!path) throw new JsonValueError('the path query parameter is required');
        const stream = reply.raw;
        let closed = false;
        const sendEvent = (response: DeviceResponse): void => {
          if (!closed) stream.write(`event: notification\ndata: ${JSON.stringify(responseJson(response))}\n\n`);
        };
        // Registers first, so that errors (unknown device, bad path) still get a JSON answer.
        const observation = await lwm2m.observe(param(request, 'endpoint'), path, sendEvent);
        const cancel = observation.cancel;
        await reply.hijack();
        stream.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        sendEvent(observation.first);
        request.raw.on('close', () => {
          closed = true;
          void cancel().catch(() => undefined);
        });
        return undefined;
      },
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint/operations',
      summary: 'Operations queued for the device and their results',
      params: { endpoint: 'Endpoint client name' },
      query: page,
      handler: async (request) => {
        const result = await store.operations.listByEndpoint(param(request, 'endpoint'), pageRequest(request));
        return { operations: result.items.map(operationJson), next: result.next };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/bootstrap',
      summary: 'Bootstrap endpoints by acceptance state (pending, accepted, rejected)',
      query: { state: { type: 'string', enum: ['pending', 'accepted', 'rejected'] }, protocol: { type: 'string', enum: ['lwm2m', 'omadm'] }, ...page },
      handler: async (request) => {
        const q = request.query as { state?: 'pending' | 'accepted' | 'rejected'; protocol?: 'lwm2m' | 'omadm'; limit?: number; after?: string };
        // One list across both protocols, told apart by `protocol`: LwM2M endpoints first, then
        // OMA DM bootstraps (by SMS); the cursor says which part it continues ("l:" or "o:").
        const limit = q.limit ?? 100;
        const cursor = q.after === undefined ? undefined : /^[lo]:/.test(q.after) ? q.after : `l:${q.after}`;
        const endpoints: object[] = [];
        let next: string | null = null;
        if (q.protocol !== 'omadm' && (cursor === undefined || cursor.startsWith('l:'))) {
          const result = await store.bootstrap.list(q.state, { limit, ...(cursor === undefined ? {} : { after: cursor.slice(2) }) });
          endpoints.push(...result.items.map((e) => ({ protocol: 'lwm2m', ...e })));
          if (result.next !== null) next = `l:${result.next}`;
        }
        const omadm = options.omadmBootstrap?.store;
        if (omadm && q.protocol !== 'lwm2m' && next === null && endpoints.length < limit) {
          const result = await omadm.list({ limit: limit - endpoints.length, ...(cursor?.startsWith('o:') === true ? { after: cursor.slice(2) } : {}) });
          // The shared states group several OMA DM ones ("pending" is everything before the user's answer), so the filter is applied here.
          endpoints.push(...result.items.map(sharedBootstrapJson).filter((e) => q.state === undefined || e.state === q.state));
          if (result.next !== null) next = `o:${result.next}`;
        } else if (omadm && q.protocol !== 'lwm2m' && next === null) next = 'o:';
        // Lab mode writes device secrets over plain CoAP: every listing says so.
        return { insecureBootstrap: options.bootstrap?.insecureBootstrap ?? false, endpoints, next };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/bootstrap/:endpoint/accept',
      summary: 'Accept a pending bootstrap endpoint',
      params: { endpoint: 'Endpoint client name' },
      handler: async (request) => store.bootstrap.accept(param(request, 'endpoint'), 'api', now()),
    },
    {
      method: 'POST',
      url: '/api/v1/bootstrap/:endpoint/bootstrap-now',
      summary: 'Server-initiated bootstrap of an accepted endpoint at the address it last asked from',
      params: { endpoint: 'Endpoint client name' },
      handler: async (request, reply) => {
        if (!options.bootstrap) return reply.code(501).send({ error: 'NOT_AVAILABLE', message: 'no bootstrap server is running' });
        try {
          await options.bootstrap.bootstrapNow(param(request, 'endpoint'));
        } catch (error) {
          return reply.code(409).send({ error: 'BOOTSTRAP_FAILED', message: error instanceof Error ? error.message : String(error) });
        }
        return { status: 'bootstrapped' };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/bootstrap/:endpoint/reject',
      summary: 'Reject a pending bootstrap endpoint',
      params: { endpoint: 'Endpoint client name' },
      handler: async (request) => store.bootstrap.reject(param(request, 'endpoint'), 'api', now()),
    },
    {
      method: 'POST',
      url: '/api/v1/bootstrap/:endpoint/rotate-key',
      summary: "Give a provisioned endpoint a new DM key at its next bootstrap (until then a re-bootstrap writes its working key again)",
      params: { endpoint: 'Endpoint client name' },
      handler: async (request, reply) => {
        if (!options.bootstrap) return reply.code(501).send({ error: 'NOT_AVAILABLE', message: 'no bootstrap server is running' });
        return options.bootstrap.requestKeyRotation(param(request, 'endpoint'));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/bootstrap-credentials',
      summary: 'Bootstrap credentials (factory PSKs and certificate subjects, per device or per batch); keys are never shown',
      query: page,
      handler: async (request) => {
        const result = await store.bootstrapCredentials.list(pageRequest(request));
        return { credentials: result.items.map(bootstrapCredentialJson), next: result.next };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/bootstrap-credentials',
      summary: 'Add a bootstrap credential: a PSK (keyHex) or a certificate subject, bound to one endpoint or (without endpoint) to a batch',
      body: {
        type: 'object',
        required: ['kind', 'identity'],
        additionalProperties: false,
        properties: {
          kind: { type: 'string', enum: ['psk', 'x509-subject'] },
          identity: { type: 'string', minLength: 1, maxLength: 255, pattern: NO_CONTROL_BYTES },
          keyHex: { type: 'string', pattern: '^([0-9a-fA-F]{2}){16,64}$' },
          endpoint: endpointParam,
        },
      },
      handler: async (request, reply) => {
        const b = body<{ kind: 'psk' | 'x509-subject'; identity: string; keyHex?: string; endpoint?: string }>(request);
        const endpoint = b.endpoint ?? null;
        if (b.kind === 'psk' && !b.keyHex) throw new JsonValueError('a PSK bootstrap credential needs keyHex (16 to 64 bytes, hex)');
        if (b.kind !== 'psk' && b.keyHex) throw new JsonValueError('only a PSK bootstrap credential takes keyHex');
        const added = await store.bootstrapCredentials.add(
          b.kind === 'psk' ? { kind: 'psk', identity: b.identity, key: Buffer.from(b.keyHex!, 'hex'), endpoint } : { kind: 'x509-subject', identity: b.identity, endpoint },
          now(),
        );
        return reply.code(201).send(bootstrapCredentialJson(added));
      },
    },
    {
      method: 'POST',
      url: '/api/v1/bootstrap-credentials/:kind/:identity/remove',
      summary: 'Remove a bootstrap credential (devices already provisioned keep their DM credentials)',
      params: { kind: 'psk or x509-subject', identity: 'PSK identity or certificate subject' },
      handler: async (request) => {
        const kind = param(request, 'kind');
        if (kind !== 'psk' && kind !== 'x509-subject') throw new JsonValueError('kind is psk or x509-subject');
        if (!(await store.bootstrapCredentials.remove(kind, param(request, 'identity')))) throw new StoreError('NOT_FOUND', `no ${kind} bootstrap credential "${param(request, 'identity')}"`);
        return { removed: true };
      },
    },
    ...packageRoutes(options, param),
    ...omadmRoutes(options.omadm && { ...options.omadm, now }),
    ...omadmBootstrapRoutes(options.omadmBootstrap && { ...options.omadmBootstrap, now }),
    ...installRoutes(options.installChain && { ...options.installChain, now }),
    ...smsRoutes(options.sms && { ...options.sms, now }),
    ...inventoryRoutes(options.inventory),
    ...campaignRoutes(options.campaigns),
    ...resultCodeRoutes(),
    ...(options.extraRoutes?.(now) ?? []),
  ];


  app.setErrorHandler(async (error: unknown, _request, reply) => {
    const { status, code, message } = describeError(error);
    // The rest of a too-large body is not worth reading: answer, then close the connection.
    if (status === 413) reply.header('connection', 'close');
    await reply.code(status).type(PROBLEM_TYPE).send(problemBody(status, code, message));
  });

  for (const route of routes) {
    const definition: RouteOptions = {
      method: route.method,
      url: route.url,
      ...(route.public ? { config: { public: true } } : route.role ? { config: { role: route.role } } : {}),
      schema: {
        ...(route.params ? { params: { type: 'object', properties: Object.fromEntries(Object.keys(route.params).map((k) => [k, PARAM_SCHEMAS[k] ?? DEFAULT_PARAM_SCHEMA])) } } : {}),
        ...(route.query ? { querystring: { type: 'object', additionalProperties: false, properties: route.query } } : {}),
        ...(route.body ? { body: route.body } : {}),
      },
      handler: route.handler,
      // A body whose every field is optional may be left out (an action such as resume): no body is {}.
      ...(route.body !== undefined && !hasRequiredFields(route.body)
        ? { preValidation: (request: FastifyRequest, _reply: FastifyReply, done: () => void) => { if (request.body === undefined || request.body === null) request.body = {}; done(); } }
        : {}),
    };
    if (route.rawBodyLimit === undefined) {
      app.route(definition);
    } else {
      // Raw bodies reach the handler as the request stream (fastify's body limit does not
      // apply to it: the handler enforces rawBodyLimit while streaming); only this route has the parser.
      app.register((scope, _options, done) => {
        scope.addContentTypeParser([...(route.rawBodyTypes ?? ['application/octet-stream'])], (_request, payload, parsed) => parsed(null, payload));
        scope.route(definition);
        done();
      });
    }
  }

  if (options.packageEndpoint) {
    const endpoint = options.packageEndpoint;
    // Package download for devices that pull over HTTP; Range (RFC 9110 §14) for resuming.
    app.get('/pkg/:token', { config: { public: true, summary: 'Package download for a device pulling over HTTP (the token is the capability; Range: bytes=N- resumes)' } }, async (request, reply) => {
      const found = await endpoint.resolve(param(request, 'token'));
      if (!found) return reply.code(404).send({ error: 'NOT_FOUND', message: 'unknown or expired package token' });
      const { jobId, size } = found;
      return sendFileRange(request, reply, found, { progress: (sent) => endpoint.served(jobId, sent, size) });
    });
  }

  // Built at the first request, when every route (the table's and the rest) is registered.
  let openapi: object | undefined;
  app.get('/api/openapi.json', { config: { public: true, summary: 'This OpenAPI 3 document: every route, generated from the schemas that validate requests' } }, (_request, reply) => reply.send((openapi ??= openApiDocument(routes, allRoutes, options.version))));
  return app;
}

const DEFAULT_MAX_PACKAGE_BYTES = 256 * 1024 * 1024;

function describeError(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof Lwm2mServerError) {
    const status = { NOT_REGISTERED: 404, BAD_PATH: 400, ENCODING: 400, TRANSPORT: 504 }[error.code];
    return { status, code: error.code, message: error.message };
  }
  if (error instanceof PackageError) {
    const status = error.code === 'NOT_FOUND' ? 404 : error.code === 'IO' ? 500 : error.code === 'TOO_LARGE' ? 413 : error.code === 'IN_USE' ? 409 : 400;
    return { status, code: error.code, message: error.message };
  }
  if (error instanceof InstallDriverError) {
    const status = error.code === 'NOT_FOUND' ? 404 : error.code === 'CONFLICT' ? 409 : 400;
    return { status, code: error.code, message: error.message };
  }
  if (error instanceof JsonValueError || error instanceof Lwm2mCodecError) return { status: 400, code: 'BAD_REQUEST', message: error.message };
  if (error instanceof StoreError) {
    const status = error.code === 'NOT_FOUND' ? 404 : error.code === 'INVALID_TRANSITION' || error.code === 'CONFLICT' ? 409 : error.code === 'INVALID_ARGUMENT' ? 400 : 500;
    return { status, code: error.code, message: error.message };
  }
  const e = error as { statusCode?: number; validation?: unknown; message?: string };
  if (e.validation) return { status: 400, code: 'BAD_REQUEST', message: e.message ?? 'invalid request' };
  if (e.statusCode === 413) return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'the request body is larger than this route accepts' };
  if (e.statusCode === 415) return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: `${e.message ?? 'unsupported content type'} (JSON routes take application/json; package uploads application/octet-stream)` };
  if (e.statusCode && e.statusCode < 500) return { status: e.statusCode, code: 'BAD_REQUEST', message: e.message ?? 'bad request' };
  process.emitWarning(`API: unexpected error: ${e.message ?? String(error)}`);
  return { status: 500, code: 'INTERNAL', message: 'internal error' };
}

const ROLE_PURPOSE: Record<Role, string> = {
  viewer: 'reads everything an operator sees: devices, packages, campaigns, statistics, the SMS outbox',
  operator: 'also acts on the fleet: uploads packages, installs, runs campaigns, accepts bootstrap requests',
  admin: 'also manages users, API tokens and reads the audit log',
};

/** Each role with the routes it may use (public routes are open to anyone and not listed). */
function rolesJson(seen: readonly { method: string; url: string; access: string }[]) {
  const order: Role[] = ['viewer', 'operator', 'admin'];
  return order.map((role) => ({
    role,
    purpose: ROLE_PURPOSE[role],
    routes: seen.filter((r) => r.method !== 'HEAD' && r.access !== 'public' && order.indexOf(r.access as Role) <= order.indexOf(role)).map((r) => `${r.method} ${r.url}`),
  }));
}

/** A bootstrap credential without its key (only whether it has one). */
function bootstrapCredentialJson(c: BootstrapCredential) {
  return { kind: c.kind, identity: c.identity, scope: c.scope, endpoint: c.endpoint, hasKey: c.key !== null, createdAt: new Date(c.createdAt).toISOString(), updatedAt: new Date(c.updatedAt).toISOString() };
}

function deviceJson(r: Registration, facts: DeviceFacts | null, now: number) {
  return {
    endpoint: r.endpoint,
    registration: {
      id: r.id,
      state: r.expiresAt > now ? 'registered' : 'expired',
      lwm2mVersion: r.lwm2mVersion,
      binding: r.binding,
      queueMode: r.queueMode,
      lifetimeSec: r.lifetimeSec,
      registeredAt: new Date(r.registeredAt).toISOString(),
      lastUpdateAt: new Date(r.lastUpdateAt).toISOString(),
      expiresAt: new Date(r.expiresAt).toISOString(),
      address: r.address,
      secured: r.identity !== null,
      objectLinks: r.objectLinks,
    },
    facts: facts && {
      manufacturer: facts.manufacturer,
      modelNumber: facts.modelNumber,
      serialNumber: facts.serialNumber,
      firmwareVersion: facts.firmwareVersion,
      softwareVersion: facts.softwareVersion,
      osVersion: facts.osVersion,
      deviceType: facts.deviceType,
      hardwareVersion: facts.hardwareVersion,
      updatedAt: new Date(facts.updatedAt).toISOString(),
    },
  };
}

function responseJson(r: DeviceResponse) {
  return {
    code: r.code,
    contentFormat: r.contentFormat ?? null,
    ...(r.node ? { node: nodeToJson(r.node) } : {}),
    ...(r.contentFormat === 40 ? { links: Buffer.from(r.payload).toString('utf8') } : {}),
    ...(r.diagnostic ? { diagnostic: r.diagnostic } : {}),
  };
}

function outcomeJson(o: OperationOutcome) {
  return o.status === 'done' ? { status: 'done', response: responseJson(o.response) } : { status: 'queued', operation: operationJson(o.operation) };
}

function operationJson(op: QueuedOperation) {
  return {
    id: op.id,
    kind: op.kind,
    path: op.path,
    status: op.status,
    createdAt: new Date(op.createdAt).toISOString(),
    updatedAt: new Date(op.updatedAt).toISOString(),
    resultCode: op.resultCode,
    diagnostic: op.diagnostic,
    attempts: op.attempts,
  };
}

/** An error answer in the OpenAPI document: a problem document (problem.ts). */
const problemResponse = (description: string) => ({ description, content: { [PROBLEM_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } } });

/** One operation of the OpenAPI document, from the schemas the route validates with. */
function openApiOperation(r: { method: string; url: string; summary: string; public: boolean; role?: Role | undefined; params: Record<string, { description?: string; schema: object }>; query?: Record<string, object> | undefined; body?: object | undefined; raw?: boolean; rawTypes?: readonly string[] | undefined; ok: string }): object {
  const parameters = [
    ...Object.entries(r.params).map(([name, p]) => ({ name, in: 'path', required: true, ...(p.description ? { description: p.description } : {}), schema: p.schema })),
    ...Object.entries(r.query ?? {}).map(([name, schema]) => ({ name, in: 'query', required: false, schema })),
  ];
  const takesBody = r.body !== undefined || r.raw === true;
  return {
    summary: r.summary,
    operationId: `${r.method.toLowerCase()}${r.url.replace(/[/:{}.-]+(\w)/g, (_m, c: string) => c.toUpperCase()).replace(/\W/g, '')}`,
    security: r.public ? [] : [{ bearer: [] }, { session: [] }],
    'x-depot-access': r.public ? 'public' : (r.role ?? defaultAccess(r.method, r.url)),
    ...(parameters.length ? { parameters } : {}),
    ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
    ...(r.raw ? { requestBody: { required: true, content: Object.fromEntries((r.rawTypes ?? ['application/octet-stream']).map((type) => [type, { schema: { type: 'string', format: 'binary' } }])) } } : {}),
    responses: {
      '200': { description: r.ok },
      '400': problemResponse('Invalid request: a parameter, the query or the body does not match its schema'),
      ...(r.public ? {} : { '401': problemResponse('Missing, wrong, expired or revoked credentials'), '403': problemResponse('Your role may not do this (or a console request lacks its CSRF token)'), '429': problemResponse('Too many failed authentications from this address (see Retry-After)') }),
      '404': problemResponse('Unknown device, job, package or route'),
      '405': problemResponse('The path exists under other methods (see Allow)'),
      ...(takesBody ? { '413': problemResponse('The request body is too large'), '415': problemResponse('Unsupported Content-Type') } : {}),
      default: problemResponse('Any other error, e.g. 409 conflict, 501 not available on this server, 504 the device did not answer'),
    },
  };
}

function openApiDocument(routes: RouteSpec[], registered: RouteOptions[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  const add = (method: string, url: string, operation: object) => {
    (paths[url.replace(/:(\w+)/g, '{$1}')] ??= {})[method.toLowerCase()] = operation;
  };
  const fromTable = new Set<string>();
  for (const r of routes) {
    fromTable.add(`${r.method} ${r.url}`);
    const params = Object.fromEntries(Object.entries(r.params ?? {}).map(([name, description]) => [name, { description, schema: PARAM_SCHEMAS[name] ?? DEFAULT_PARAM_SCHEMA }]));
    add(r.method, r.url, openApiOperation({ method: r.method, url: r.url, summary: r.summary, public: r.public === true, role: r.role, params, query: r.query, body: r.body, raw: r.rawBodyLimit !== undefined, rawTypes: r.rawBodyTypes, ok: r.method === 'POST' ? 'Done (201 when something was made)' : 'OK' }));
  }
  // Routes registered outside the table (metrics, the console, package links, this document).
  for (const route of registered) {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD' || fromTable.has(`${method} ${route.url}`)) continue;
      const config = (route.config ?? {}) as { public?: boolean; role?: Role; summary?: string };
      const schema = (route.schema ?? {}) as { params?: { properties?: Record<string, object> }; querystring?: { properties?: Record<string, object> }; body?: object };
      const params = Object.fromEntries([...route.url.matchAll(/:(\w+)/g)].map(([, name]) => [name!, { schema: schema.params?.properties?.[name!] ?? { type: 'string' } }]));
      add(method, route.url, openApiOperation({ method, url: route.url, summary: config.summary ?? `${method} ${route.url}`, public: config.public === true, role: config.role, params, query: schema.querystring?.properties, body: schema.body, ok: 'OK' }));
    }
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Depot API', version, description: 'Operator API of Depot, the software depot for device fleets. Every error is an RFC 9457 problem document (application/problem+json). x-depot-access is the least role an operation needs.' },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API token (dpt_…, `depot login` or POST /api/v1/tokens) or the shared token of `depot serve`' },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'A console session from POST /api/v1/login; unsafe methods also need X-CSRF-Token' },
      },
      schemas: { Problem: PROBLEM_SCHEMA },
    },
    paths,
  };
}

/** format=opaque upload metadata from the query (the body stays the streamed file). */
function opaqueMetadataOf(q: Record<string, string | undefined>): OpaqueMetadata | undefined {
  if (q.format !== 'opaque') {
    if (q.name ?? q.version ?? q.type ?? q.sha256 ?? q.signature) throw new JsonValueError('name, version, type, sha256 and signature describe an opaque package: add format=opaque (a Depot package carries its own manifest)');
    return undefined;
  }
  if (!q.name || !q.version || !q.type) throw new JsonValueError('an opaque package needs name, version and type (MIME or package type) query parameters');
  if ((q.signature === undefined) !== (q.keyId === undefined)) throw new JsonValueError('signature and keyId go together');
  const target = { ...(q.manufacturer ? { manufacturer: q.manufacturer } : {}), ...(q.model ? { model: q.model } : {}), ...(q.os ? { os: q.os } : {}) };
  return {
    name: q.name,
    version: q.version,
    packageType: q.type,
    ...(Object.keys(target).length > 0 ? { target } : {}),
    ...(q.sha256 ? { sha256: q.sha256 } : {}),
    ...(q.signature && q.keyId ? { signature: { keyId: q.keyId, value: q.signature } } : {}),
  };
}

function packageJson(p: PackageRecord) {
  return { sha256: p.sha256, name: p.name, version: p.version, size: p.size, keyId: p.keyId, addedAt: new Date(p.addedAt).toISOString(), manifest: p.manifest };
}

/** The `limit` / `after` paging of a list request (the `page` query schema). */
function pageRequest(request: FastifyRequest): { limit?: number; after?: string } {
  const q = request.query as { limit?: number; after?: string };
  return { ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) };
}

function jobJson(v: JobView) {
  const j = v.job;
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: j.id,
    kind: j.kind,
    endpoint: j.endpoint,
    package: j.packageSha256,
    instance: j.instanceId,
    method: j.method,
    /** "depot": chosen from what worked for the model (or the default), with fallback; "operator": as asked. */
    methodChosenBy: j.methodAuto ? 'depot' : 'operator',
    activate: j.activate,
    state: j.state,
    attempts: j.attempts,
    updateState: j.lastUpdateState,
    updateResult: j.lastUpdateResult,
    result: j.resultName,
    retry: j.retry,
    message: j.message,
    percent: v.percent,
    download: v.progress ? { bytes: v.progress.served, size: v.progress.size } : null,
    createdAt: iso(j.createdAt),
    updatedAt: iso(j.updatedAt),
    finishedAt: iso(j.finishedAt),
    transitions: v.transitions.map((t) => ({ at: new Date(t.at).toISOString(), from: t.from, to: t.to, detail: t.detail })),
  };
}

/** Package catalog and Object 9 install routes (present when the catalog and driver are given). */
function packageRoutes(options: ApiOptions, param: (request: FastifyRequest, name: string) => string): RouteSpec[] {
  const { catalog, installs } = options;
  if (!catalog || !installs) return [];
  const view = async (id: string) => {
    const v = await installs.view(id);
    if (!v) throw new InstallDriverError('NOT_FOUND', `install job ${id} does not exist`);
    return jobJson(v);
  };
  const operation = (kind: 'uninstall' | 'activate' | 'deactivate'): RouteSpec => ({
    method: 'POST',
    url: `/api/v1/devices/:endpoint/software/:instance/${kind}`,
    summary: `${kind[0]!.toUpperCase()}${kind.slice(1)} the software in an Object 9 instance (a job, like installs)`,
    params: { endpoint: 'Endpoint client name', instance: 'Object 9 instance id' },
    handler: async (request, reply) => {
      const job = await installs.operate(kind, param(request, 'endpoint'), Number(param(request, 'instance')));
      return reply.code(201).send(await view(job.id));
    },
  });
  return [
    {
      method: 'POST',
      url: '/api/v1/packages',
      summary:
        'Add a Depot package (the raw file as application/octet-stream); corrupt files are refused with 400. With format=opaque, a vendor package kept and relayed byte for byte (name, version, type required; sha256 and signature/keyId checked before it is kept)',
      rawBodyLimit: options.maxPackageBytes ?? DEFAULT_MAX_PACKAGE_BYTES,
      query: {
        format: { type: 'string', enum: ['depot', 'opaque'] },
        name: { type: 'string', maxLength: 255 },
        version: { type: 'string', maxLength: 255 },
        type: { type: 'string', maxLength: 255 },
        manufacturer: { type: 'string', maxLength: 255 },
        model: { type: 'string', maxLength: 255 },
        os: { type: 'string', maxLength: 255 },
        sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        keyId: { type: 'string', maxLength: 255 },
        signature: { type: 'string', maxLength: 200 },
      },
      handler: async (request, reply) => {
        const upload = request.body;
        if (!(upload instanceof Readable)) throw new JsonValueError('send the package file as the body, Content-Type: application/octet-stream');
        const maxBytes = options.maxPackageBytes ?? DEFAULT_MAX_PACKAGE_BYTES;
        // Refused before a byte is read when the declared length is too much already.
        if (Number(request.headers['content-length']) > maxBytes) throw new PackageError('TOO_LARGE', `the package is larger than the upload limit of ${maxBytes} bytes`);
        const opaque = opaqueMetadataOf(request.query as Record<string, string | undefined>);
        return reply.code(201).send(packageJson(await catalog.addStream(upload, { maxBytes, ...(opaque ? { opaque } : {}) })));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/packages',
      summary: 'Packages in the catalog',
      query: page,
      handler: async (request) => {
        const result = await catalog.list(pageRequest(request));
        return { packages: result.items.map(packageJson), next: result.next };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/packages/:sha256',
      summary: 'One package',
      params: { sha256: 'SHA-256 of the package file' },
      handler: async (request) => packageJson(await catalog.require(param(request, 'sha256'))),
    },
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/installs',
      summary: 'Install a catalogued package on the device through Object 9 (method: pull or push; Depot chooses when none is given); answers the job, follow it at /api/v1/installs/{id}',
      params: { endpoint: 'Endpoint client name' },
      body: {
        type: 'object',
        required: ['package'],
        additionalProperties: false,
        properties: { package: { type: 'string', pattern: '^[0-9a-f]{64}$' }, activate: { type: 'boolean' }, method: { type: 'string', enum: ['pull', 'push'] } },
      },
      handler: async (request, reply) => {
        const b = request.body as { package: string; activate?: boolean; method?: 'pull' | 'push' };
        const job = await installs.install(param(request, 'endpoint'), b.package, { ...(b.activate !== undefined ? { activate: b.activate } : {}), ...(b.method ? { method: b.method } : {}) });
        return reply.code(201).send(await view(job.id));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint/installs',
      summary: "The device's install/uninstall/activate/deactivate jobs, newest first",
      params: { endpoint: 'Endpoint client name' },
      query: page,
      handler: async (request) => {
        const result = await installs.listJobs(param(request, 'endpoint'), pageRequest(request));
        return { installs: result.items.map((v) => { const { transitions: _omit, ...rest } = jobJson(v); return rest; }), next: result.next };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/installs/:id',
      summary: 'An install (or uninstall/activate/deactivate) job with its state, operator message, retry advice and every transition',
      params: { id: 'Job id' },
      handler: async (request) => view(param(request, 'id')),
    },
    {
      method: 'POST',
      url: '/api/v1/installs/:id/cancel',
      summary: 'Cancel an open job (the download token is withdrawn; what the device already has stays)',
      params: { id: 'Job id' },
      handler: async (request) => jobJson(await installs.cancel(param(request, 'id'))),
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint/software',
      summary: 'What the device has in Object 9: every instance with package name, version, Update State/Result and activation (read now)',
      params: { endpoint: 'Endpoint client name' },
      handler: async (request) => ({ instances: await installs.listInstalled(param(request, 'endpoint')) }),
    },
    operation('uninstall'),
    operation('activate'),
    operation('deactivate'),
  ];
}
