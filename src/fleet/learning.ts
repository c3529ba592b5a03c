/**
 * Per-model learning for the install chain (issue 16): success and failure counts per (make,
 * model, OS version, method) with the last reasons, kept in the store and updated at the end of
 * every attempt; from them, the chain for a new job on that model:
 *
 * 1. methods the operator pinned for the model come first; methods forbidden for it are skipped;
 * 2. the others are ordered by their record, best first: the success rate with one success and
 *    one failure assumed ((s + 1) / (s + f + 2)), so an untried method (0.5) goes after one that
 *    worked and before one that keeps failing; ties keep the default order;
 * 3. a method that never worked on the model after `skipAfter` tries is skipped, except that now
 *    and then (`probeRate`, drawn from a seeded generator, so tests are deterministic) it is tried
 *    anyway, last among the active ones, to notice a firmware update that fixed the model;
 *    (skipped methods are listed first in the job's chain: never tried, their reason is the first
 *    thing the job's history says);
 * 4. "last resort" methods (Mark for Installation: it waits for the device rather than acting)
 *    stay at the end whatever their record.
 *
 * Counts for the device's OS version are used when the method has any there; otherwise the
 * model's counts over every OS version. A device whose make and model are unknown gets the
 * default order (nothing is recorded for it either).
 */
import type { DeviceFacts } from '../store/types.js';
import type { ChainPlan, MethodRule, MethodStats, MethodStatsRepository, ModelKey } from './domain.js';
import { seededRandom } from '../util/seeded-random.js';

export interface LearningOptions {
  stats: MethodStatsRepository;
  deviceFacts: { get(endpoint: string): Promise<DeviceFacts | null> };
  /** Failures without any success after which a method is skipped for the model. Default 5. */
  skipAfter?: number;
  /** Chance (0..1) that a method past skipAfter is tried anyway. Default 0.1. */
  probeRate?: number;
  /** Seed of the probe draws (same seed, same draws). Default: random. */
  seed?: number;
  /** Kept at the end of a learned chain, in the default order. Default ['mark']. */
  lastResort?: readonly string[];
  now?: () => number;
}

/** What the chain driver asks of learning (ChainDriverOptions.learning). */
export interface ChainPlanner {
  /** The chain for a new job on this device when the operator gave none. */
  plan(endpoint: string, defaultChain: readonly string[]): Promise<{ methods: string[]; plan: ChainPlan }>;
  /**
   * The model an attempt's end counts for (undefined: it teaches nothing). The chain hands it to
   * ChainJobRepository.endAttempt, which counts the outcome in the same transaction.
   */
  modelOf(endpoint: string): Promise<ModelKey | undefined>;
}

/** The model of a device as learning keys it, or undefined when its make and model are unknown. */
export function modelKeyOf(facts: Pick<DeviceFacts, 'manufacturer' | 'modelNumber' | 'osVersion'> | null): ModelKey | undefined {
  if (!facts || (!facts.manufacturer && !facts.modelNumber)) return undefined;
  return { make: facts.manufacturer ?? '', model: facts.modelNumber ?? '', osVersion: facts.osVersion ?? '' };
}


export interface MethodRecord {
  readonly successes: number;
  readonly failures: number;
}

/** The counts that decide for each method: the OS version's when it has any, else the model's. */
export function recordsFor(stats: readonly MethodStats[], osVersion: string): Map<string, MethodRecord> {
  const exact = new Map<string, MethodRecord>();
  const model = new Map<string, MethodRecord>();
  for (const s of stats) {
    const m = model.get(s.method) ?? { successes: 0, failures: 0 };
    model.set(s.method, { successes: m.successes + s.successes, failures: m.failures + s.failures });
    if (s.osVersion === osVersion) exact.set(s.method, { successes: s.successes, failures: s.failures });
  }
  for (const [method, r] of model) if (!exact.has(method)) exact.set(method, r);
  return exact;
}

const score = (r: MethodRecord | undefined): number => (r ? (r.successes + 1) / (r.successes + r.failures + 2) : 0.5);

export interface OrderInput {
  defaultChain: readonly string[];
  records: ReadonlyMap<string, MethodRecord>;
  rules: readonly MethodRule[];
  skipAfter: number;
  probeRate: number;
  lastResort: readonly string[];
  random: () => number;
  /** For the reasons, e.g. "Acme X1 (OS 2.1)". */
  modelName: string;
}

