/**
 * Campaign routes of the operator API (issue 16): create, list, get with progress (per wave, per
 * model, per method), members, pause, resume, cancel, approve, retry the failed devices, and live
 * progress as server-sent events. See docs/campaigns.md.
 */
import type { FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { apiErrors } from './inventory.js';
import { PROTOCOLS } from '../fleet/inventory-types.js';
import { MEMBER_STATES } from '../fleet/campaign-types.js';
import type { ProgressSample } from '../store/sqlite/campaign-history.js';
import type { Campaign, CampaignEngine, CampaignMember, CampaignProgress, CampaignSpec, MemberState } from '../fleet/campaigns.js';

export interface CampaignApiOptions {
  readonly engine: CampaignEngine;
  /** Keep-alive comment interval of the event stream, ms (default 15 s). */
  readonly keepAliveMs?: number;
  /** Progress over time (fleet/campaign-history.ts records it): GET /api/v1/campaigns/:id/history. */
  readonly history?: { list(campaignId: string, maxPoints?: number): Promise<ProgressSample[]> };
}

const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f-\\u009f]*$';
const text = (max = 255) => ({ type: 'string', minLength: 1, maxLength: max, pattern: NO_CONTROL });
const windowSchema = {
  type: 'object',
  required: ['start', 'end'],
  additionalProperties: false,
  properties: { start: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' }, end: { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$' }, deviceTime: { type: 'boolean' } },
};
const wavesSchema = {
  type: 'array',
  minItems: 1,
  maxItems: 100,
  items: { type: 'object', additionalProperties: false, properties: { percent: { type: 'number', exclusiveMinimum: 0, maximum: 100 }, size: { type: 'integer', minimum: 1 }, window: windowSchema, smsPerMinute: { type: 'number', exclusiveMinimum: 0, maximum: 60000 } } },
};

const campaignBody = {
  type: 'object',
  required: ['name', 'target', 'package'],
  additionalProperties: false,
  properties: {
    name: text(200),
    target: {
      type: 'object',
      additionalProperties: false,
      required: ['kind'],
      properties: {
        kind: { type: 'string', enum: ['group', 'filter', 'list'] },
        group: text(64),
        filter: {
          type: 'object',
          additionalProperties: false,
          properties: { make: text(), model: text(), os: text(), group: text(64), tag: text(64), protocol: { type: 'string', enum: [...PROTOCOLS] } },
        },
        devices: { type: 'array', maxItems: 1000000, items: text(64) },
      },
    },
    package: {
      type: 'object',
      additionalProperties: false,
      required: ['kind'],
      properties: { kind: { type: 'string', enum: ['fixed', 'select'] }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, name: text() },
    },
    waves: wavesSchema,
    order: { type: 'string', enum: ['random', 'spread'] },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    successThreshold: { type: 'number', minimum: 0, maximum: 1 },
    failureLimit: { type: 'number', minimum: 0, maximum: 1 },
    modelFailureLimit: { type: 'number', minimum: 0, maximum: 1 },
    minSamples: { type: 'integer', minimum: 1 },
    approval: { type: 'boolean' },
    concurrency: { type: 'integer', minimum: 1, maximum: 100000 },
    window: windowSchema,
    activate: { type: 'boolean' },
    methods: { type: 'array', minItems: 1, maxItems: 16, items: text(64) },
    smsPerMinute: { type: 'number', exclusiveMinimum: 0, maximum: 60000 },
  },
};

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export function campaignJson(c: Campaign) {
  return { id: c.id, name: c.name, state: c.state, currentWave: c.currentWave + 1, pauseReason: c.pauseReason, pausedModels: c.pausedModels, retryOf: c.retryOf, spec: c.spec, createdAt: iso(c.createdAt), updatedAt: iso(c.updatedAt), finishedAt: iso(c.finishedAt) };
}

