/**
 * OMA DM bootstrap and DM start routes of the operator API (issue 15, docs/omadm-bootstrap.md):
 *
 *   POST /api/v1/omadm/bootstrap             bootstrap devices (given with their numbers), or resend to a selection
 *   GET  /api/v1/omadm/bootstrap             bootstraps by state/group/model, paged by phone number
 *   GET  /api/v1/omadm/bootstrap/:msisdn     one
 *   POST /api/v1/omadm/bootstrap/:msisdn/reject | /reset
 *   POST /api/v1/omadm/start-dm              DM notification to one device, a list, a group or a filter
 *   POST /api/v1/omadm/bootstrap-settings    PIN and options of the global scope, a group or a model profile
 *   GET  /api/v1/omadm/bootstrap-settings/:scope   the same, the PIN only as "set or not"
 *
 * PINs go in, never out.
 */
import type { FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { JsonValueError } from './json.js';
import { StoreError } from '../store/errors.js';
import { BootstrapState, isPending } from '../omadm/bootstrap/machine.js';
import { BootstrapError, type DeviceSelection, type OmaDmBootstrapService } from '../omadm/bootstrap/service.js';
import { ProfileError, groupOptionsFrom, profileFrom } from '../omadm/bootstrap/profiles.js';
import type { BootstrapDevice, BootstrapDeviceInput, SqliteOmaDmBootstrapRepository } from '../store/sqlite/omadm-bootstrap.js';

export interface OmaDmBootstrapApiOptions {
  readonly store: Pick<SqliteOmaDmBootstrapRepository, 'list' | 'get' | 'getSettings' | 'putSettings'>;
  /** Absent when no push sender (SMS layer) is configured: the sending routes answer 501. */
  readonly service?: OmaDmBootstrapService;
  readonly now: () => number;
}

const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f-\\u009f]+$';
const msisdn = { type: 'string', minLength: 2, maxLength: 32, pattern: NO_CONTROL, description: 'E.164 with "+", e.g. +4790000001' };
const name = { type: 'string', minLength: 1, maxLength: 64, pattern: NO_CONTROL };
const deviceId = { type: 'string', minLength: 1, maxLength: 128, pattern: NO_CONTROL };
const digits = (min: number, max: number) => ({ type: 'string', pattern: `^\\d{${min},${max}}$` });
const filter = {
  type: 'object',
  additionalProperties: false,
  properties: { group: name, model: name, state: { type: 'string', enum: [...BootstrapState] }, msisdnPrefix: { type: 'string', maxLength: 16, pattern: '^\\+?\\d*$' } },
};
const selection = {
  msisdns: { type: 'array', maxItems: 1000, items: msisdn },
  deviceIds: { type: 'array', maxItems: 1000, items: deviceId },
  group: name,
  filter,
};

export function bootstrapJson(d: BootstrapDevice) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    msisdn: d.msisdn, deviceId: d.deviceId, imei: d.imei, imsi: d.imsi, group: d.group, model: d.model, state: d.state,
    security: d.security, sends: d.sends, message: d.message, createdAt: iso(d.createdAt), updatedAt: iso(d.updatedAt),
    sentAt: iso(d.sentAt), deliveredAt: iso(d.deliveredAt), decidedAt: iso(d.decidedAt),
  };
}

/** An OMA DM bootstrap in the shared bootstrap list (GET /api/v1/bootstrap): its state mapped onto LwM2M's pending/accepted/rejected. */
export function sharedBootstrapJson(d: BootstrapDevice) {
  const state = isPending(d.state) ? 'pending' : d.state === 'accepted' ? 'accepted' : 'rejected';
  return { protocol: 'omadm', endpoint: d.deviceId ?? d.msisdn, msisdn: d.msisdn, state, omadmState: d.state, sends: d.sends, message: d.message, updatedAt: new Date(d.updatedAt).toISOString() };
}

function selectionOf(b: { msisdns?: string[]; deviceIds?: string[]; group?: string; filter?: DeviceSelection['filter'] }): DeviceSelection {
  const f = { ...(b.filter ?? {}), ...(b.group === undefined ? {} : { group: b.group }) };
  if (b.msisdns === undefined && b.deviceIds === undefined && Object.keys(f).length === 0 && b.filter === undefined) {
    throw new JsonValueError('name the devices: msisdns, deviceIds, group or filter ({} selects every known number)');
  }
  return { ...(b.msisdns === undefined ? {} : { msisdns: b.msisdns }), ...(b.deviceIds === undefined ? {} : { deviceIds: b.deviceIds }), ...(b.filter !== undefined || b.group !== undefined ? { filter: f } : {}) };
}

/** Service errors as the API's errors (400 with the message). */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof BootstrapError) {
      if (/^no device/.test(error.message)) throw new StoreError('NOT_FOUND', error.message);
      if (/cannot be/.test(error.message)) throw new StoreError('INVALID_TRANSITION', error.message);
      throw new JsonValueError(error.message);
    }
    if (error instanceof ProfileError) throw new JsonValueError(error.message);
    throw error;
  }
}

