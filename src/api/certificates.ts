/**
 * Certificate routes of the operator API (issues 16 and 17, "send certificate"): Depot's root
 * (fingerprint, download), every device's trust (the inventory's trustState and Depot's last push
 * of its root, with when), and Send certificate for one device or many (by ids or a filter).
 * The one-time link a device fetches the root from (GET /c/<token>) is public: the token is the
 * capability, as for /d/<token>.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { RouteSpec } from './server.js';
import { FleetError } from '../fleet/domain.js';
import type { InventoryDevice, InventoryRepository } from '../fleet/inventory-types.js';
import { identityOfAddress } from '../fleet/inventory.js';
import { CA_CERT_CONTENT_TYPE, CERTIFICATE_LINK_PATH, type CertificateLinks, SendCertificateError, type SendCertificateMethod, type TrustRoot } from '../fleet/methods/send-certificate.js';
import { TRUST_PUSH_STATES, type TrustPushState, type TrustRecord, type TrustRepository, pemOfDer } from '../fleet/trust.js';
import { printable } from '../util/printable.js';

export interface CertificatesApiOptions {
  /** Depot's root; without a CA (depot ca init) every route answers 409 saying so. */
  readonly root?: TrustRoot;
  /** Without it (no channel can reach any device: SMS off, no certificate bootstrap) sending answers 409. */
  readonly sender?: Pick<SendCertificateMethod, 'send' | 'refresh'>;
  readonly channels: readonly string[];
  readonly trust: Pick<TrustRepository, 'get' | 'list'>;
  readonly inventory: Pick<InventoryRepository, 'list' | 'ids' | 'getMany' | 'findByIdentity'>;
  readonly links?: CertificateLinks;
  readonly now: () => number;
}

/** At most this many devices per bulk request. */
export const MAX_CERTIFICATE_BATCH = 1000;

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** The chain endpoint of an inventory device (what install jobs and pushes name). */
export function endpointOfDevice(d: InventoryDevice): string | null {
  return d.lwm2mEndpoint ?? (d.omadmDevId ? `omadm:${d.omadmDevId}` : null);
}

export function trustRecordJson(r: TrustRecord) {
  return {
    endpoint: r.endpoint,
    state: r.state,
    channel: r.channel,
    detail: r.detail,
    fetches: r.fetches,
    linkExpiresAt: iso(r.linkExpiresAt),
    sentAt: iso(r.sentAt),
    pushedAt: iso(r.pushedAt),
    confirmedAt: iso(r.confirmedAt),
    updatedAt: iso(r.updatedAt),
  };
}

/** The operator's send: an idempotency key unique to this request (a repeated click is a new push). */
const operatorKey = (now: number): string => `send-certificate:op:${now}:${randomBytes(6).toString('base64url')}`;

const NO_CONTROL = '^[^\\u0000-\\u001f\\u007f-\\u009f]+$';
const text = (max = 255) => ({ type: 'string', minLength: 1, maxLength: max, pattern: NO_CONTROL });

