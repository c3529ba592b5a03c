/**
 * `depot package keygen|build|inspect`: make signing keys, build signed Depot packages from
 * a directory, and look inside one (manifest, entries, signature against trusted keys).
 */
import { generateKeyPairSync, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { CERT_FILE_MODE, KEY_FILE_MODE, writeFileAtomic } from '../pki/files.js';
import { SCRIPT_NAMES, buildPackage, scanPackageFile, trustStore, verifyStaged, type ArchiveInput, type Manifest, type ScriptName, type TrustStore } from '../pkg/index.js';

const USAGE = `usage: depot package <keygen|build|inspect> ...
  depot package keygen <key-id> [--out <dir>]
      an Ed25519 signing key: <dir>/<key-id>.key.pem (mode 0600, keep it secret) and
      <dir>/<key-id>.pub.pem (give it to devices and to "depot serve --package-trust")
  depot package build <dir> --name <name> --version <version> --key <id.key.pem> --out <file.dpkg>
                      [--key-id <id>] [--script install=<path-in-dir>] ...
      packs every file and directory under <dir> (modes kept) and signs the manifest;
      scripts: ${SCRIPT_NAMES.join(', ')} (run with /bin/sh on the device)
  depot package inspect <file.dpkg> [--trust <id.pub.pem|id=file.pem>] ...
      prints the manifest and entries, and verifies the package when keys are given (exit 1 if it fails)`;

/** A key id from a file named "<id>.key.pem" / "<id>.pub.pem" (or the name without extension). */
function keyIdOfFile(file: string): string {
  return basename(file).replace(/\.(key|pub)\.pem$/, '').replace(/\.pem$/, '');
}

/**
 * Trusted package signing keys from "<id>=<file.pem>" or "<file>" specs (the id is then the
 * file name without .pub.pem). Throws with the offending spec.
 */
export async function loadPackageTrust(specs: readonly string[]): Promise<TrustStore> {
  const keys: Record<string, KeyObject> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const [id, file] = eq > 0 ? [spec.slice(0, eq), spec.slice(eq + 1)] : [keyIdOfFile(spec), spec];
    let key: KeyObject;
    try {
      key = createPublicKey(await readFile(file, 'utf8'));
    } catch (error) {
      throw new Error(`trusted key ${spec}: ${(error as Error).message}`, { cause: error });
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`trusted key ${spec}: an Ed25519 public key is needed, got ${key.asymmetricKeyType ?? 'unknown'}`);
    keys[id] = key;
  }
  return trustStore(keys);
}

async function collectFiles(root: string): Promise<ArchiveInput[]> {
  const out: ArchiveInput[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const full = join(dir, e.name);
      const path = relative(root, full).split('\\').join('/');
      if (e.isDirectory()) {
        out.push({ path, type: 'dir', mode: (await stat(full)).mode & 0o7777 });
        await walk(full);
      } else if (e.isFile()) {
        out.push({ path, data: await readFile(full), mode: (await stat(full)).mode & 0o7777 });
      } else {
        throw new Error(`${full}: only regular files and directories can be packaged`);
      }
    }
  };
  await walk(root);
  return out;
}

async function keygen(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string', default: '.' } } });
  const id = positionals[0];
  if (!id || positionals.length > 1 || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new UsageError('keygen takes one key id (letters, digits, . _ -)');
  await mkdir(values.out, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = join(values.out, `${id}.key.pem`);
  const pubFile = join(values.out, `${id}.pub.pem`);
  // exclusive: a signing key is never overwritten.
  await writeFileAtomic(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: KEY_FILE_MODE, exclusive: true });
  await writeFileAtomic(pubFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: CERT_FILE_MODE });
  process.stdout.write(`signing key ${keyFile} (secret)\npublic key  ${pubFile}\nkey id      ${id}\n`);
  return 0;
}

async function build(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: 'string' }, version: { type: 'string' }, key: { type: 'string' }, 'key-id': { type: 'string' }, out: { type: 'string' }, script: { type: 'string', multiple: true } },
  });
  const dir = positionals[0];
  if (!dir || positionals.length > 1) throw new UsageError('build takes one directory');
  if (!values.name || !values.version || !values.key || !values.out) throw new UsageError('build needs --name, --version, --key and --out');
  const scripts: Partial<Record<ScriptName, string>> = {};
  for (const spec of values.script ?? []) {
    const [name, path] = spec.split('=', 2) as [string, string | undefined];
    if (!(SCRIPT_NAMES as readonly string[]).includes(name) || !path) throw new UsageError(`--script ${spec}: expected <${SCRIPT_NAMES.join('|')}>=<path in the directory>`);
    scripts[name as ScriptName] = path;
  }
  const privateKey = createPrivateKey(await readFile(values.key, 'utf8'));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${values.key}: an Ed25519 private key is needed`);
  const files = await collectFiles(dir);
  for (const [name, path] of Object.entries(scripts)) {
    if (!files.some((f) => f.path === path && f.type !== 'dir')) throw new Error(`--script ${name}=${path}: no such file in ${dir}`);
  }
  const bytes = buildPackage({
    name: values.name,
    version: values.version,
    files,
    ...(Object.keys(scripts).length > 0 ? { scripts } : {}),
    signer: { keyId: values['key-id'] ?? keyIdOfFile(values.key), privateKey },
  });
  await writeFile(values.out, bytes);
  process.stdout.write(`${values.out}: ${values.name} ${values.version}, ${files.length} entries, ${bytes.length} bytes\n`);
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { trust: { type: 'string', multiple: true } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('inspect takes one package file');
  const staged = await scanPackageFile(file);
  if (!staged.header?.ok) {
    process.stdout.write(`${file}: not a Depot package: ${staged.header ? staged.header.detail : 'truncated header'}\n`);
    return 1;
  }
  const m = JSON.parse(staged.header.manifestJson) as Partial<Manifest>;
  process.stdout.write(`${String(m.name)} ${String(m.version)}\n  key id   ${String(m.keyId)}\n  payload  ${String(m.size)} bytes, sha256 ${String(m.sha256)}\n`);
  for (const [k, v] of Object.entries(m.scripts ?? {})) process.stdout.write(`  script   ${k}: ${v}\n`);
  if (!values.trust?.length) {
    process.stdout.write('signature: not checked (give --trust)\n');
    return 0;
  }
  const verdict = await verifyStaged(staged, await loadPackageTrust(values.trust));
  if (!verdict.ok) {
    process.stdout.write(`NOT VALID: ${verdict.reason} (${verdict.detail})\n`);
    return 1;
  }
  for (const e of verdict.entries) process.stdout.write(`  ${e.type === 'dir' ? 'd' : '-'} ${e.mode.toString(8).padStart(4, '0')} ${String(e.size).padStart(10)} ${e.path}\n`);
  process.stdout.write('signature: valid\n');
  return 0;
}

class UsageError extends Error {}

export async function runPackageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE + '\n');
    return sub ? 0 : 2;
  }
  const commands: Record<string, (a: string[]) => Promise<number>> = { keygen, build, inspect };
  const command = commands[sub];
  try {
    if (!command) throw new UsageError(`unknown subcommand "${sub}"`);
    return await command(rest);
  } catch (error) {
    const usage = error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`depot package: ${(error as Error).message}\n${usage ? USAGE + '\n' : ''}`);
    return usage ? 2 : 1;
  }
}
