/**
 * Install-chain routes of the operator API (issue 16): a chain job installs one package on one
 * device through the install methods in order (docs/install.md, "The method chain"); every
 * attempt is in the job's history (method, start, end, protocol result, bytes delivered, the
 * reason for falling back). The learned table says what worked per model; the operator pins or
 * forbids a method per model.
 *
 * Method protocol state is not shown (a method may keep capabilities in it, e.g. a download token).
 */
import type { FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { FleetError, type ChainAttempt, type MethodRule, type MethodRuleKind, type MethodStats, type MethodStatsRepository } from '../fleet/domain.js';
import type { ChainDriver, ChainJobView } from '../fleet/chain-driver.js';

export interface InstallsApiOptions {
  readonly chain: Pick<ChainDriver, 'install' | 'view' | 'history' | 'cancel' | 'methodNames'>;
  readonly learning: { table(filter?: { make?: string; model?: string }): Promise<{ stats: MethodStats[]; rules: MethodRule[] }> };
  readonly rules: Pick<MethodStatsRepository, 'setRule' | 'removeRule'>;
  /** Refuses (rejects) a package not in the catalog. */
  readonly requirePackage: (sha256: string) => Promise<unknown>;
  /** Whether Depot knows the device (registered, or with facts from any protocol or an import). */
  readonly knownDevice: (endpoint: string) => Promise<boolean>;
  readonly now: () => number;
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

function attemptJson(a: ChainAttempt) {
  return { seq: a.seq, method: a.method, position: a.position, outcome: a.outcome, startedAt: iso(a.startedAt), endedAt: iso(a.endedAt), result: a.result, bytes: a.bytes, message: a.message };
}

export function chainJobJson(v: ChainJobView) {
  const j = v.job;
  return {
    id: j.id,
    endpoint: j.endpoint,
    package: j.packageSha256,
    activate: j.activate,
    methods: j.methods,
    chosenBy: j.plan.chosenBy,
    plan: { skip: j.plan.skip, note: j.plan.note },
    state: j.state,
    message: j.message,
    retryAt: iso(j.retryAt),
    createdAt: iso(j.createdAt),
    updatedAt: iso(j.updatedAt),
    finishedAt: iso(j.finishedAt),
    attempts: v.attempts.map(attemptJson),
  };
}

function statsJson(s: MethodStats) {
  return {
    make: s.make,
    model: s.model,
    osVersion: s.osVersion,
    method: s.method,
    successes: s.successes,
    failures: s.failures,
    lastSuccessAt: iso(s.lastSuccessAt),
    lastFailureAt: iso(s.lastFailureAt),
    lastReason: s.lastReason,
    lastResult: s.lastResult,
  };
}

function ruleJson(r: MethodRule) {
  return { make: r.make, model: r.model, method: r.method, rule: r.rule, updatedAt: iso(r.updatedAt) };
}

const sha256Schema = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const methodNameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9-]*$' };
const page = { limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string', maxLength: 300 } };
const modelQuery = { make: { type: 'string', maxLength: 255 }, model: { type: 'string', maxLength: 255 } };

export function installRoutes(options: InstallsApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { chain, learning, rules, now } = options;
  const params = (request: FastifyRequest) => request.params as Record<string, string>;
  const pageOf = (request: FastifyRequest) => {
    const q = request.query as { limit?: number; after?: string };
    return { ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) };
  };
  const knownMethod = (name: string): string => {
    const known = chain.methodNames();
    if (!known.includes(name)) throw new FleetError('BAD_REQUEST', `unknown install method "${name}" (known: ${known.join(', ')})`);
    return name;
  };
  const table = async (filter: { make?: string; model?: string }) => {
    const t = await learning.table(filter);
    return { methods: chain.methodNames(), stats: t.stats.map(statsJson), rules: t.rules.map(ruleJson) };
  };
  return [
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/install-chains',
      summary:
        'Install a catalogued package on the device through the install method chain (Object 9, then the next method, … until one succeeds). Without methods, the order learned for the device\'s model (or the default); with methods, exactly that chain. Answers the job; follow it at /api/v1/install-chains/{id}',
      params: { endpoint: 'Endpoint client name' },
      body: {
        type: 'object',
        required: ['package'],
        additionalProperties: false,
        properties: { package: sha256Schema, activate: { type: 'boolean' }, methods: { type: 'array', minItems: 1, maxItems: 16, uniqueItems: true, items: methodNameSchema } },
      },
      handler: async (request, reply) => {
        const endpoint = params(request).endpoint!;
        const b = request.body as { package: string; activate?: boolean; methods?: string[] };
        await options.requirePackage(b.package);
        if (!(await options.knownDevice(endpoint))) throw new FleetError('NOT_FOUND', `device "${endpoint}" is unknown: it never contacted Depot and was not imported`);
        const job = await chain.install(endpoint, b.package, { ...(b.activate !== undefined ? { activate: b.activate } : {}), ...(b.methods ? { methods: b.methods } : {}) });
        return reply.code(201).send(chainJobJson((await chain.view(job.id))!));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint/install-chains',
      summary: "The device's install chain jobs, newest first, each with every attempt (method, start, end, protocol result, bytes delivered, reason for falling back)",
      params: { endpoint: 'Endpoint client name' },
      query: page,
      handler: async (request) => {
        const result = await chain.history(params(request).endpoint!, pageOf(request));
        return { jobs: result.items.map(chainJobJson), next: result.next };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/install-chains/:id',
      summary: 'An install chain job with its plan (how the order was chosen, what it skips and why) and every attempt',
      params: { id: 'Chain job id' },
      handler: async (request) => {
        const v = await chain.view(params(request).id!);
        if (!v) throw new FleetError('NOT_FOUND', `install chain job ${params(request).id!} does not exist`);
        return chainJobJson(v);
      },
    },
    {
      method: 'POST',
      url: '/api/v1/install-chains/:id/cancel',
      summary: 'Cancel an open install chain job at any point: the running method is told to stop what it started; a waiting retry is dropped',
      params: { id: 'Chain job id' },
      handler: async (request) => chainJobJson(await chain.cancel(params(request).id!)),
    },
    {
      method: 'GET',
      url: '/api/v1/install-methods',
      summary: 'The learned table: success and failure counts per (make, model, OS version, method) with the last failure reason, and the operator\'s pins and forbids (filter by make and model)',
      query: modelQuery,
      handler: async (request) => {
        const q = request.query as { make?: string; model?: string };
        return table({ ...(q.make !== undefined ? { make: q.make } : {}), ...(q.model !== undefined ? { model: q.model } : {}) });
      },
    },
    {
      method: 'GET',
      url: '/api/v1/install-methods/:make/:model',
      summary: 'The learned table of one model (every OS version) with its pins and forbids',
      params: { make: 'Manufacturer as the device reports it', model: 'Model as the device reports it' },
      handler: async (request) => table({ make: params(request).make!, model: params(request).model! }),
    },
    {
      method: 'PUT',
      url: '/api/v1/install-methods/:make/:model/:method',
      summary: 'Pin (always first) or forbid (never tried) an install method for a model; applies to jobs created without an explicit chain',
      params: { make: 'Manufacturer', model: 'Model', method: 'Install method name' },
      body: { type: 'object', required: ['rule'], additionalProperties: false, properties: { rule: { type: 'string', enum: ['pin', 'forbid'] } } },
      handler: async (request) => {
        const p = params(request);
        return ruleJson(await rules.setRule(p.make!, p.model!, knownMethod(p.method!), (request.body as { rule: MethodRuleKind }).rule, now()));
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/install-methods/:make/:model/:method',
      summary: "Remove the operator's pin or forbid of a method for a model (learning decides again)",
      params: { make: 'Manufacturer', model: 'Model', method: 'Install method name' },
      handler: async (request) => {
        const p = params(request);
        if (!(await rules.removeRule(p.make!, p.model!, p.method!))) throw new FleetError('NOT_FOUND', `no pin or forbid of "${p.method!}" for ${p.make!} ${p.model!}`);
        return { removed: true };
      },
    },
  ];
}
