/**
 * Import of a device list (CSV) for devices Depot has never seen, so they can be bootstrapped
 * and targeted by campaigns: `phone, imei, make, model, group` (a header line names the columns,
 * in any order; `msisdn`/`phone_number`, `manufacturer`, `groups` are accepted too; several groups
 * are separated by `;`). Read as a stream, line by line; each row is checked on its own and a bad
 * row is reported with its line number and why, the good ones are kept. Idempotent: a device is
 * found again by its IMEI or phone number, so importing the same list twice changes nothing.
 */
import { printable } from '../util/printable.js';
import { labelProblem } from '../store/sqlite/inventory.js';
import { cleanFact, imeiProblem, normalizeMsisdn } from './inventory.js';
import type { DeviceIdentities, DevicePatch, InventoryRepository, UpsertOptions } from './inventory-types.js';

export interface ImportLineError {
  readonly line: number;
  readonly message: string;
}

export interface ImportReport {
  /** Data rows read (blank lines and the header not counted). */
  readonly rows: number;
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly failed: number;
  /** The first `maxErrors` bad rows. */
  readonly errors: readonly ImportLineError[];
}

export class ImportError extends Error {
  override readonly name = 'ImportError';
}

const COLUMN_ALIASES: Record<string, 'msisdn' | 'imei' | 'make' | 'model' | 'group'> = {
  phone: 'msisdn',
  phone_number: 'msisdn',
  msisdn: 'msisdn',
  imei: 'imei',
  make: 'make',
  manufacturer: 'make',
  expected_make: 'make',
  model: 'model',
  expected_model: 'model',
  group: 'group',
  groups: 'group',
};

const MAX_LINE = 4096;
const BATCH = 500;

/** Splits one CSV line (RFC 4180 quoting, no line breaks inside fields); a string is a problem. */
export function splitCsvLine(line: string): string[] | string {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) return 'a quoted field is not closed on its line';
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i === line.length) return fields;
      if (line[i] !== ',') return 'text after a closing quote';
      i++;
    } else {
      const comma = line.indexOf(',', i);
      if (comma < 0) {
        fields.push(line.slice(i));
        return fields;
      }
      fields.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
}

/** Lines of a byte or text stream (\n or \r\n), decoded as UTF-8 (invalid UTF-8 is an ImportError). */
async function* lines(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let rest = '';
  let lineNo = 0;
  const decode = (chunk: Uint8Array | string, stream: boolean): string => {
    if (typeof chunk === 'string') return chunk;
    try {
      return decoder.decode(chunk, { stream });
    } catch {
      throw new ImportError(`the file is not UTF-8 text (near line ${lineNo + 1})`);
    }
  };
  for await (const chunk of source) {
    rest += decode(chunk, true);
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      lineNo++;
      yield rest.slice(0, nl).replace(/\r$/, '');
      rest = rest.slice(nl + 1);
    }
    // A line longer than any device row: refused (a binary file, or an attack on memory).
    if (rest.length > MAX_LINE) throw new ImportError(`line ${lineNo + 1} is longer than ${MAX_LINE} characters`);
  }
  rest += decode(new Uint8Array(0), false);
  if (rest.length > 0) yield rest.replace(/\r$/, '');
}

interface Row {
  identities: Partial<DeviceIdentities>;
  patch: DevicePatch;
  options: UpsertOptions;
}

