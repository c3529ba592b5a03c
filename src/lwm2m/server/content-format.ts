/**
 * Which content format Depot uses with one device (issue 13), in order:
 *   1. the operator's explicit choice (the API's format / contentFormat);
 *   2. what the device announced in its Register root link `ct` (TS Core 1.1 §6.2.1: one
 *      value; TS Core 1.2 §6.2.1: a quoted list);
 *   3. what Depot learned from its earlier answers: a 4.06 Not Acceptable (Accept) or 4.15
 *      Unsupported Content-Format (RFC 7252 §5.9.2.9, §5.10.4) marks a format refused, and the
 *      request is sent once more in the next candidate; the format that worked is remembered
 *      (kept in the store per endpoint: it survives a restart and a re-registration);
 *   4. the version's mandatory formats: 1.0 TLV (TS Core 1.0 §6.4); 1.1 / 1.2 TLV or SenML JSON
 *      (TS Core 1.1 §7.4), Depot trying SenML CBOR first on a device that announced nothing
 *      (what it always did); single resources may be text/plain (TS Core 1.1 §7.3).
 * A format the device refused is never sent to it again (until it registers with another ct).
 * Pure functions; the learned state lives in the store (settings 'lwm2m.formatsByEndpoint').
 */
import { linkAttrs, linkParamText, parseLinkFormat } from '../../coap/linkformat.js';
import { ContentFormat } from '../content/index.js';

/** Formats Depot can encode and decode for a structured (object / instance / resource) payload. */
const STRUCTURED: readonly number[] = [ContentFormat.SenmlCbor, ContentFormat.SenmlJson, ContentFormat.Lwm2mCbor, ContentFormat.Tlv];

export interface AnnouncedFormats {
  /** The ct values of the root link Depot can use, in the device's order (empty: none announced). */
  formats: number[];
  /** Why the ct attribute was ignored or partly ignored (malformed, unknown numbers), for the operator. */
  problem?: string;
}

/** What a device learned to take: the format that last worked, and those it refused. */
export interface LearnedFormats {
  format?: number;
  refused: number[];
}

/** The `ct` of the Register root link (`</>;rt="oma.lwm2m";ct=…` or `</>;ct=…`): one value, a quoted list, or several ct attributes. */
export function announcedFormats(objectLinks: string): AnnouncedFormats {
  let links;
  try {
    links = parseLinkFormat(objectLinks, { allowWhitespace: true });
  } catch {
    return { formats: [] };
  }
  const root = links.find((l) => l.params.some((p) => p.name === 'rt' && linkParamText(p.value) === 'oma.lwm2m')) ?? links.find((l) => l.target === '/');
  if (!root) return { formats: [] };
  const values = linkAttrs(root, 'ct').flatMap((v) => linkParamText(v).trim().split(/\s+/).filter((t) => t !== ''));
  const formats: number[] = [];
  const unknown: string[] = [];
  for (const v of values) {
    const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
    if (Number.isInteger(n) && n <= 65535 && (STRUCTURED.includes(n) || n === ContentFormat.PlainText || n === ContentFormat.Opaque)) {
      if (!formats.includes(n)) formats.push(n);
    } else unknown.push(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  }
  const out: AnnouncedFormats = { formats };
  if (unknown.length > 0) out.problem = `ct values Depot does not use or cannot read were ignored: ${unknown.map((u) => JSON.stringify(u)).join(', ')}`;
  return out;
}

/**
 * The formats to try, best first, for a request of `path` depth (3+: a single resource or
 * instance) to a device of `version`, given what it announced and what Depot learned.
 */
export function candidateFormats(version: string, announced: readonly number[], learned: LearnedFormats | undefined, singleResource: boolean): number[] {
  const refused = new Set(learned?.refused ?? []);
  const structuredAnnounced = announced.filter((f) => STRUCTURED.includes(f));
  let base: number[];
  if (structuredAnnounced.length > 0) {
    // Depot's order among what the device announced; what it did not announce is not sent.
    base = STRUCTURED.filter((f) => structuredAnnounced.includes(f));
  } else if (version === '1.0') {
    base = [ContentFormat.Tlv];
  } else {
    // Announced nothing: SenML CBOR first (Depot's default since 1.1), then the mandatory TLV / SenML JSON.
    base = [ContentFormat.SenmlCbor, ContentFormat.Tlv, ContentFormat.SenmlJson];
    if (version === '1.2') base.splice(1, 0, ContentFormat.Lwm2mCbor);
  }
  if (singleResource) base.push(ContentFormat.PlainText);
  const learnedFirst = learned?.format !== undefined && base.includes(learned.format) ? [learned.format, ...base.filter((f) => f !== learned.format)] : base;
  return learnedFirst.filter((f) => !refused.has(f));
}

/** A 4.06 / 4.15 answer: the device does not take this format. */
export function refusesFormat(code: string): boolean {
  return code === '4.06' || code === '4.15';
}

/** Where what was learned is kept: a key of the device's facts (`extra`), one row per device. */
export const LEARNED_FORMATS_FACT = 'lwm2m.formats';

/** What was stored under LEARNED_FORMATS_FACT, if it has the expected shape (anything else is ignored). */
export function learnedFormatsFrom(value: unknown): LearnedFormats | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { format, refused } = value as { format?: unknown; refused?: unknown };
  if (!Array.isArray(refused) || !refused.every((f) => Number.isInteger(f))) return undefined;
  return { ...(Number.isInteger(format) ? { format: format as number } : {}), refused: refused as number[] };
}