export function progressJson(p: CampaignProgress) {
  return {
    campaign: campaignJson(p.campaign),
    totals: p.totals,
    waves: p.waves.map((w) => ({ wave: w.wave + 1, size: w.size, state: w.state, approvedAt: iso(w.approvedAt), startedAt: iso(w.startedAt), endedAt: iso(w.endedAt), counts: w.counts })),
    models: p.models,
    methods: p.methods,
  };
}

function memberJson(m: CampaignMember) {
  return { device: m.deviceId, wave: m.wave + 1, endpoint: m.endpoint, model: m.modelKey, package: m.packageSha256, state: m.state, job: m.jobId, method: m.method, message: m.message, startedAt: iso(m.startedAt), endedAt: iso(m.endedAt) };
}

/** Checks the shape the schema cannot say (which fields go with which kind). */
function specOf(body: Record<string, unknown>): CampaignSpec {
  const t = body.target as { kind: string; group?: string; filter?: object; devices?: string[] };
  const p = body.package as { kind: string; sha256?: string; name?: string };
  const bad = (m: string): never => {
    throw Object.assign(new Error(m), { name: 'CampaignError', code: 'BAD_REQUEST' });
  };
  if (t.kind === 'group' && !t.group) bad('a group target names the group');
  if (t.kind === 'filter' && !t.filter) bad('a filter target gives the filter');
  if (t.kind === 'list' && !t.devices) bad('a list target gives the devices (Depot device ids)');
  if (p.kind === 'fixed' && !p.sha256) bad('a fixed package gives its sha256');
  const target = t.kind === 'group' ? { kind: 'group' as const, group: t.group! } : t.kind === 'filter' ? { kind: 'filter' as const, filter: t.filter! } : { kind: 'list' as const, devices: t.devices! };
  const pkg = p.kind === 'fixed' ? { kind: 'fixed' as const, sha256: p.sha256! } : { kind: 'select' as const, ...(p.name ? { name: p.name } : {}) };
  return { ...(body as object), target, package: pkg } as CampaignSpec;
}

