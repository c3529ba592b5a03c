/**
 * `depot ca init | issue | export`: the operator's side of Depot's certificate authority.
 *
 * `runCaCommand` takes the arguments after `ca` (for `depot ca issue --device x`
 * it receives ["issue", "--device", "x"]) and resolves to the exit code:
 *   0 success, 1 the operation failed (message on stderr), 2 usage error.
 * Key material is written to files only, never printed.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { CertificateAuthority, DEFAULT_CA_COMMON_NAME, DEFAULT_CA_VALIDITY_DAYS, type IssuedCertificate } from '../pki/ca.js';
import { PkiError } from '../pki/errors.js';
import { CERT_FILE_MODE, KEY_FILE_MODE, ensurePrivateDir, exists, writeFileAtomic } from '../pki/files.js';

export const DEFAULT_DATA_DIR = './depot-data';

/** Where the command writes; tests pass their own. */
export interface CaCommandIo {
  stdout(data: string | Uint8Array): void;
  stderr(text: string): void;
  /** Whether stdout is a terminal (binary DER is not written to one). */
  stdoutIsTTY: boolean;
}

const processIo: CaCommandIo = {
  stdout: (data) => void process.stdout.write(data),
  stderr: (text) => void process.stderr.write(text),
  get stdoutIsTTY() {
    return process.stdout.isTTY === true;
  },
};

const USAGE = `Usage: depot ca <command> [options]

Commands:
  init     create the root CA in <data-dir>/ca/
             --name <cn>        subject CN of the root (default "${DEFAULT_CA_COMMON_NAME}")
             --org <o>          subject O of the root (optional)
             --days <n>         validity in days (default ${DEFAULT_CA_VALIDITY_DAYS})
  issue    issue a certificate signed by the CA
             --device <endpoint>          device certificate, CN = LwM2M endpoint name (clientAuth)
             --server <dns-or-ip>...      server certificate with these SANs (serverAuth);
                                          repeat --server or list the names after it
             --csr <file>                 sign this PKCS#10 request (PEM or DER) instead of
                                          generating a key pair
             --out <dir>                  where to write <name>.crt and <name>.key
                                          (default <data-dir>/issued)
             --days <n>                   validity in days (default 365)
             --force                      overwrite existing output files
  export   write the root certificate
             --format pem|der   (default pem)
             --out <file>       (default: standard output)

Common options:
  --data-dir <dir>   Depot data directory (default ${DEFAULT_DATA_DIR})
  -h, --help         show this help

Exit codes: 0 success, 1 operation failed, 2 usage error.
`;

class UsageError extends Error {}