/** One data row checked: the upsert, or why the row is refused. */
function parseRow(fields: string[], columns: ('msisdn' | 'imei' | 'make' | 'model' | 'group' | undefined)[]): Row | string {
  if (fields.length > columns.length) return `${fields.length} fields, the header has ${columns.length}`;
  const value: Partial<Record<'msisdn' | 'imei' | 'make' | 'model' | 'group', string>> = {};
  columns.forEach((c, i) => {
    const v = fields[i]?.trim();
    if (c && v) value[c] = v;
  });
  const identities: { imei?: string; msisdn?: string } = {};
  if (value.imei !== undefined) {
    const problem = imeiProblem(value.imei);
    if (problem) return problem;
    identities.imei = value.imei;
  }
  if (value.msisdn !== undefined) {
    const n = normalizeMsisdn(value.msisdn);
    if ('problem' in n) return n.problem;
    identities.msisdn = n.msisdn;
  }
  if (!identities.imei && !identities.msisdn) return 'neither a phone number nor an IMEI: a device is found by one of them';
  for (const [name, v] of [['make', value.make], ['model', value.model]] as const) {
    // eslint-disable-next-line no-control-regex
    if (v !== undefined && (v.length > 255 || /[\u0000-\u001f\u007f-\u009f]/.test(v))) return `${name} "${printable(v, 40)}" is longer than 255 characters or has control characters`;
  }
  const groups = value.group === undefined ? [] : value.group.split(';').map((g) => g.trim()).filter((g) => g !== '');
  for (const g of groups) {
    const problem = labelProblem(g);
    if (problem) return `group "${printable(g, 70)}": ${problem}`;
  }
  const patch: { expectedMake?: string | null; expectedModel?: string | null } = {};
  if (value.make !== undefined) patch.expectedMake = cleanFact(value.make) ?? null;
  if (value.model !== undefined) patch.expectedModel = cleanFact(value.model) ?? null;
  return { identities, patch, options: { source: 'import', create: 'imported', labels: { groups } } };
}

/**
 * Imports a CSV device list, streamed; rows are written in batches (one transaction per 500
 * rows). Throws ImportError when the file itself is unusable (no header naming a phone or IMEI
 * column, not UTF-8, a huge line); a bad row only costs that row.
 */
export async function importDeviceCsv(repository: InventoryRepository, source: AsyncIterable<Uint8Array | string>, options: { now?: () => number; maxErrors?: number } = {}): Promise<ImportReport> {
  const now = options.now ?? Date.now;
  const maxErrors = options.maxErrors ?? 1000;
  const errors: ImportLineError[] = [];
  let columns: ('msisdn' | 'imei' | 'make' | 'model' | 'group' | undefined)[] | undefined;
  let rows = 0;
  let failed = 0;
  let created = 0;
  let updated = 0;
  let unchanged = 0;
  let batch: { line: number; row: Row }[] = [];
  const fail = (line: number, message: string): void => {
    failed++;
    if (errors.length < maxErrors) errors.push({ line, message });
  };
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const results = await repository.upsertMany(batch.map((b) => b.row), now());
    results.forEach((r, i) => {
      if (r instanceof Error) fail(batch[i]!.line, r.message);
      else if (r?.created) created++;
      else if (r?.changed) updated++;
      else unchanged++;
    });
    batch = [];
  };
  let lineNo = 0;
  for await (const raw of lines(source)) {
    lineNo++;
    const line = lineNo === 1 ? raw.replace(/^\ufeff/, '') : raw;
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = splitCsvLine(line);
    if (!columns) {
      if (typeof fields === 'string') throw new ImportError(`line ${lineNo}: the header: ${fields}`);
      columns = fields.map((f) => COLUMN_ALIASES[f.trim().toLowerCase().replace(/[\s-]+/g, '_')]);
      if (!columns.includes('msisdn') && !columns.includes('imei')) throw new ImportError(`line ${lineNo}: the header names no phone (phone, msisdn) or imei column: ${printable(line, 120)}`);
      continue;
    }
    rows++;
    if (typeof fields === 'string') {
      fail(lineNo, fields);
      continue;
    }
    const row = parseRow(fields, columns);
    if (typeof row === 'string') fail(lineNo, row);
    else batch.push({ line: lineNo, row });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  if (!columns) throw new ImportError('the file is empty: a header line (phone,imei,make,model,group) and one row per device are expected');
  return { rows, created, updated, unchanged, failed, errors };
}
