/**
 * The API's request log and request metrics, and the /metrics route: installed on the app
 * before its routes (ApiOptions.instrument). One log line per request with the route's
 * pattern (never the raw path: /pkg/<token> carries a capability), method, status, duration,
 * who asked (the principal's actor label) and the source address. No headers, no query
 * string, no body.
 */
import type { FastifyInstance } from 'fastify';
import { principalOf } from '../api/auth.js';
import type { Logger } from './logger.js';
import type { DepotMetrics } from './metrics.js';

const started = new WeakMap<object, bigint>();

export function instrumentApi(app: FastifyInstance, logger: Logger, metrics: DepotMetrics): void {
  app.addHook('onRequest', (request, _reply, done) => {
    started.set(request, process.hrtime.bigint());
    done();
  });
  app.addHook('onResponse', async (request, reply) => {
    const begun = started.get(request);
    const seconds = begun === undefined ? 0 : Number(process.hrtime.bigint() - begun) / 1e9;
    const route = request.is404 ? '(no route)' : (request.routeOptions.url ?? '(no route)');
    const status = reply.statusCode;
    metrics.httpRequest(request.method, route, status, seconds);
    const line = { method: request.method, route, status, ms: Math.round(seconds * 10_000) / 10, actor: principalOf(request)?.actor ?? null, source: request.ip ?? null };
    if (status >= 500) logger.error(line, 'api request');
    else logger.info(line, 'api request');
  });
  app.get('/metrics', { config: { role: 'viewer', summary: 'Prometheus metrics (text exposition format): registrations, DM sessions, SMS, installs, campaigns, errors, queue depths, store latency' } }, async (_request, reply) => reply.type(metrics.contentType).send(await metrics.text()));
}