export function campaignRoutes(options: CampaignApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { engine } = options;
  const id = (request: FastifyRequest): string => (request.params as { id: string }).id;
  const action = (name: string, summary: string, run: (id: string, request: FastifyRequest) => Promise<Campaign>, body?: object): RouteSpec => ({
    method: 'POST',
    url: `/api/v1/campaigns/:id/${name}`,
    summary,
    params: { id: 'Campaign id' },
    ...(body ? { body } : {}),
    handler: apiErrors(async (request) => campaignJson(await run(id(request), request))),
  });
  return [
    {
      method: 'POST',
      url: '/api/v1/campaigns',
      summary: 'Start a campaign: a target (group, filter or list of device ids), one package or selection per device, staged waves, thresholds, approval, concurrency, maintenance window',
      body: campaignBody,
      handler: apiErrors(async (request, reply) => reply.code(201).send(campaignJson(await engine.create(specOf(request.body as Record<string, unknown>))))),
    },
    {
      method: 'GET',
      url: '/api/v1/campaigns',
      summary: 'Campaigns, newest first',
      query: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string', maxLength: 64 } },
      handler: apiErrors(async (request) => {
        const q = request.query as { limit?: number; after?: string };
        const page = await engine.list({ ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) });
        return { campaigns: page.items.map(campaignJson), next: page.next };
      }),
    },
    {
      method: 'GET',
      url: '/api/v1/campaigns/:id',
      summary: 'A campaign with its progress (per wave, per model, per method)',
      params: { id: 'Campaign id' },
      handler: apiErrors(async (request) => progressJson(await engine.progress(id(request)))),
    },
    {
      method: 'GET',
      url: '/api/v1/campaigns/:id/progress',
      summary: 'Progress of a campaign: counts per wave, per model (paused models with why), per method',
      params: { id: 'Campaign id' },
      handler: apiErrors(async (request) => progressJson(await engine.progress(id(request)))),
    },
    {
      method: 'GET',
      url: '/api/v1/campaigns/:id/members',
      summary: "A campaign's devices in campaign order with their state, job, method and message (filter by state); page with `after` = the previous page's `next`",
      params: { id: 'Campaign id' },
      query: { state: { type: 'string', enum: [...MEMBER_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 100000 }, after: { type: 'string', pattern: '^\\d{1,15}$' } },
      handler: apiErrors(async (request) => {
        await engine.get(id(request));
        const q = request.query as { state?: MemberState; limit?: number; after?: string };
        const limit = q.limit ?? 1000;
        // One more than asked tells whether there is a next page.
        const found = await engine.members(id(request), { ...(q.state ? { states: [q.state] } : {}), limit: limit + 1, ...(q.after !== undefined ? { afterPosition: Number(q.after) } : {}) });
        const page = found.slice(0, limit);
        return { members: page.map(memberJson), next: found.length > limit ? String(page.at(-1)!.position) : null };
      }),
    },
    {
      method: 'GET',
      url: '/api/v1/campaigns/:id/events',
      summary: 'Live progress as server-sent events (text/event-stream): an event "progress" at once and at each change, until the campaign ends',
      params: { id: 'Campaign id' },
      handler: apiErrors(async (request, reply) => {
        const campaignId = id(request);
        const first = await engine.progress(campaignId);
        reply.hijack();
        const raw = reply.raw;
        raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
        const send = (p: CampaignProgress): void => {
          raw.write(`event: progress\ndata: ${JSON.stringify(progressJson(p))}\n\n`);
          if (p.campaign.state === 'completed' || p.campaign.state === 'cancelled') close();
        };
        const listener = (p: CampaignProgress): void => {
          if (p.campaign.id === campaignId) send(p);
        };
        const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
        keepAlive.unref();
        let closed = false;
        const close = (): void => {
          if (closed) return;
          closed = true;
          clearInterval(keepAlive);
          engine.off('progress', listener);
          raw.end();
        };
        engine.on('progress', listener);
        request.raw.on('close', close);
        send(first);
      }),
    },
    ...(options.history
      ? [
          {
            method: 'GET' as const,
            url: '/api/v1/campaigns/:id/history',
            summary: "A campaign's totals over time (succeeded, failed, running, pending, ended of total), oldest first, one sample per second of change at most, thinned to `points` (default 1000): the rollout chart",
            params: { id: 'Campaign id' },
            query: { points: { type: 'integer', minimum: 2, maximum: 10000 } },
            handler: apiErrors(async (request) => {
              const c = await engine.get(id(request));
              const samples = await options.history!.list(c.id, (request.query as { points?: number }).points ?? 1000);
              return { campaign: c.id, createdAt: iso(c.createdAt), finishedAt: iso(c.finishedAt), samples: samples.map((x) => ({ ...x, at: iso(x.at) })) };
            }),
          },
        ]
      : []),
    action('pause', 'Pause a campaign: nothing more starts; running installs go on', (c) => engine.pause(c)),
    action('resume', 'Resume a paused campaign (models: also the models paused for their failure rate, or "all"); failures so far are accepted', (c, request) => {
      const b = (request.body ?? {}) as { models?: string[] | 'all' };
      return engine.resume(c, b.models ? { models: b.models } : {});
    }, { type: 'object', additionalProperties: false, properties: { models: { anyOf: [{ type: 'string', enum: ['all'] }, { type: 'array', maxItems: 1000, items: text() }] } } }),
    action('cancel', 'Cancel a campaign: pending devices are not started, running installs are cancelled', (c) => engine.cancel(c)),
    action('approve', 'Approve the wave awaiting approval', (c) => engine.approve(c)),
    action('retry-failed', 'A new campaign of the failed devices, the same package choice (one wave)', (c, request) => {
      const b = (request.body ?? {}) as { name?: string; concurrency?: number };
      return engine.retryFailed(c, { ...(b.name ? { name: b.name } : {}), ...(b.concurrency ? { concurrency: b.concurrency } : {}) });
    }, { type: 'object', additionalProperties: false, properties: { name: text(200), concurrency: { type: 'integer', minimum: 1, maximum: 100000 } } }),
  ];
}
