/**
 * OMA DM routes of the operator API: DM accounts (the client credentials a device proves, and
 * optionally Depot's server credentials towards it; passwords never shown back) and the facts a device's sessions reported (device facts under
 * `omadm:<DevId>`, see docs/omadm.md).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { StoreError } from '../store/errors.js';
import type { DeviceFactsRepository } from '../store/types.js';
import type { OmaDmAccount, OmaDmAccountInput, OmaDmServerCredentialsInput } from '../store/sqlite/omadm-accounts.js';
import type { OmaDmCommand, SqliteOmaDmCommandRepository } from '../store/sqlite/omadm-commands.js';
import { factsEndpointOf } from '../omadm/http.js';
import { ScomoError } from '../omadm/scomo/service.js';
import type { ScomoService } from '../omadm/scomo/service.js';
import { scomoResultAdvice } from '../omadm/scomo/results.js';
import { SCOMO_OPERATIONS } from '../store/sqlite/omadm-scomo.js';
import type { ScomoJob, ScomoOperation } from '../store/sqlite/omadm-scomo.js';

export interface OmaDmApiOptions {
  readonly accounts: {
    list(after?: string, limit?: number): Promise<OmaDmAccount[]>;
    put(input: OmaDmAccountInput, initialNonce: Uint8Array, now: number): Promise<OmaDmAccount>;
    setServerCredentials?(deviceId: string, input: OmaDmServerCredentialsInput | null, now: number): Promise<boolean>;
    get?(deviceId: string): Promise<OmaDmAccount | null>;
  };
  readonly commands: Pick<SqliteOmaDmCommandRepository, 'enqueue' | 'listByDevice' | 'expireDue'>;
  readonly deviceFacts: Pick<DeviceFactsRepository, 'get'>;
  /** SCOMO installs (absent: the routes answer 404). */
  readonly scomo?: ScomoService;
  readonly now: () => number;
}

/** A SCOMO job as the operator sees it: never the download token. */
export function scomoJobJson(j: ScomoJob) {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    id: j.id, deviceId: j.deviceId, operation: j.operation, state: j.state,
    package: j.packageSha256 === null ? null : { sha256: j.packageSha256, name: j.packageName, version: j.packageVersion },
    node: j.node, root: j.root, askUser: j.askUser, correlator: j.correlator,
    result: j.resultCode === null && j.resultName === null ? null : { code: j.resultCode, name: j.resultName, advice: j.resultCode === null ? null : scomoResultAdvice(j.resultCode).message },
    component: j.identifier === null ? null : { id: j.identifier, state: j.componentState },
    message: j.message, retry: j.retry, sends: j.sends, downloadBytes: j.downloadBytes,
    createdAt: iso(j.createdAt), updatedAt: iso(j.updatedAt), finishedAt: iso(j.finishedAt),
  };
}

/** ScomoError as the API's errors (404, 400, 409). */
async function scomoCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof ScomoError) throw new StoreError(error.code, error.message);
    throw error;
  }
}

/** DevIds are IMEI/MEID/serials: printable, bounded. */
const deviceIdSchema = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$' };

function accountJson(a: OmaDmAccount) {
  return {
    deviceId: a.deviceId, clientUsername: a.clientUsername,
    // Server authentication (Depot proves itself to the device): the server ID and where it comes from, never the password or nonce.
    serverId: a.serverId ?? null, serverCredentials: a.serverCredentialsFrom ?? null,
    createdAt: new Date(a.createdAt).toISOString(), updatedAt: new Date(a.updatedAt).toISOString(),
  };
}

function commandJson(c: OmaDmCommand) {
  return { id: c.id, kind: c.kind, uri: c.uri, data: c.data, status: c.status, resultCode: c.resultCode, resultData: c.resultData, expiresAt: c.expiresAt === null ? null : new Date(c.expiresAt).toISOString(), createdAt: new Date(c.createdAt).toISOString(), updatedAt: new Date(c.updatedAt).toISOString() };
}