export function omadmBootstrapRoutes(options: OmaDmBootstrapApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { store, service, now } = options;
  const noSender = { error: 'NOT_AVAILABLE', message: 'no WAP Push sender (SMS layer) is configured on this server' };
  const param = (request: FastifyRequest, key: string): string => (request.params as Record<string, string>)[key]!;
  return [
    {
      method: 'POST',
      url: '/api/v1/omadm/bootstrap',
      summary: 'OMA DM bootstrap by SMS: register devices (phone number, IMEI, optional IMSI, group, model) and push each a PIN-secured provisioning document; or resend to known devices (msisdns, deviceIds, group, filter)',
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          devices: {
            type: 'array', minItems: 1, maxItems: 1000,
            items: { type: 'object', required: ['msisdn'], additionalProperties: false, properties: { msisdn, imei: digits(14, 16), imsi: digits(6, 15), deviceId, group: name, model: name } },
          },
          ...selection,
        },
      },
      handler: async (request, reply) => {
        if (service === undefined) return reply.code(501).send(noSender);
        const b = request.body as { devices?: BootstrapDeviceInput[]; msisdns?: string[]; deviceIds?: string[]; group?: string; filter?: DeviceSelection['filter'] };
        const results = await guarded(() => (b.devices !== undefined ? service.bootstrap(b.devices) : service.resend(selectionOf(b))));
        return { results };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/bootstrap',
      summary: 'OMA DM bootstraps by phone number, with their state (new, sent, delivered, failed, accepted, rejected, expired, stopped)',
      query: { state: { type: 'string', enum: [...BootstrapState] }, group: name, model: name, limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string', maxLength: 32 } },
      handler: async (request) => {
        const q = request.query as { state?: BootstrapState; group?: string; model?: string; limit?: number; after?: string };
        const page = await store.list(q);
        return { bootstraps: page.items.map(bootstrapJson), next: page.next };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/bootstrap/:msisdn',
      summary: 'One phone number\'s OMA DM bootstrap',
      params: { msisdn: 'phone number, E.164' },
      handler: async (request) => {
        const d = await store.get(param(request, 'msisdn'));
        if (d === null) throw new StoreError('NOT_FOUND', `no OMA DM bootstrap for ${param(request, 'msisdn')}`);
        return bootstrapJson(d);
      },
    },
    ...(['reject', 'reset'] as const).map((decision): RouteSpec => ({
      method: 'POST',
      url: `/api/v1/omadm/bootstrap/:msisdn/${decision}`,
      summary: decision === 'reject' ? 'Reject a waiting OMA DM bootstrap (the device is not to be managed)' : 'Reset a stopped OMA DM bootstrap so it can be sent again',
      params: { msisdn: 'phone number, E.164' },
      handler: async (request, reply) => {
        if (service === undefined) return reply.code(501).send(noSender);
        return bootstrapJson(await guarded(() => service.decide(param(request, 'msisdn'), decision)));
      },
    })),
    {
      method: 'POST',
      url: '/api/v1/omadm/start-dm',
      summary: 'Start the DM client of devices by SMS (DM notification, package #0): one device, a list, a group or a filter; those without a phone number or an accepted DM account are reported',
      body: { type: 'object', additionalProperties: false, properties: selection },
      handler: async (request, reply) => {
        if (service === undefined) return reply.code(501).send(noSender);
        const b = request.body as { msisdns?: string[]; deviceIds?: string[]; group?: string; filter?: DeviceSelection['filter'] };
        return { results: await guarded(() => service.startDm(selectionOf(b))) };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/omadm/bootstrap-settings',
      summary: 'Set the bootstrap PIN and options of a scope: "global", "group:<name>" (pin, security, maxSends) or "model:<name>" (the model\'s client profile)',
      body: {
        type: 'object',
        required: ['scope'],
        additionalProperties: false,
        properties: { scope: { type: 'string', minLength: 6, maxLength: 80, pattern: NO_CONTROL }, pin: { type: ['string', 'null'], pattern: '^\\d{4,16}$' }, options: { type: 'object' } },
      },
      handler: async (request) => {
        const b = request.body as { scope: string; pin?: string | null; options?: Record<string, unknown> };
        if (b.options !== undefined) {
          const options = b.options;
          await guarded(() => Promise.resolve(b.scope.startsWith('model:') ? profileFrom(options) : groupOptionsFrom(options)));
        }
        if (b.scope.startsWith('model:') && b.pin !== undefined) throw new JsonValueError('a model profile has no PIN: set it on the global scope or a group');
        await store.putSettings(b.scope, { ...(b.pin === undefined ? {} : { pin: b.pin }), ...(b.options === undefined ? {} : { data: b.options }) }, now());
        const s = await store.getSettings(b.scope);
        return { scope: b.scope, pinSet: s?.pin !== null && s?.pin !== undefined, options: s?.data ?? {} };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/bootstrap-settings/:scope',
      summary: 'A scope\'s bootstrap options, and whether it has its own PIN (the PIN itself is never shown)',
      params: { scope: 'global, group:<name> or model:<name>' },
      handler: async (request) => {
        const s = await store.getSettings(param(request, 'scope'));
        if (s === null) throw new StoreError('NOT_FOUND', `no bootstrap settings for ${param(request, 'scope')}`);
        return { scope: s.scope, pinSet: s.pin !== null, options: s.data, updatedAt: new Date(s.updatedAt).toISOString() };
      },
    },
  ];
}
