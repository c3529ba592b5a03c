/**
 * Catalog targets and selection (issue 16): every package states what it is for (platform/OS
 * and version range, make and model patterns, package type, priority); for a device's facts,
 * selection picks the package to install, and `explain` says for each package which rule matched
 * or failed, so an operator sees why a device gets a package or why none fits.
 *
 * Patterns are globs (`*`, `?`), case-insensitive, matched against the whole value. Version
 * ranges compare the dotted numeric part of a version ("13", "10.0.2", "4.19.0-vendor7" → 4.19.0):
 * numerically, missing parts are 0, vendor suffixes and build tags are ignored.
 */
import { printable } from '../util/printable.js';
import type { PackageRecord } from './domain.js';

export interface PackageTargets {
  /** OS or platform name pattern, e.g. "android", "linux*". */
  readonly platform?: string;
  /** Version range of the OS: ">=10 <14", "1.2.x", "=4.19", "*"; `||` between alternatives. */
  readonly osVersion?: string;
  /** Make (manufacturer) patterns: any of them. */
  readonly make?: readonly string[];
  /** Model patterns: any of them. */
  readonly model?: readonly string[];
  /** What kind of package this is ("dpkg", a MIME type, a vendor format); checked against what the device takes when known. */
  readonly packageType?: string;
  /** Higher wins among packages that fit; default 0. */
  readonly priority?: number;
}

/** What selection knows of a device. */
export interface SelectionFacts {
  readonly make: string | null;
  readonly model: string | null;
  readonly os: string | null;
  readonly osVersion: string | null;
  /** Package types the device can take; undefined when unknown (the rule is then not checked). */
  readonly packageTypes?: readonly string[];
}

export type RuleName = 'platform' | 'osVersion' | 'make' | 'model' | 'packageType';

export interface RuleVerdict {
  readonly rule: RuleName;
  readonly ok: boolean;
  readonly detail: string;
}

export interface PackageVerdict {
  readonly sha256: string;
  readonly name: string;
  readonly version: string;
  readonly priority: number;
  readonly fits: boolean;
  readonly rules: readonly RuleVerdict[];
}

export interface Explanation {
  readonly chosen: PackageVerdict | null;
  /** One sentence: why this package, or why none. */
  readonly reason: string;
  /** Every package considered, the chosen one first, then the other fitting ones by rank, then the others. */
  readonly packages: readonly PackageVerdict[];
}

export class SelectionError extends Error {
  override readonly name = 'SelectionError';
}

const MAX_PATTERN = 255;

/** Checks operator-given targets; a problem names the field. */
export function targetsProblem(t: PackageTargets): string | undefined {
  const pattern = (v: unknown, field: string): string | undefined => {
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PATTERN) return `${field} must be a pattern of 1..${MAX_PATTERN} characters`;
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return `${field} contains control characters`;
    return undefined;
  };
  if (t.platform !== undefined && pattern(t.platform, 'platform')) return pattern(t.platform, 'platform');
  if (t.packageType !== undefined && pattern(t.packageType, 'packageType')) return pattern(t.packageType, 'packageType');
  for (const field of ['make', 'model'] as const) {
    const list = t[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0 || list.length > 100) return `${field} must be a list of 1..100 patterns`;
    for (const p of list) {
      const problem = pattern(p, field);
      if (problem) return problem;
    }
  }
  if (t.osVersion !== undefined) {
    const problem = pattern(t.osVersion, 'osVersion');
    if (problem) return problem;
    try {
      parseRange(t.osVersion);
    } catch (error) {
      return (error as Error).message;
    }
  }
  if (t.priority !== undefined && (!Number.isInteger(t.priority) || Math.abs(t.priority) > 1_000_000)) return 'priority must be an integer in -1000000..1000000';
  return undefined;
}

/** A glob (`*`, `?`) as an anchored, case-insensitive RegExp. */
export function globRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'is');
}

/** The dotted numeric part of a version ("Android 13" → [13], "4.19.0-vendor7" → [4, 19, 0]); null when it has none. */
export function versionNumbers(version: string): number[] | null {
  const m = /\d+(?:\.\d+)*/.exec(version);
  return m ? m[0].split('.').map((p) => Number(p.length > 15 ? p.slice(0, 15) : p)) : null;
}