export function omadmRoutes(options: OmaDmApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { accounts, commands, deviceFacts, now } = options;
  const scomo = (): ScomoService => {
    if (options.scomo === undefined) throw new StoreError('NOT_FOUND', 'SCOMO is not available on this server');
    return options.scomo;
  };
  return [
    {
      method: 'POST',
      url: '/api/v1/omadm/devices/:deviceId/installs',
      summary: 'A SCOMO operation on an OMA DM device, run from its next session: DownloadInstall (the default) of a catalogued package, or Download, DownloadInstallInactive; Install/InstallInactive of a delivered component; Activate, Deactivate, Remove of a deployed one',
      params: { deviceId: 'DevId' },
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          operation: { type: 'string', enum: [...SCOMO_OPERATIONS] },
          packageSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          component: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
          askUser: { type: 'string', minLength: 1, maxLength: 200 },
        },
      },
      handler: async (request, reply) => {
        const b = request.body as { operation?: ScomoOperation; packageSha256?: string; component?: string; askUser?: string };
        const deviceId = (request.params as { deviceId: string }).deviceId;
        const job = await scomoCall(() => scomo().create({ deviceId, operation: b.operation ?? 'DownloadInstall', ...(b.packageSha256 === undefined ? {} : { packageSha256: b.packageSha256 }), ...(b.component === undefined ? {} : { component: b.component }), ...(b.askUser === undefined ? {} : { askUser: b.askUser }) }));
        return reply.code(201).send(scomoJobJson(job));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/devices/:deviceId/installs',
      summary: 'An OMA DM device\'s SCOMO jobs, newest first',
      params: { deviceId: 'DevId' },
      handler: async (request) => ({ installs: (await scomo().list((request.params as { deviceId: string }).deviceId)).map(scomoJobJson) }),
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/installs/:id',
      summary: 'One SCOMO job: its state, the device\'s result code with what it means and whether to retry',
      params: { id: 'SCOMO job id' },
      handler: async (request) => {
        const job = await scomo().get((request.params as { id: string }).id);
        if (!job) throw new StoreError('NOT_FOUND', `no SCOMO job ${(request.params as { id: string }).id}`);
        return scomoJobJson(job);
      },
    },
    {
      method: 'POST',
      url: '/api/v1/omadm/installs/:id/cancel',
      summary: 'Cancel a SCOMO job that has not reached the device yet (409 once it has)',
      params: { id: 'SCOMO job id' },
      handler: async (request) => scomoJobJson(await scomoCall(() => scomo().cancel((request.params as { id: string }).id))),
    },
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
      summary: 'Add or replace an OMA DM account: the credentials the device authenticates with (syncml:auth-md5 or HMAC), and optionally Depot\'s server ID and server password towards it (server authentication)',
      body: {
        type: 'object',
        required: ['deviceId', 'clientPassword'],
        additionalProperties: false,
        properties: {
          deviceId: deviceIdSchema, clientUsername: deviceIdSchema, clientPassword: { type: 'string', minLength: 8, maxLength: 256 },
          serverId: deviceIdSchema, serverPassword: { type: 'string', minLength: 8, maxLength: 256 },
          // The nonce the device holds for the server (base64), as provisioned with the credentials; default none (the device's Chal gives it).
          serverNonce: { type: 'string', maxLength: 344, pattern: '^[A-Za-z0-9+/]*={0,2}$' },
        },
      },
      handler: async (request, reply) => {
        const b = request.body as { deviceId: string; clientUsername?: string; clientPassword: string; serverId?: string; serverPassword?: string; serverNonce?: string };
        if ((b.serverId === undefined) !== (b.serverPassword === undefined) || (b.serverNonce !== undefined && b.serverId === undefined)) {
          throw new StoreError('INVALID_ARGUMENT', 'serverId and serverPassword go together (serverNonce only with them)');
        }
        if (b.serverId !== undefined && accounts.setServerCredentials === undefined) throw new StoreError('INVALID_ARGUMENT', 'server credentials are not supported here');
        let account = await accounts.put({ deviceId: b.deviceId, clientUsername: b.clientUsername ?? b.deviceId, clientPassword: b.clientPassword }, randomBytes(16), now());
        if (b.serverId !== undefined && b.serverPassword !== undefined) {
          await accounts.setServerCredentials!(b.deviceId, { serverId: b.serverId, serverPassword: b.serverPassword, ...(b.serverNonce === undefined ? {} : { serverNonce: new Uint8Array(Buffer.from(b.serverNonce, 'base64')) }) }, now());
          account = (await accounts.get?.(b.deviceId)) ?? account;
        }
        return reply.code(201).send(accountJson(account));
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/omadm/accounts/:deviceId/server-credentials',
      summary: 'Forget the server ID and password Depot proves itself with towards a device (e.g. after the device was re-provisioned); the bootstrap\'s credentials, if any, apply again',
      params: { deviceId: 'DevId' },
      handler: async (request, reply) => {
        const deviceId = (request.params as { deviceId: string }).deviceId;
        if (accounts.setServerCredentials === undefined) throw new StoreError('INVALID_ARGUMENT', 'server credentials are not supported here');
        if (!(await accounts.setServerCredentials(deviceId, null, now()))) throw new StoreError('NOT_FOUND', `no OMA DM account for "${deviceId}"`);
        const account = await accounts.get?.(deviceId);
        return account ? reply.send(accountJson(account)) : reply.code(204).send();
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
          // Not sent by then (the device opened no session): failed as expired instead of run late. ISO 8601.
          expiresAt: { type: 'string', minLength: 10, maxLength: 40 },
        },
      },
      handler: async (request, reply) => {
        const b = request.body as { kind: 'Get' | 'Replace' | 'Exec'; uri: string; data?: string; format?: string; expiresAt?: string };
        const deviceId = (request.params as { deviceId: string }).deviceId;
        const expiresAt = b.expiresAt === undefined ? undefined : Date.parse(b.expiresAt);
        if (expiresAt !== undefined && !Number.isFinite(expiresAt)) throw new StoreError('INVALID_ARGUMENT', 'expiresAt must be an ISO 8601 date-time');
        const queued = await commands.enqueue({ deviceId, kind: b.kind, uri: b.uri, ...(b.data === undefined ? {} : { data: b.data }), ...(b.format === undefined ? {} : { format: b.format }), ...(expiresAt === undefined ? {} : { expiresAt }) }, now());
        return reply.code(201).send(commandJson(queued));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/omadm/devices/:deviceId/commands',
      summary: 'An OMA DM device\'s commands, newest first, with their status and the device\'s answer',
      params: { deviceId: 'DevId' },
      handler: async (request) => {
        const deviceId = (request.params as { deviceId: string }).deviceId;
        await commands.expireDue(now(), deviceId); // a command past its expiry is not shown queued
        return { commands: (await commands.listByDevice(deviceId)).map(commandJson) };
      },
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
