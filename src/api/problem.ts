/**
 * Every error the HTTP API answers is an RFC 9457 problem document (`application/problem+json`:
 * type, title, status, detail; `error` and `message` repeat the code and detail for older
 * clients), whoever produced it: a route, the schema validation, a content-type parser (415),
 * the body limit (413), the router (404, and 405 with Allow when the path exists under another
 * method), a malformed URL, or authorization. Routes may still `send({ error, message })` with
 * an error status: the onSend hook here turns that into the same problem form, so a route
 * added later by any area is covered too.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { registeredRoutes } from './auth.js';

export const PROBLEM_TYPE = 'application/problem+json';

/** The JSON schema of a problem document (OpenAPI components.schemas.Problem). */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'error'],
  properties: {
    type: { type: 'string', description: 'always about:blank: the status and `error` say what happened' },
    title: { type: 'string', description: 'the HTTP status phrase' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string', description: 'what was wrong, for a person' },
    error: { type: 'string', description: 'a stable code for scripts, e.g. BAD_REQUEST, NOT_FOUND, FORBIDDEN' },
    message: { type: 'string', description: 'the detail again (older clients read it)' },
  },
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  error: string;
  message: string;
}

export function problemBody(status: number, error: string, detail: string): ProblemBody {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, error, message: detail };
}

const CODE_OF_STATUS: Record<number, string> = { 400: 'BAD_REQUEST', 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NOT_FOUND', 405: 'METHOD_NOT_ALLOWED', 409: 'CONFLICT', 413: 'PAYLOAD_TOO_LARGE', 415: 'UNSUPPORTED_MEDIA_TYPE', 416: 'RANGE_NOT_SATISFIABLE', 429: 'TOO_MANY_REQUESTS', 501: 'NOT_AVAILABLE', 503: 'UNAVAILABLE' };

/**
 * The problem form of an error answer a route produced its own way: `{ error, message }` JSON,
 * a problem already, or plain text. Undefined when the body is not one of those (left alone).
 */
export function asProblem(status: number, contentType: string, payload: string): ProblemBody | undefined {
  if (contentType.startsWith(PROBLEM_TYPE)) return undefined;
  if (contentType.startsWith('application/json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    const p = parsed as Record<string, unknown>;
    const detail = typeof p.detail === 'string' ? p.detail : typeof p.message === 'string' ? p.message : (STATUS_CODES[status] ?? 'error');
    const code = typeof p.error === 'string' ? p.error : (CODE_OF_STATUS[status] ?? 'ERROR');
    // Extra members (a route's own context, like a conflicting job id) stay.
    return { ...p, ...problemBody(status, code, detail) };
  }
  if (contentType.startsWith('text/plain')) return problemBody(status, CODE_OF_STATUS[status] ?? 'ERROR', payload.trim() || (STATUS_CODES[status] ?? 'error'));
  return undefined;
}

/** `/a/:x/b` → a matcher of concrete paths (a parameter is one path segment, as in the router). */
function pathMatcher(url: string): RegExp {
  const escaped = url.split('/').map((segment) => (segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${escaped.join('/')}$`);
}

/** Methods the app has for a concrete path (empty when the path is unknown). */
export function methodsFor(app: FastifyInstance, path: string): string[] {
  const methods = new Set<string>();
  for (const route of registeredRoutes(app)) if (pathMatcher(route.url).test(path)) methods.add(route.method);
  return [...methods].sort();
}

/** Fastify's `frameworkErrors` (a URL it cannot decode, a parameter past maxParamLength): 400 problem. */
export function frameworkErrorProblem(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  void reply.code(400).type(PROBLEM_TYPE).send(problemBody(400, 'BAD_URL', `${error.message}: the path is not a valid percent-encoded URL`));
}

/** 404 for an unknown path, 405 (with Allow) for a known path under a method it does not have. */
export function installProblemReplies(app: FastifyInstance): void {
  app.setNotFoundHandler(async (request, reply) => {
    const path = (request.raw.url ?? '/').split('?')[0]!;
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    const allowed = methodsFor(app, path);
    if (allowed.length > 0) {
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .type(PROBLEM_TYPE)
        .send(problemBody(405, 'METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${shown}; it takes ${allowed.join(', ')}`));
    }
    return reply.code(404).type(PROBLEM_TYPE).send(problemBody(404, 'UNKNOWN_ROUTE', 'no such API route (every route is in /api/openapi.json)'));
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode < 400 || typeof payload !== 'string') return payload;
    const contentType = String(reply.getHeader('content-type') ?? '');
    // The console page's "not built" notice stays text; everything else is the API's.
    if (contentType.startsWith('text/plain') && !(request.raw.url ?? '').startsWith('/api/')) return payload;
    const converted = asProblem(reply.statusCode, contentType, payload);
    if (!converted) return payload;
    reply.type(PROBLEM_TYPE);
    return JSON.stringify(converted);
  });
}