/** Compares dotted numeric versions; missing parts are 0. */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

type Comparator = { op: '<' | '<=' | '>' | '>=' | '='; v: number[] } | { op: 'prefix'; v: number[] } | { op: 'any' };

/** Parses a range: alternatives split by `||`, each a space-separated list of comparators (all must hold). */
export function parseRange(range: string): Comparator[][] {
  return range.split('||').map((alt) => {
    const parts = alt.trim().split(/\s+/).filter((p) => p !== '');
    if (parts.length === 0) throw new SelectionError(`osVersion range "${printable(range, 60)}" has an empty alternative`);
    return parts.map((p): Comparator => {
      if (p === '*' || p === 'x' || p === 'any') return { op: 'any' };
      const m = /^(<=|>=|<|>|=)?(\d+(?:\.\d+)*)(?:\.[x*])?$/.exec(p);
      if (!m) throw new SelectionError(`osVersion range "${printable(range, 60)}": "${printable(p, 30)}" is not a comparator (e.g. >=10, <14.2, =4.19, 1.2.x)`);
      const v = m[2]!.split('.').map(Number);
      // A bare version is a prefix: "13" is any 13.x, "1.2.x" any 1.2.y.
      if (!m[1]) return { op: 'prefix', v };
      return { op: m[1] as '<' | '<=' | '>' | '>=' | '=', v };
    });
  });
}

function comparatorHolds(c: Comparator, v: number[]): boolean {
  switch (c.op) {
    case 'any':
      return true;
    case 'prefix':
      return c.v.every((n, i) => (v[i] ?? 0) === n);
    case '=':
      return compareVersions(v, c.v) === 0;
    case '<':
      return compareVersions(v, c.v) < 0;
    case '<=':
      return compareVersions(v, c.v) <= 0;
    case '>':
      return compareVersions(v, c.v) > 0;
    case '>=':
      return compareVersions(v, c.v) >= 0;
  }
}

export function versionInRange(version: string, range: string): boolean {
  const v = versionNumbers(version);
  if (!v) return false;
  return parseRange(range).some((alt) => alt.every((c) => comparatorHolds(c, v)));
}

/**
 * A package's targets: those set in the catalog, else what an opaque package's upload said
 * (manifest.target: manufacturer, model, os), else none (fits every device).
 */
export function targetsOf(record: PackageRecord, stored: PackageTargets | null): PackageTargets {
  if (stored) return stored;
  const t = record.manifest.target as { manufacturer?: string; model?: string; os?: string } | undefined;
  const type = typeof record.manifest.packageType === 'string' ? record.manifest.packageType : record.manifest.format === 'depot-pkg/1' ? 'dpkg' : undefined;
  return {
    ...(t?.manufacturer ? { make: [t.manufacturer] } : {}),
    ...(t?.model ? { model: [t.model] } : {}),
    ...(t?.os ? { platform: t.os } : {}),
    ...(type ? { packageType: type } : {}),
  };
}

const show = (v: string): string => `"${printable(v, 80)}"`;

function patternRule(rule: RuleName, patterns: readonly string[] | undefined, value: string | null, what: string): RuleVerdict {
  if (!patterns) return { rule, ok: true, detail: `any ${what}` };
  if (value === null) return { rule, ok: false, detail: `the device's ${what} is unknown; the package wants ${patterns.map(show).join(' or ')}` };
  const hit = patterns.find((p) => globRegExp(p).test(value));
  return hit !== undefined ? { rule, ok: true, detail: `${what} ${show(value)} matches ${show(hit)}` } : { rule, ok: false, detail: `${what} ${show(value)} matches none of ${patterns.map(show).join(', ')}` };
}