export async function runCaCommand(argv: string[], io: CaCommandIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'init':
        return await init(rest, io);
      case 'issue':
        return await issue(rest, io);
      case 'export':
        return await exportRoot(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        if (command === undefined) {
          io.stderr(USAGE);
          return 2;
        }
        return help(io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr(`depot ca: ${(err as Error).message}\nRun "depot ca --help" for usage.\n`);
      return 2;
    }
    if (err instanceof PkiError) {
      io.stderr(`depot ca: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (typeof e?.code === 'string' && typeof e.message === 'string') {
      // File-system errors: the message names the path and the reason.
      io.stderr(`depot ca: ${e.message}\n`);
      return 1;
    }
    io.stderr(`depot ca: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

const common = {
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function caDir(dataDir: string): string {
  return join(resolve(dataDir), 'ca');
}

function parseDays(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--days must be a positive whole number of days (got "${value}")`);
  return Number(value);
}

async function init(args: string[], io: CaCommandIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, name: { type: 'string' }, org: { type: 'string' }, days: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return help(io);
  const dir = caDir(values['data-dir']);
  const ca = await CertificateAuthority.init(dir, {
    commonName: values.name,
    organization: values.org,
    validityDays: parseDays(values.days),
  });
  const cert = ca.certificate;
  io.stdout(
    `Created the CA in ${dir}\n` +
      `  subject:     ${cert.subject.replace(/\n/g, ', ')}\n` +
      `  serial:      ${cert.serialNumber}\n` +
      `  valid until: ${ca.notAfter.toISOString()}\n` +
      `  SHA-256:     ${cert.fingerprint256}\n` +
      `The private key is ${join(dir, 'ca.key')} (mode 0600): back it up and keep it secret.\n`,
  );
  return 0;
}

async function issue(args: string[], io: CaCommandIo): Promise<number> {
  const { values, positionals, tokens } = parseArgs({
    args,
    tokens: true,
    options: {
      ...common,
      device: { type: 'string' },
      server: { type: 'string', multiple: true },
      csr: { type: 'string' },
      out: { type: 'string' },
      days: { type: 'string' },
      force: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) return help(io);
  const servers = values.server ?? [];
  if (values.device !== undefined && servers.length > 0) throw new UsageError('give either --device or --server, not both');
  if (values.device === undefined && servers.length === 0) throw new UsageError('issue needs --device <endpoint> or --server <dns-or-ip>');
  if (positionals.length > 0 && servers.length === 0) {
    throw new UsageError(`unexpected argument${positionals.length > 1 ? 's' : ''}: ${positionals.join(' ')}`);
  }
  const validityDays = parseDays(values.days);

  let csr: Buffer | undefined;
  if (values.csr !== undefined) csr = await readFile(values.csr);

  const outDir = resolve(values.out ?? join(values['data-dir'], 'issued'));
  const baseName = fileNameFor(values.device ?? servers[0]!);
  const certPath = join(outDir, `${baseName}.crt`);
  const keyPath = join(outDir, `${baseName}.key`);
  const ca = await CertificateAuthority.load(caDir(values['data-dir']));
  if (!values.force) {
    for (const path of csr ? [certPath] : [certPath, keyPath]) {
      if (await exists(path)) throw new PkiError('FILE_EXISTS', `${path} already exists (use --force to replace it)`);
    }
  }
  let issued: IssuedCertificate;
  let kind: string;
  if (values.device !== undefined) {
    issued = await ca.issueDeviceCertificate({ endpoint: values.device, csr, validityDays });
    kind = `device certificate for endpoint ${JSON.stringify(values.device)}`;
  } else {
    // In command-line order, so the first name given becomes the CN.
    const names: string[] = [];
    for (const t of tokens) {
      if (t.kind === 'positional' || (t.kind === 'option' && t.name === 'server' && t.value !== undefined)) names.push(t.value);
    }
    issued = await ca.issueServerCertificate({ names, csr, validityDays });
    kind = `server certificate for ${names.join(', ')}`;
  }

  // The output directory may receive a private key: create it private. An existing
  // directory (perhaps the working directory) keeps its mode.
  if (!(await exists(outDir))) await ensurePrivateDir(outDir);
  const exclusive = !values.force;
  if (issued.privateKeyPem !== undefined) {
    await writeFileAtomic(keyPath, issued.privateKeyPem, { mode: KEY_FILE_MODE, exclusive });
  }
  await writeFileAtomic(certPath, issued.certificatePem, { mode: CERT_FILE_MODE, exclusive });

  io.stdout(
    `Issued a ${kind}\n` +
      `  certificate: ${certPath}\n` +
      (issued.privateKeyPem !== undefined ? `  private key: ${keyPath} (mode 0600)\n` : '') +
      `  subject:     ${issued.subject.replace(/\n/g, ', ') || '(empty, names in subjectAltName)'}\n` +
      `  serial:      ${issued.serialNumber}\n` +
      `  valid:       ${issued.notBefore.toISOString()} to ${issued.notAfter.toISOString()}\n` +
      `  SHA-256:     ${issued.fingerprint256}\n`,
  );
  return 0;
}

async function exportRoot(args: string[], io: CaCommandIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, format: { type: 'string', default: 'pem' }, out: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return help(io);
  const format = values.format.toLowerCase();
  if (format !== 'pem' && format !== 'der') throw new UsageError(`--format must be pem or der (got "${values.format}")`);
  if (format === 'der' && values.out === undefined && io.stdoutIsTTY) {
    throw new UsageError('refusing to write binary DER to a terminal; use --out <file> or redirect the output');
  }
  const ca = await CertificateAuthority.load(caDir(values['data-dir']));
  const data = ca.exportRoot(format);
  if (values.out === undefined) {
    io.stdout(data);
  } else {
    const out = resolve(values.out);
    await writeFileAtomic(out, data, { mode: CERT_FILE_MODE });
    io.stderr(`Wrote the root certificate (${format.toUpperCase()}) to ${out}\n`);
  }
  return 0;
}

function help(io: CaCommandIo): number {
  io.stdout(USAGE);
  return 0;
}

/**
 * A file name for an endpoint or host name: characters outside [A-Za-z0-9._-]
 * become "_" (so "urn:imei:35..." gives "urn_imei_35..."), never starting with a dot.
 */
export function fileNameFor(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return safe.length > 0 ? safe.slice(0, 128) : '_';
}
