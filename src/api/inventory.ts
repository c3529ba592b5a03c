/**
 * Inventory and catalog-selection routes of the operator API (issue 16): devices across
 * protocols with filters and cursor paging, one device with its history, tags and groups, the
 * CSV import of device lists (streamed), selection explained for a device, package targets, and
 * package deletion (refused while a job or campaign uses the package). See docs/inventory.md.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { StoreError } from '../store/errors.js';
import { ImportError, importDeviceCsv } from '../fleet/inventory-import.js';
import { InventoryError, PROTOCOLS, TRUST_STATES, type Inventory, type InventoryDevice } from '../fleet/inventory.js';
import type { PackageCatalog } from '../fleet/packages.js';
import { explainSelection, selectionFactsOf, type PackageTargets } from '../fleet/selection.js';

export interface InventoryApiOptions {
  readonly inventory: Inventory;
  readonly catalog: PackageCatalog;
  /** Largest CSV upload, bytes (default 64 MiB). */
  readonly maxImportBytes?: number;
}

const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f-\\u009f]*$';
const text = (max = 255) => ({ type: 'string', minLength: 1, maxLength: max, pattern: NO_CONTROL });
const labelList = { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f,]+$' } };

/** The fleet's own errors as the API's (404, 400, 409). */
export function apiErrors<T>(handler: (request: FastifyRequest, reply: FastifyReply) => Promise<T>): (request: FastifyRequest, reply: FastifyReply) => Promise<T> {
  return async (request, reply) => {
    try {
      return await handler(request, reply);
    } catch (error) {
      const e = error as { name?: string; code?: string; message?: string };
      if (error instanceof ImportError) throw new StoreError('INVALID_ARGUMENT', e.message!);
      if (e.name === 'InventoryError' || e.name === 'CampaignError' || e.name === 'SelectionError') {
        throw new StoreError(e.code === 'NOT_FOUND' ? 'NOT_FOUND' : e.code === 'CONFLICT' ? 'CONFLICT' : 'INVALID_ARGUMENT', e.message!);
      }
      throw error;
    }
  };
}

const iso = (t: number | undefined | null): string | null => (t === undefined || t === null ? null : new Date(t).toISOString());

export function deviceJson(d: InventoryDevice) {
  return {
    id: d.id,
    identities: { lwm2mEndpoint: d.lwm2mEndpoint, omadmDevId: d.omadmDevId, imei: d.imei, msisdn: d.msisdn },
    make: d.make,
    model: d.model,
    os: d.os,
    osVersion: d.osVersion,
    firmware: d.firmware,
    expected: { make: d.expectedMake, model: d.expectedModel },
    timeZone: d.timeZone,
    protocols: Object.keys(d.lastContact),
    lastContact: Object.fromEntries(Object.entries(d.lastContact).map(([p, t]) => [p, iso(t)])),
    bootstrapState: d.bootstrapState,
    trustState: d.trustState,
    software: d.software,
    tags: d.tags,
    groups: d.groups,
    source: d.source,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}

const targetsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    platform: text(),
    osVersion: text(),
    make: { type: 'array', minItems: 1, maxItems: 100, items: text() },
    model: { type: 'array', minItems: 1, maxItems: 100, items: text() },
    packageType: text(),
    priority: { type: 'integer', minimum: -1000000, maximum: 1000000 },
  },
};

