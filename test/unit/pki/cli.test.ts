import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { fileNameFor, runCaCommand, type CaCommandIo } from '../../../src/cli/ca.js';
import { mode, openssl, opensslOk, tempDir, writeTemp } from './helpers.js';

interface Run {
  code: number;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

async function ca(args: string[], options: { tty?: boolean } = {}): Promise<Run> {
  const out: Buffer[] = [];
  let err = '';
  const io: CaCommandIo = {
    stdout: (data) => void out.push(Buffer.from(data)),
    stderr: (text) => void (err += text),
    stdoutIsTTY: options.tty ?? false,
  };
  const code = await runCaCommand(args, io);
  const stdoutBytes = Buffer.concat(out);
  return { code, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: err };
}

async function initialised(): Promise<string> {
  const data = join(tempDir('depot-cli-'), 'data');
  const r = await ca(['init', '--data-dir', data]);
  assert.equal(r.code, 0, r.stderr);
  return data;
}

void test('ca init: creates <data-dir>/ca with the key 0600 and the directory 0700, prints no key material', async () => {
  const data = join(tempDir('depot-cli-'), 'data');
  const r = await ca(['init', '--data-dir', data, '--name', 'Fleet Root', '--org', 'ACME', '--days', '1000']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const caDir = join(data, 'ca');
  assert.match(r.stdout, new RegExp(`^Created the CA in ${caDir}\n  subject:     O=ACME, CN=Fleet Root\n`));
  assert.doesNotMatch(r.stdout, /BEGIN/);
  assert.equal(mode(caDir), 0o700);
  assert.equal(mode(join(caDir, 'ca.key')), 0o600);
  const cert = new X509Certificate(readFileSync(join(caDir, 'ca.crt')));
  assert.equal(cert.subject, 'O=ACME\nCN=Fleet Root');
  assert.match(r.stdout, new RegExp(`SHA-256:     ${cert.fingerprint256}\n`));
  const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
  assert.ok(Math.abs(days - 1000) < 0.01, `validity ${days} days`);
});

void test('ca init twice: exit 1, "already exists", the CA is unchanged', async () => {
  const data = await initialised();
  const before = readFileSync(join(data, 'ca', 'ca.crt'));
  const r = await ca(['init', '--data-dir', data]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^depot ca: a CA already exists in .*\/ca \(remove it first to create a new root\)\n$/);
  assert.deepEqual(readFileSync(join(data, 'ca', 'ca.crt')), before);
});

void test('ca issue --device: writes <endpoint>.crt and .key (0600) in <data-dir>/issued (0700); openssl verifies against the exported root', async () => {
  const data = await initialised();
  const r = await ca(['issue', '--data-dir', data, '--device', 'urn:imei:359072061234567', '--days', '30']);
  assert.equal(r.code, 0, r.stderr);
  const out = join(data, 'issued');
  const certPath = join(out, 'urn_imei_359072061234567.crt');
  const keyPath = join(out, 'urn_imei_359072061234567.key');
  assert.deepEqual(readdirSync(out).sort(), ['urn_imei_359072061234567.crt', 'urn_imei_359072061234567.key']);
  assert.equal(mode(out), 0o700);
  assert.equal(mode(keyPath), 0o600);
  assert.equal(mode(certPath), 0o644);
  assert.match(r.stdout, /^Issued a device certificate for endpoint "urn:imei:359072061234567"\n/);
  assert.match(r.stdout, new RegExp(`  private key: ${keyPath} \\(mode 0600\\)\n`));
  assert.doesNotMatch(r.stdout + r.stderr, /BEGIN/);

  const exported = await ca(['export', '--data-dir', data]);
  assert.equal(exported.code, 0);
  const rootPath = writeTemp(tempDir(), 'root.pem', exported.stdout);
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, '-purpose', 'sslclient', certPath]).trim(), `${certPath}: OK`);
  assert.equal(opensslOk(['x509', '-in', certPath, '-noout', '-subject']).trim(), 'subject=CN = urn:imei:359072061234567');
  assert.equal(opensslOk(['pkey', '-in', keyPath, '-pubout']), opensslOk(['x509', '-in', certPath, '-noout', '-pubkey']));
  const cert = new X509Certificate(readFileSync(certPath));
  assert.ok(Math.abs((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000 - 30) < 0.01);
});