export function certificateRoutes(options: CertificatesApiOptions | undefined): RouteSpec[] {
  if (options === undefined) return [];
  const { trust, inventory, now } = options;
  const rootOrRefuse = (): TrustRoot => {
    if (!options.root) throw new FleetError('CONFLICT', 'Depot has no CA, so no root certificate to send or show: run depot ca init (docs/pki.md)');
    return options.root;
  };

  const deviceTrust = async (d: InventoryDevice) => {
    const endpoint = endpointOfDevice(d);
    const record = endpoint ? await trust.get(endpoint) : null;
    return {
      id: d.id,
      endpoint,
      make: d.make,
      model: d.model,
      msisdn: d.msisdn,
      trustState: d.trustState,
      push: record ? { ...trustRecordJson(record), currentRoot: record.rootSha256 === options.root?.sha256 } : null,
    };
  };

  const sendOne = async (endpoint: string) => {
    rootOrRefuse();
    if (!options.sender) throw new FleetError('CONFLICT', 'Depot has no way to send its root: SMS is off and LwM2M bootstrap does not use certificates (docs/trust.md)');
    try {
      return await options.sender.send(endpoint, operatorKey(now()));
    } catch (error) {
      if (error instanceof SendCertificateError) throw new FleetError('CONFLICT', error.message);
      throw error;
    }
  };

  const routes: RouteSpec[] = [
    {
      method: 'GET',
      url: '/api/v1/certificates',
      summary: "Depot's root certificate (SHA-256 fingerprint, download paths), the channels Send certificate can use, and how many devices are in each push state",
      handler: async () => {
        const root = rootOrRefuse();
        const counts: Record<string, number> = {};
        for (const state of TRUST_PUSH_STATES) {
          let n = 0;
          let after: string | undefined;
          do {
            const page = await trust.list({ state, limit: 1000, ...(after ? { after } : {}) });
            n += page.items.length;
            after = page.next ?? undefined;
          } while (after);
          counts[state] = n;
        }
        return { root: { sha256: root.sha256, fingerprint: root.fingerprint, pem: '/api/v1/certificates/root.pem', der: '/api/v1/certificates/root.der' }, channels: options.channels, pushes: counts };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/certificates/root.pem',
      summary: "Depot's root certificate, PEM (what `depot ca export` writes)",
      handler: async (_request, reply) => reply.type('application/x-pem-file').header('content-disposition', 'attachment; filename="depot-root.pem"').send(pemOfDer(rootOrRefuse().der)),
    },
    {
      method: 'GET',
      url: '/api/v1/certificates/root.der',
      summary: "Depot's root certificate, DER, as application/x-x509-ca-cert (what a device's certificate installer takes)",
      handler: async (_request, reply) => reply.type(CA_CERT_CONTENT_TYPE).header('content-disposition', 'attachment; filename="depot-root.cer"').send(Buffer.from(rootOrRefuse().der)),
    },
    {
      method: 'GET',
      url: '/api/v1/certificates/devices',
      summary:
        "Devices with their trust: the inventory's trustState (does it hold Depot's root?) and Depot's last push of the root (state sent, pushed, confirmed or failed; channel; when). With state, only devices whose last push is in it (paged by endpoint); without, inventory devices (paged by the inventory's cursor)",
      query: { state: { type: 'string', enum: [...TRUST_PUSH_STATES] }, limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: { type: 'string', maxLength: 300 } },
      handler: async (request) => {
        const q = request.query as { state?: TrustPushState; limit?: number; after?: string };
        const page = { ...(q.limit ? { limit: q.limit } : {}), ...(q.after ? { after: q.after } : {}) };
        if (q.state) {
          const records = await trust.list({ state: q.state, ...page });
          const devices = await Promise.all(
            records.items.map(async (r) => {
              const device = await inventory.findByIdentity(identityOfAddress(r.endpoint));
              return device ? deviceTrust(device) : { id: null, endpoint: r.endpoint, make: null, model: null, msisdn: null, trustState: 'unknown', push: { ...trustRecordJson(r), currentRoot: r.rootSha256 === options.root?.sha256 } };
            }),
          );
          return { devices, next: records.next };
        }
        const devices = await inventory.list(page);
        return { devices: await Promise.all(devices.items.map(deviceTrust)), next: devices.next };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/devices/:endpoint/certificate',
      summary:
        "Send Depot's root certificate to the device through what it supports (an SMS with a one-time link to the root; the LwM2M bootstrap's trust anchor), recording its trust state; answers the push record (follow it at GET /api/v1/devices/{endpoint}/certificate)",
      params: { endpoint: 'Device endpoint: an LwM2M endpoint, or omadm:<DevId>' },
      handler: async (request, reply) => reply.code(202).send(trustRecordJson(await sendOne((request.params as { endpoint: string }).endpoint))),
    },
    {
      method: 'GET',
      url: '/api/v1/devices/:endpoint/certificate',
      summary: "The device's last push of Depot's root (state, channel, when sent, taken and confirmed), moved on by what its channel knows now",
      params: { endpoint: 'Device endpoint: an LwM2M endpoint, or omadm:<DevId>' },
      handler: async (request) => {
        const endpoint = (request.params as { endpoint: string }).endpoint;
        const record = options.sender ? await options.sender.refresh(endpoint) : await trust.get(endpoint);
        if (!record) throw new FleetError('NOT_FOUND', `Depot never sent its root to "${printable(endpoint, 80)}" (trust unknown)`);
        return trustRecordJson(record);
      },
    },
    {
      method: 'POST',
      url: '/api/v1/certificates/send',
      summary: `Send Depot's root to many devices: endpoints (up to ${MAX_CERTIFICATE_BATCH}) or an inventory filter (make, model, group, tag, trustState); answers each device's outcome (sent, or refused with the reason)`,
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          endpoints: { type: 'array', minItems: 1, maxItems: MAX_CERTIFICATE_BATCH, uniqueItems: true, items: text() },
          filter: {
            type: 'object',
            additionalProperties: false,
            properties: { make: text(), model: text(), group: text(64), tag: text(64), trustState: { type: 'string', enum: ['unknown', 'yes', 'no'] } },
          },
        },
      },
      handler: async (request: FastifyRequest) => {
        const b = request.body as { endpoints?: string[]; filter?: { make?: string; model?: string; group?: string; tag?: string; trustState?: string } };
        if ((b.endpoints === undefined) === (b.filter === undefined)) throw new FleetError('BAD_REQUEST', 'give either endpoints or a filter');
        let endpoints = b.endpoints ?? [];
        if (b.filter) {
          const { trustState, ...rest } = b.filter;
          const ids = await inventory.ids(rest);
          if (ids.length > MAX_CERTIFICATE_BATCH * 10) throw new FleetError('BAD_REQUEST', `the filter matches ${ids.length} devices; narrow it (at most ${MAX_CERTIFICATE_BATCH} are sent per request)`);
          const devices = (await inventory.getMany(ids)).filter((d) => trustState === undefined || d.trustState === trustState);
          endpoints = devices.map(endpointOfDevice).filter((e): e is string => e !== null);
          if (endpoints.length > MAX_CERTIFICATE_BATCH) throw new FleetError('BAD_REQUEST', `the filter matches ${endpoints.length} devices; narrow it (at most ${MAX_CERTIFICATE_BATCH} per request)`);
        }
        const results = [];
        for (const endpoint of endpoints) {
          try {
            const record = await sendOne(endpoint);
            results.push({ endpoint, outcome: record.state === 'failed' ? 'failed' : 'sent', state: record.state, message: record.detail });
          } catch (error) {
            if (!(error instanceof FleetError)) throw error;
            results.push({ endpoint, outcome: 'refused', state: null, message: error.message });
          }
        }
        return { results };
      },
    },
  ];
  if (options.links) {
    const links = options.links;
    routes.push({
      method: 'GET',
      url: `${CERTIFICATE_LINK_PATH}/:token`,
      summary: "Certificate link from Send certificate's SMS: Depot's root, DER, as application/x-x509-ca-cert (a handset's browser hands it to the certificate installer); one-time, expiring (the token is the capability)",
      public: true,
      params: { token: 'Token from the SMS' },
      handler: async (request, reply) => {
        const der = await links.open((request.params as { token: string }).token);
        if (!der) return reply.code(404).send({ error: 'NOT_FOUND', message: 'unknown, expired or used-up certificate link' });
        return reply.type(CA_CERT_CONTENT_TYPE).header('cache-control', 'no-store').send(Buffer.from(der));
      },
    });
  }
  return routes;
}