/** Each rule of one package against one device. */
export function judge(record: PackageRecord, targets: PackageTargets, facts: SelectionFacts): PackageVerdict {
  const rules: RuleVerdict[] = [
    patternRule('platform', targets.platform === undefined ? undefined : [targets.platform], facts.os, 'platform'),
    (() => {
      const range = targets.osVersion;
      if (range === undefined) return { rule: 'osVersion', ok: true, detail: 'any OS version' } as const;
      if (facts.osVersion === null) return { rule: 'osVersion', ok: false, detail: `the device's OS version is unknown; the package wants ${show(range)}` } as const;
      if (!versionNumbers(facts.osVersion)) return { rule: 'osVersion', ok: false, detail: `OS version ${show(facts.osVersion)} has no number to compare with ${show(range)}` } as const;
      const ok = versionInRange(facts.osVersion, range);
      return { rule: 'osVersion', ok, detail: `OS version ${show(facts.osVersion)} (${versionNumbers(facts.osVersion)!.join('.')}) is ${ok ? '' : 'not '}in ${show(range)}` } as const;
    })(),
    patternRule('make', targets.make, facts.make, 'make'),
    patternRule('model', targets.model, facts.model, 'model'),
    (() => {
      const type = targets.packageType;
      if (type === undefined || facts.packageTypes === undefined) return { rule: 'packageType', ok: true, detail: type === undefined ? 'no package type stated' : `package type ${show(type)} (what the device takes is unknown: not checked)` } as const;
      const ok = facts.packageTypes.some((t) => t.toLowerCase() === type.toLowerCase());
      return { rule: 'packageType', ok, detail: `the device ${ok ? 'takes' : 'does not take'} ${show(type)} (it takes ${facts.packageTypes.map(show).join(', ') || 'nothing known'})` } as const;
    })(),
  ];
  return { sha256: record.sha256, name: record.name, version: record.version, priority: targets.priority ?? 0, fits: rules.every((r) => r.ok), rules };
}

/** Ranking among fitting packages: priority, then the higher version, then the newer upload. */
function rank(a: { v: PackageVerdict; r: PackageRecord }, b: { v: PackageVerdict; r: PackageRecord }): number {
  if (a.v.priority !== b.v.priority) return b.v.priority - a.v.priority;
  const va = versionNumbers(a.r.version) ?? [];
  const vb = versionNumbers(b.r.version) ?? [];
  const c = compareVersions(vb, va);
  if (c !== 0) return c;
  return b.r.addedAt - a.r.addedAt || (a.r.sha256 < b.r.sha256 ? -1 : 1);
}

/** Which of `candidates` a device with `facts` gets, and why; the reasons for every other package too. */
export function explainSelection(candidates: readonly { record: PackageRecord; targets: PackageTargets }[], facts: SelectionFacts): Explanation {
  const judged = candidates.map((c) => ({ v: judge(c.record, c.targets, facts), r: c.record }));
  const fitting = judged.filter((j) => j.v.fits).sort(rank);
  const others = judged.filter((j) => !j.v.fits);
  const chosen = fitting[0]?.v ?? null;
  let reason: string;
  if (candidates.length === 0) reason = 'no package in the catalog to choose from';
  else if (!chosen) reason = `none of the ${candidates.length} packages fits this device (see each package's failed rules)`;
  else if (fitting.length === 1) reason = `${chosen.name} ${chosen.version} is the only package that fits`;
  else {
    const next = fitting[1]!.v;
    reason = chosen.priority !== next.priority ? `${chosen.name} ${chosen.version} fits with the highest priority (${chosen.priority}, next ${next.priority})` : `${chosen.name} ${chosen.version} fits with the same priority as ${fitting.length - 1} other(s) and has the highest version (or is the newest upload)`;
  }
  return { chosen, reason, packages: [...fitting.map((j) => j.v), ...others.map((j) => j.v)] };
}

/** The package to install, or null. */
export function select(candidates: readonly { record: PackageRecord; targets: PackageTargets }[], facts: SelectionFacts): PackageVerdict | null {
  return explainSelection(candidates, facts).chosen;
}

/** A device record's selection facts (imported devices: what the list expected). */
export function selectionFactsOf(device: { make: string | null; model: string | null; os: string | null; osVersion: string | null; expectedMake?: string | null; expectedModel?: string | null }): SelectionFacts {
  return { make: device.make ?? device.expectedMake ?? null, model: device.model ?? device.expectedModel ?? null, os: device.os, osVersion: device.osVersion };
}
