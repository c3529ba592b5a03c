/**
 * API authorization: deny by default. Every route gets the bearer-token check as its own
 * onRequest hook (added by an onRoute hook, so a route registered later is covered too)
 * unless it is declared with `config: { public: true }`; requests the router matched to no
 * route need the token as well, so a 404 tells an anonymous caller nothing. The decision is
 * made on the route the router chose, never on the raw request URL (which may be
 * percent-encoded, dot-segmented or in absolute form).
 *
 * Failed authentications are throttled per source address (see AuthFailureThrottle).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';

export interface AuthThrottleOptions {
  /** Failed authentications from one source within `windowMs` that lock it out. */
  maxFailures: number;
  windowMs: number;
  /** How long a locked-out source gets 429 on every protected route. */
  lockoutMs: number;
  /** Most sources remembered; past it the least recently failing one is forgotten. */
  maxTrackedSources: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = { maxFailures: 10, windowMs: 60_000, lockoutMs: 5 * 60_000, maxTrackedSources: 10_000 };

interface SourceState {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

/**
 * Failed-authentication counts per source, bounded: entries expire, and when the map is
 * full the least recently failing source is dropped (Map order is insertion order, and a
 * failure re-inserts its source), so many addresses cannot grow memory without limit.
 */
export class AuthFailureThrottle {
  private readonly sources = new Map<string, SourceState>();
  readonly options: AuthThrottleOptions;

  constructor(options: Partial<AuthThrottleOptions> = {}) {
    this.options = { ...DEFAULT_AUTH_THROTTLE, ...options };
  }

  /** Milliseconds the source stays locked out, 0 when it is not. */
  lockedFor(source: string, now: number): number {
    const state = this.sources.get(source);
    if (!state) return 0;
    if (state.lockedUntil > now) return state.lockedUntil - now;
    if (this.expired(state, now)) this.sources.delete(source);
    return 0;
  }

  recordFailure(source: string, now: number): void {
    let state = this.sources.get(source);
    this.sources.delete(source);
    if (!state || this.expired(state, now) || now - state.windowStart >= this.options.windowMs) state = { failures: 0, windowStart: now, lockedUntil: 0 };
    state.failures += 1;
    if (state.failures >= this.options.maxFailures) state.lockedUntil = now + this.options.lockoutMs;
    while (this.sources.size >= this.options.maxTrackedSources) this.sources.delete(this.sources.keys().next().value!);
    this.sources.set(source, state);
  }

  /** Sources remembered now (for tests and metrics). */
  get size(): number {
    return this.sources.size;
  }

  private expired(state: SourceState, now: number): boolean {
    return state.lockedUntil <= now && now - state.windowStart >= this.options.windowMs;
  }
}

/**
 * The throttling key of a peer address: IPv4 as it is (also when IPv4-mapped), IPv6 by its
 * /64 prefix, since one host usually owns a whole /64 and can rotate through it. Source ports
 * play no part.
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.toLowerCase().split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  // An embedded IPv4 tail (::a.b.c.d) is two groups; only the first four groups count here.
  const tailCount = tailGroups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = address.includes('::') ? [...headGroups, ...new Array<string>(8 - headGroups.length - tailCount).fill('0'), ...tailGroups] : headGroups;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** A registered route as the authorization saw it. */
export interface SeenRoute {
  method: string;
  url: string;
  public: boolean;
}

export interface AuthorizationOptions {
  token: string;
  now: () => number;
  throttle: AuthFailureThrottle;
}

const routesByApp = new WeakMap<FastifyInstance, SeenRoute[]>();

/** Every route registered on the app (after `createApi`), with whether it is public: what the authorization test enumerates. */
export function registeredRoutes(app: FastifyInstance): readonly SeenRoute[] {
  return routesByApp.get(app) ?? [];
}

/** Installs deny-by-default authorization on `app`; call before any route is added. */
export function installAuthorization(app: FastifyInstance, options: AuthorizationOptions): void {
  // Digests of equal length, so the comparison is constant-time whatever the length given.
  const expected = digest(options.token);
  const seen: SeenRoute[] = [];
  routesByApp.set(app, seen);

  const refuse = (request: FastifyRequest, reply: FastifyReply, status: 401 | 429, headers: Record<string, string>, error: string, message: string): FastifyReply => {
    // A refused request's body is not worth reading (an anonymous upload, say): close after answering.
    if (hasBody(request)) reply.header('connection', 'close');
    return reply.code(status).headers(headers).send({ error, message });
  };

  const authorize = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const source = sourceKey(request.socket.remoteAddress);
    const now = options.now();
    const wait = options.throttle.lockedFor(source, now);
    // Locked out: refused without looking at the token, so guessing on is no use.
    if (wait > 0) return refuse(request, reply, 429, { 'retry-after': String(Math.ceil(wait / 1000)) }, 'TOO_MANY_FAILED_AUTHENTICATIONS', 'too many failed authentications from this address; retry later');
    const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
    if (match && timingSafeEqual(digest(match[1]!), expected)) return undefined;
    options.throttle.recordFailure(source, now);
    // The token given is never echoed or logged.
    return refuse(request, reply, 401, { 'www-authenticate': 'Bearer realm="depot"' }, 'UNAUTHORIZED', 'a valid bearer token is required');
  };

  app.addHook('onRoute', (route: RouteOptions) => {
    const config: { public?: unknown } | undefined = route.config;
    const isPublic = config?.public === true;
    for (const method of [route.method].flat()) seen.push({ method, url: route.url, public: isPublic });
    if (isPublic) return;
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [authorize, ...existing.filter((hook) => hook !== authorize)];
  });

  // No route matched: the same check, before the body is read.
  app.addHook('onRequest', async (request, reply) => (request.is404 ? authorize(request, reply) : undefined));
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
