/**
 * OMA DM routes of the operator API: DM accounts (the client credentials a device proves,
 * never shown back) and the facts a device's sessions reported (device facts under
 * `omadm:<DevId>`, see docs/omadm.md).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { StoreError } from '../store/errors.js';
import type { DeviceFactsRepository } from '../store/types.js';
import type { OmaDmAccount, OmaDmAccountInput } from '../store/sqlite/omadm-accounts.js';
import type { OmaDmCommand, SqliteOmaDmCommandRepository } from '../store/sqlite/omadm-commands.js';
import { factsEndpointOf } from '../omadm/http.js';

export interface OmaDmApiOptions {
  readonly accounts: {
    list(after?: string, limit?: number): Promise<OmaDmAccount[]>;
    put(input: OmaDmAccountInput, initialNonce: Uint8Array, now: number): Promise<OmaDmAccount>;
  };
  readonly commands: Pick<SqliteOmaDmCommandRepository, 'enqueue' | 'listByDevice'>;
  readonly deviceFacts: Pick<DeviceFactsRepository, 'get'>;
  readonly now: () => number;
}

/** DevIds are IMEI/MEID/serials: printable, bounded. */
const deviceIdSchema = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$' };

function accountJson(a: OmaDmAccount) {
  return { deviceId: a.deviceId, clientUsername: a.clientUsername, createdAt: new Date(a.createdAt).toISOString(), updatedAt: new Date(a.updatedAt).toISOString() };
}

function commandJson(c: OmaDmCommand) {
  return { id: c.id, kind: c.kind, uri: c.uri, data: c.data, status: c.status, resultCode: c.resultCode, resultData: c.resultData, createdAt: new Date(c.createdAt).toISOString(), updatedAt: new Date(c.updatedAt).toISOString() };
}

export function omadmRoutes(options: OmaDmApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { accounts, commands, deviceFacts, now } = options;
  return [
    {
      method: 'GET',
      url: '/api/v1/omadm/accounts',
      summary: 'OMA DM accounts (DevId and client username; passwords are never shown)',
      query: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string', maxLength: 128 } },
      handler: async (request: FastifyRequest) => {
        const q = request.query as { limit?: number; after?: string };
        return { accounts: (await accounts.list(q.after ?? '', q.limit ?? 100)).map(accountJson) };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/omadm/accounts',
      summary: 'Add or replace an OMA DM account: the credentials the device authenticates with (syncml:auth-md5 or HMAC)',
      body: {
        type: 'object',
        required: ['deviceId', 'clientPassword'],
        additionalProperties: false,
        properties: { deviceId: deviceIdSchema, clientUsername: deviceIdSchema, clientPassword: { type: 'string', minLength: 8, maxLength: 256 } },
      },
      handler: async (request, reply) => {
        const b = request.body as { deviceId: string; clientUsername?: string; clientPassword: string };
        const account = await accounts.put({ deviceId: b.deviceId, clientUsername: b.clientUsername ?? b.deviceId, clientPassword: b.clientPassword }, randomBytes(16), now());
        return reply.code(201).send(accountJson(account));
      },
    },
    {
      method: 'POST',
      url: '/api/v1/omadm/devices/:deviceId/commands',
      summary: 'Queue a Get, Replace or Exec on a node of an OMA DM device, run in its next session',
      params: { deviceId: 'DevId' },
      body: {
        type: 'object',
        required: ['kind', 'uri'],
        additionalProperties: false,
        properties: {
          kind: { type: 'string', enum: ['Get', 'Replace', 'Exec'] },
          uri: { type: 'string', minLength: 3, maxLength: 1024, pattern: '^\\./[^\\u0000-\\u001f\\u007f-\\u009f]*$' },
          data: { type: 'string', maxLength: 16384 },
          format: { type: 'string', enum: ['chr', 'int', 'bool', 'b64', 'xml', 'node'] },
        },
      },
      handler: async (request, reply) => {
        const b = request.body as { kind: 'Get' | 'Replace' | 'Exec'; uri: string; data?: string; format?: string };
        const deviceId = (request.params as { deviceId: string }).deviceId;
        const queued = await commands.enqueue({ deviceId, kind: b.kind, uri: b.uri, ...(b.data === undefined ? {} : { data: b.data }), ...(b.format === undefined ? {} : { format: b.format }) }, now());
        return reply.code(201).send(commandJson(queued));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/devices/:deviceId/commands',
      summary: 'An OMA DM device\'s commands, newest first, with their status and the device\'s answer',
      params: { deviceId: 'DevId' },
      handler: async (request) => ({ commands: (await commands.listByDevice((request.params as { deviceId: string }).deviceId)).map(commandJson) }),
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/devices/:deviceId',
      summary: 'What an OMA DM device reported of itself (./DevInfo, ./DevDetail) in its last session',
      params: { deviceId: 'DevId (IMEI:…, MEID:…, or a serial)' },
      handler: async (request) => {
        const deviceId = (request.params as { deviceId: string }).deviceId;
        const facts = await deviceFacts.get(factsEndpointOf(deviceId));
        if (!facts) throw new StoreError('NOT_FOUND', `no OMA DM device "${deviceId}" has reported facts`);
        const { endpoint: _endpoint, ...rest } = facts;
        return { deviceId, ...rest, updatedAt: new Date(facts.updatedAt).toISOString() };
      },
    },
  ];
}