export function inventoryRoutes(options: InventoryApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { inventory, catalog } = options;
  const id = (request: FastifyRequest): string => (request.params as { id: string }).id;
  const labelRoute = (kind: 'tag' | 'group'): RouteSpec => ({
    method: 'POST',
    url: `/api/v1/inventory/devices/:id/${kind}s`,
    summary: `Add and remove ${kind}s of a device (kept in its history)`,
    params: { id: 'Depot device id' },
    body: { type: 'object', additionalProperties: false, properties: { add: labelList, remove: labelList } },
    handler: apiErrors(async (request) => {
      const b = request.body as { add?: string[]; remove?: string[] };
      await inventory.get(id(request));
      return deviceJson(await inventory.label(id(request), kind, b.add ?? [], b.remove ?? []));
    }),
  });
  return [
    {
      method: 'GET',
      url: '/api/v1/inventory/devices',
      summary: 'Devices of the inventory (every protocol), filtered by make, model, OS, group, tag or protocol seen; paged by the `next` cursor',
      query: {
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
        after: { type: 'string', maxLength: 64 },
        make: text(),
        model: text(),
        os: text(),
        group: text(64),
        tag: text(64),
        protocol: { type: 'string', enum: [...PROTOCOLS] },
      },
      handler: apiErrors(async (request) => {
        const q = request.query as Record<string, string | number | undefined>;
        const filter: Record<string, unknown> = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined && v !== ''));
        const page = await inventory.list(filter);
        return { devices: page.items.map(deviceJson), next: page.next };
      }),
    },
    {
      method: 'GET',
      url: '/api/v1/inventory/devices/:id',
      summary: 'One device: identities, make, model, OS, protocols and last contact, bootstrap and trust state, software, tags, groups',
      params: { id: 'Depot device id' },
      handler: apiErrors(async (request) => deviceJson(await inventory.get(id(request)))),
    },
    {
      method: 'GET',
      url: '/api/v1/inventory/devices/:id/history',
      summary: "Every change of a device's record, newest first (field: [before, after]), with what changed it",
      params: { id: 'Depot device id' },
      query: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string', pattern: '^\\d{1,15}$' } },
      handler: apiErrors(async (request) => {
        await inventory.get(id(request));
        const q = request.query as { limit?: number; after?: string };
        const page = await inventory.history(id(request), { ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) });
        return { history: page.items.map((h) => ({ ...h, at: iso(h.at) })), next: page.next };
      }),
    },
    {
      method: 'POST',
      url: '/api/v1/inventory/devices/:id/settings',
      summary: "The operator's word on a device: its time zone (maintenance windows in device time), trust state (holds Depot's root?)",
      params: { id: 'Depot device id' },
      body: { type: 'object', additionalProperties: false, properties: { timeZone: { type: ['string', 'null'], maxLength: 64 }, trustState: { type: 'string', enum: [...TRUST_STATES] } } },
      handler: apiErrors(async (request) => deviceJson(await inventory.set(id(request), request.body as { timeZone?: string | null; trustState?: 'unknown' | 'yes' | 'no' }))),
    },
    labelRoute('tag'),
    labelRoute('group'),
    {
      method: 'POST',
      url: '/api/v1/inventory/import',
      summary:
        'Import a CSV device list (header: phone,imei,make,model,group; body text/csv or application/octet-stream, streamed) for devices Depot has not seen; each bad row is reported with its line and why, the others are kept; importing again changes nothing',
      rawBodyLimit: options.maxImportBytes ?? 64 * 1024 * 1024,
      rawBodyTypes: ['text/csv', 'application/octet-stream'],
      handler: apiErrors(async (request) => {
        const upload = request.body;
        if (!(upload instanceof Readable)) throw new StoreError('INVALID_ARGUMENT', 'send the CSV file as the body, Content-Type: text/csv (or application/octet-stream)');
        const max = options.maxImportBytes ?? 64 * 1024 * 1024;
        let seen = 0;
        const limited = (async function* () {
          for await (const chunk of upload as AsyncIterable<Buffer>) {
            seen += chunk.length;
            if (seen > max) throw new ImportError(`the device list is larger than the limit of ${max} bytes`);
            yield chunk;
          }
        })();
        return importDeviceCsv(inventory.repository, limited);
      }),
    },
    {
      method: 'GET',
      url: '/api/v1/inventory/devices/:id/selection',
      summary: 'Explain selection for a device: which package it would get and why, or why none fits (each package, each rule)',
      params: { id: 'Depot device id' },
      query: { name: text() },
      handler: apiErrors(async (request) => {
        const device = await inventory.get(id(request));
        const name = (request.query as { name?: string }).name;
        const facts = selectionFactsOf(device);
        return { device: device.id, facts, ...explainSelection(await catalog.candidates(name), facts) };
      }),
    },
    {
      method: 'GET',
      url: '/api/v1/packages/:sha256/targets',
      summary: 'What a package targets (platform, OS version range, make and model patterns, package type, priority)',
      params: { sha256: 'SHA-256 of the package file' },
      handler: apiErrors(async (request) => catalog.targets(await catalog.require((request.params as { sha256: string }).sha256))),
    },
    {
      method: 'POST',
      url: '/api/v1/packages/:sha256/targets',
      summary: "State a package's targets (once: they are part of the immutable package; 409 when already set)",
      params: { sha256: 'SHA-256 of the package file' },
      body: targetsSchema,
      handler: apiErrors(async (request, reply) => reply.code(201).send(await catalog.setTargets((request.params as { sha256: string }).sha256, request.body as PackageTargets))),
    },
    {
      method: 'GET',
      url: '/api/v1/packages/:sha256/devices',
      summary:
        'Which devices would get this package: the inventory is judged `scan` devices at a time (default 1000) from the `after` cursor; each device the package fits, and whether it wins among the packages of its name (what a campaign selecting by that name would install). Continue with `next` until it is null',
      params: { sha256: 'SHA-256 of the package file' },
      query: { after: { type: 'string', maxLength: 64 }, scan: { type: 'integer', minimum: 1, maximum: 5000 }, make: text(), model: text(), group: text(64) },
      handler: apiErrors(async (request) => {
        const record = await catalog.require((request.params as { sha256: string }).sha256);
        const q = request.query as { after?: string; scan?: number; make?: string; model?: string; group?: string };
        const candidates = await catalog.candidates(record.name);
        const page = await inventory.list({ limit: q.scan ?? 1000, ...(q.after ? { after: q.after } : {}), ...(q.make ? { make: q.make } : {}), ...(q.model ? { model: q.model } : {}), ...(q.group ? { group: q.group } : {}) });
        const devices = [];
        for (const device of page.items) {
          const explained = explainSelection(candidates, selectionFactsOf(device));
          const mine = explained.packages.find((p) => p.sha256 === record.sha256);
          if (!mine?.fits) continue;
          const chosen = explained.chosen?.sha256 === record.sha256;
          devices.push({ ...deviceJson(device), chosen, ...(chosen ? {} : { instead: explained.chosen && { sha256: explained.chosen.sha256, name: explained.chosen.name, version: explained.chosen.version } }) });
        }
        return { package: { sha256: record.sha256, name: record.name, version: record.version }, scanned: page.items.length, devices, next: page.next };
      }),
    },
    {
      method: 'POST',
      url: '/api/v1/packages/:sha256/remove',
      summary: 'Delete a package from the catalog; 409 while an install job or a campaign still uses it',
      params: { sha256: 'SHA-256 of the package file' },
      handler: apiErrors(async (request) => {
        const sha256 = (request.params as { sha256: string }).sha256;
        await catalog.require(sha256);
        return { removed: await catalog.remove(sha256) };
      }),
    },
  ];
}

export { InventoryError };