void test('ca issue: refuses to overwrite output files unless --force', async () => {
  const data = await initialised();
  const out = join(tempDir(), 'out');
  assert.equal((await ca(['issue', '--data-dir', data, '--device', 'dev-1', '--out', out])).code, 0);
  const first = readFileSync(join(out, 'dev-1.crt'), 'utf8');
  const again = await ca(['issue', '--data-dir', data, '--device', 'dev-1', '--out', out]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /dev-1\.crt already exists \(use --force to replace it\)/);
  assert.equal(readFileSync(join(out, 'dev-1.crt'), 'utf8'), first);
  const forced = await ca(['issue', '--data-dir', data, '--device', 'dev-1', '--out', out, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.notEqual(readFileSync(join(out, 'dev-1.crt'), 'utf8'), first);
  assert.equal(mode(join(out, 'dev-1.key')), 0o600);
});

void test('ca issue --device --csr: signs an openssl CSR, writes only the certificate; a tampered CSR fails with exit 1', async () => {
  const data = await initialised();
  const dir = tempDir();
  opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'dev.key'), '-subj', '/CN=sensor-7', '-out', join(dir, 'dev.csr')]);
  const out = join(dir, 'out');
  const r = await ca(['issue', '--data-dir', data, '--device', 'sensor-7', '--csr', join(dir, 'dev.csr'), '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(out), ['sensor-7.crt']);
  assert.doesNotMatch(r.stdout, /private key/);
  assert.equal(opensslOk(['x509', '-in', join(out, 'sensor-7.crt'), '-noout', '-pubkey']), opensslOk(['req', '-in', join(dir, 'dev.csr'), '-noout', '-pubkey']));

  opensslOk(['req', '-in', join(dir, 'dev.csr'), '-outform', 'DER', '-out', join(dir, 'dev.der')]);
  const der = readFileSync(join(dir, 'dev.der'));
  der[der.length - 1]! ^= 0x01;
  const bad = writeTemp(dir, 'bad.der', der);
  const refused = await ca(['issue', '--data-dir', data, '--device', 'sensor-8', '--csr', bad, '--out', out]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, 'depot ca: the CSR signature does not verify with its public key (corrupted or tampered request)\n');
  assert.equal(existsSync(join(out, 'sensor-8.crt')), false);

  const missing = await ca(['issue', '--data-dir', data, '--device', 'x', '--csr', join(dir, 'nope.csr')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ENOENT.*nope\.csr/);
});

void test('ca issue --server: names from repeated --server and following arguments, in command-line order', async () => {
  const data = await initialised();
  const out = join(tempDir(), 'srv');
  const r = await ca(['issue', '--data-dir', data, '--server', 'depot.example', '10.0.0.1', '--server', 'b.example', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const cert = new X509Certificate(readFileSync(join(out, 'depot.example.crt')));
  assert.equal(cert.subjectAltName, 'DNS:depot.example, IP Address:10.0.0.1, DNS:b.example');
  assert.equal(cert.subject, 'CN=depot.example');
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  assert.equal(mode(join(out, 'depot.example.key')), 0o600);
  const bad = await ca(['issue', '--data-dir', data, '--server', 'not_valid.example']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /"not_valid\.example" is not a valid DNS name or IP address/);
});

void test('ca export: PEM to stdout equals ca.crt; DER to a file is the same certificate; DER to a terminal is refused', async () => {
  const data = await initialised();
  const pem = await ca(['export', '--data-dir', data]);
  assert.equal(pem.code, 0);
  assert.equal(pem.stdout, readFileSync(join(data, 'ca', 'ca.crt'), 'utf8'));
  const derFile = join(tempDir(), 'root.der');
  const der = await ca(['export', '--data-dir', data, '--format', 'der', '--out', derFile]);
  assert.equal(der.code, 0, der.stderr);
  assert.equal(der.stdout, '');
  assert.match(der.stderr, /Wrote the root certificate \(DER\) to /);
  assert.deepEqual(readFileSync(derFile), new X509Certificate(pem.stdout).raw);
  assert.equal(opensslOk(['x509', '-inform', 'DER', '-in', derFile, '-noout', '-subject']).trim(), 'subject=CN = Depot Root CA');
  const piped = await ca(['export', '--data-dir', data, '--format', 'DER']);
  assert.equal(piped.code, 0);
  assert.deepEqual(piped.stdoutBytes, readFileSync(derFile));
  const tty = await ca(['export', '--data-dir', data, '--format', 'der'], { tty: true });
  assert.equal(tty.code, 2);
  assert.match(tty.stderr, /refusing to write binary DER to a terminal/);
  // A PEM file written with --out is what openssl reads.
  const pemFile = join(tempDir(), 'root.pem');
  assert.equal((await ca(['export', '--data-dir', data, '--out', pemFile])).code, 0);
  assert.equal(openssl(['x509', '-in', pemFile, '-noout']).status, 0);
});

void test('without a CA: issue and export fail with exit 1 and say how to create one', async () => {
  const data = join(tempDir(), 'empty');
  for (const args of [['issue', '--device', 'd'], ['export']]) {
    const r = await ca([...args, '--data-dir', data]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^depot ca: no CA in .*empty\/ca \(create one with "depot ca init"\)\n$/);
  }
  assert.equal(existsSync(join(data, 'issued')), false);
});

void test('usage errors exit 2 with a message', async () => {
  const data = await initialised();
  const cases: [string[], RegExp][] = [
    [[], /^Usage: depot ca <command>/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['issue', '--data-dir', data], /issue needs --device <endpoint> or --server <dns-or-ip>/],
    [['issue', '--data-dir', data, '--device', 'a', '--server', 'b.example'], /either --device or --server, not both/],
    [['issue', '--data-dir', data, '--device', 'a', 'extra'], /unexpected argument: extra/],
    [['issue', '--data-dir', data, '--device', 'a', '--days', '1.5'], /--days must be a positive whole number of days \(got "1\.5"\)/],
    [['issue', '--data-dir', data, '--device', 'a', '--days', '0'], /--days must be a positive whole number/],
    [['issue', '--data-dir', data, '--device'], /argument missing|requires an argument|--device/],
    [['init', '--data-dir', data, '--bogus'], /Unknown option '--bogus'/],
    [['export', '--data-dir', data, '--format', 'p12'], /--format must be pem or der \(got "p12"\)/],
  ];
  for (const [args, message] of cases) {
    const r = await ca(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  for (const help of [['--help'], ['help'], ['issue', '--help']]) {
    const r = await ca(help);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: depot ca <command> \[options\]/);
  }
});

void test('fileNameFor: endpoint and host names become safe file names', () => {
  assert.equal(fileNameFor('urn:imei:359072061234567'), 'urn_imei_359072061234567');
  assert.equal(fileNameFor('../../etc/passwd'), '__.._etc_passwd');
  assert.equal(fileNameFor('..'), '_');
  assert.equal(fileNameFor('.hidden'), '_hidden');
  assert.equal(fileNameFor('2001:db8::1'), '2001_db8__1');
  assert.equal(fileNameFor('*.devices.example'), '_.devices.example');
  assert.equal(fileNameFor(''), '_');
});