/** The learned chain (pure: everything it depends on is in the input). */
export function learnedOrder(input: OrderInput): { methods: string[]; skip: Record<string, string>; notes: string[] } {
  const rule = new Map(input.rules.map((r) => [r.method, r.rule]));
  const skip: Record<string, string> = {};
  const notes: string[] = [];
  const pinned: string[] = [];
  const ranked: { name: string; score: number; index: number; probe: boolean }[] = [];
  const last: string[] = [];
  /** Listed first: not tried, but the job's history says why at once. */
  const skipped: string[] = [];
  input.defaultChain.forEach((name, index) => {
    const r = input.records.get(name);
    const counts = r ? `${r.successes} of ${r.successes + r.failures} succeeded` : 'untried';
    if (rule.get(name) === 'forbid') {
      skip[name] = `forbidden on ${input.modelName} by the operator`;
      skipped.push(name);
      return;
    }
    if (rule.get(name) === 'pin') {
      pinned.push(name);
      notes.push(`${name} pinned by the operator`);
      return;
    }
    let probe = false;
    if (r && r.successes === 0 && r.failures >= input.skipAfter) {
      if (input.random() < input.probeRate) {
        probe = true;
        notes.push(`${name} probed (never worked in ${r.failures} tries; tried again in case a firmware update fixed it)`);
      } else {
        skip[name] = `never worked on ${input.modelName} in ${r.failures} tries (learned; probed now and then)`;
        skipped.push(name);
        return;
      }
    } else if (r) {
      notes.push(`${name}: ${counts}`);
    }
    if (input.lastResort.includes(name)) last.push(name);
    else ranked.push({ name, score: probe ? -1 : score(r), index, probe });
  });
  ranked.sort((a, b) => b.score - a.score || a.index - b.index);
  return { methods: [...skipped, ...pinned, ...ranked.map((m) => m.name), ...last], skip, notes };
}

/** Learning over the store (the ChainPlanner the chain driver uses in `depot serve`). */
export class MethodLearning implements ChainPlanner {
  private readonly random: () => number;
  private readonly skipAfter: number;
  private readonly probeRate: number;
  private readonly lastResort: readonly string[];
  private readonly now: () => number;

  constructor(private readonly options: LearningOptions) {
    this.random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.skipAfter = options.skipAfter ?? 5;
    this.probeRate = options.probeRate ?? 0.1;
    this.lastResort = options.lastResort ?? ['mark'];
    this.now = options.now ?? Date.now;
    if (!Number.isInteger(this.skipAfter) || this.skipAfter < 1) throw new RangeError('skipAfter must be a positive integer');
    if (!(this.probeRate >= 0 && this.probeRate <= 1)) throw new RangeError('probeRate must be in 0..1');
  }

  async modelOf(endpoint: string): Promise<ModelKey | undefined> {
    return modelKeyOf(await this.options.deviceFacts.get(endpoint));
  }

  async plan(endpoint: string, defaultChain: readonly string[]): Promise<{ methods: string[]; plan: ChainPlan }> {
    const key = await this.modelOf(endpoint);
    if (!key) return { methods: [...defaultChain], plan: { chosenBy: 'default', skip: {}, note: 'the device\'s make and model are unknown: default order' } };
    const [stats, rules] = await Promise.all([this.options.stats.list({ make: key.make, model: key.model }), this.options.stats.rules(key.make, key.model)]);
    const modelName = `${key.make} ${key.model}${key.osVersion ? ` (OS ${key.osVersion})` : ''}`.trim();
    if (stats.length === 0 && rules.length === 0) return { methods: [...defaultChain], plan: { chosenBy: 'default', skip: {}, note: `nothing learned yet for ${modelName}: default order` } };
    const order = learnedOrder({ defaultChain, records: recordsFor(stats, key.osVersion), rules, skipAfter: this.skipAfter, probeRate: this.probeRate, lastResort: this.lastResort, random: this.random, modelName });
    return { methods: order.methods, plan: { chosenBy: 'learned', skip: order.skip, note: `learned for ${modelName}${order.notes.length ? `: ${order.notes.join('; ')}` : ''}` } };
  }

  /** The learned table (every model, or one) with the operator's rules. */
  async table(filter: { make?: string; model?: string } = {}): Promise<{ stats: MethodStats[]; rules: MethodRule[] }> {
    const stats = await this.options.stats.list(filter);
    const rules = filter.make !== undefined && filter.model !== undefined ? await this.options.stats.rules(filter.make, filter.model) : (await this.options.stats.allRules()).filter((r) => (filter.make === undefined || r.make === filter.make) && (filter.model === undefined || r.model === filter.model));
    return { stats, rules };
  }
}
