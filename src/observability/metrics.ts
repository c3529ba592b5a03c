/**
 * Prometheus metrics (prom-client), one registry per server (tests run several in a process).
 * Served at GET /metrics (text exposition format 0.0.4) to any principal with the viewer role:
 * a Prometheus scrape job uses an API token of role viewer (see docs/operators.md).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { InstallJob, InstallJobState } from '../fleet/domain.js';

export interface QueueDepthSource {
  queueDepths(): Promise<{ installsOpen: number; operationsQueued: number; bootstrapPending: number }>;
}

export interface RegisteredSource {
  /** Registrations not expired, and all. */
  counts(): Promise<{ registered: number; devices: number }>;
}

const TERMINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

export class DepotMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  private readonly lwm2mEvents: Counter<'event'>;
  private readonly installTransitions: Counter<'to'>;
  private readonly installs: Counter<'kind' | 'method' | 'result'>;
  private readonly errors: Counter<'component'>;
  private readonly authRefusals: Counter<'status'>;
  private readonly storeLatency: Histogram<'query'>;

  constructor(sources: { queues?: QueueDepthSource; devices?: RegisteredSource } = {}) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'depot_process_' });
    this.httpRequests = new Counter({ name: 'depot_http_requests_total', help: 'HTTP API requests by method, route (pattern, never the raw path) and status', labelNames: ['method', 'route', 'status'], registers });
    this.httpDuration = new Histogram({ name: 'depot_http_request_duration_seconds', help: 'HTTP API request duration', labelNames: ['method', 'route'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers });
    this.lwm2mEvents = new Counter({ name: 'depot_lwm2m_events_total', help: 'LwM2M registration interface events: registered, updated, deregistered, expired', labelNames: ['event'], registers });
    this.installTransitions = new Counter({ name: 'depot_install_transitions_total', help: 'Install job transitions by state entered', labelNames: ['to'], registers });
    this.installs = new Counter({ name: 'depot_installs_total', help: 'Install (and uninstall/activate/deactivate) jobs finished, by kind, delivery method and result', labelNames: ['kind', 'method', 'result'], registers });
    this.errors = new Counter({ name: 'depot_errors_total', help: 'Background errors by component (lwm2m: CoAP/DTLS exchanges with devices; installs; chain; api: 5xx)', labelNames: ['component'], registers });
    this.authRefusals = new Counter({ name: 'depot_api_refusals_total', help: 'API requests refused by authentication or authorization (401, 403, 429)', labelNames: ['status'], registers });
    this.storeLatency = new Histogram({ name: 'depot_store_query_duration_seconds', help: 'Store queries timed where cheap: the gauges below and the dashboard', labelNames: ['query'], buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1], registers });
    const timed = async <T>(query: string, fn: () => Promise<T>): Promise<T> => {
      const end = this.storeLatency.startTimer({ query });
      try {
        return await fn();
      } finally {
        end();
      }
    };
    if (sources.queues) {
      const queues = sources.queues;
      new Gauge({
        name: 'depot_queue_depth',
        help: 'Work waiting: open install jobs, operations queued for sleeping devices, bootstrap requests pending a decision',
        labelNames: ['queue'],
        registers,
        async collect() {
          const d = await timed('queue_depths', () => queues.queueDepths());
          this.set({ queue: 'installs_open' }, d.installsOpen);
          this.set({ queue: 'operations_queued' }, d.operationsQueued);
          this.set({ queue: 'bootstrap_pending' }, d.bootstrapPending);
        },
      });
    }
    if (sources.devices) {
      const devices = sources.devices;
      new Gauge({
        name: 'depot_devices',
        help: 'Devices known by registration state',
        labelNames: ['state'],
        registers,
        async collect() {
          const c = await timed('device_counts', () => devices.counts());
          this.set({ state: 'registered' }, c.registered);
          this.set({ state: 'expired' }, c.devices - c.registered);
        },
      });
    }
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route }, seconds);
    if (status === 401 || status === 403 || status === 429) this.authRefusals.inc({ status: String(status) });
    if (status >= 500) this.errors.inc({ component: 'api' });
  }

  lwm2m(event: 'registered' | 'updated' | 'deregistered' | 'expired'): void {
    this.lwm2mEvents.inc({ event });
  }

  installTransition(job: InstallJob, _from: InstallJobState): void {
    this.installTransitions.inc({ to: job.state });
    if (TERMINAL.has(job.state)) this.installs.inc({ kind: job.kind, method: job.method, result: job.state });
  }

  error(component: string): void {
    this.errors.inc({ component });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
