import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';

import { CertificateAuthority, randomSerialNumber } from '../../../src/pki/ca.js';
import { PkiError } from '../../../src/pki/errors.js';
import { writeFileAtomic } from '../../../src/pki/files.js';
import { DAY, keyIdOf, mode, openssl, opensslExtension, opensslOk, tempDir, writeTemp } from './helpers.js';

function rejectsWith(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected a PkiError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

function opensslDate(text: string, field: 'notBefore' | 'notAfter'): Date {
  const m = new RegExp(`^${field}=(.*)$`, 'm').exec(text);
  assert.ok(m, `${field} in ${text}`);
  return new Date(m[1]!);
}

void test('root: self-signed P-256 CA with critical basicConstraints CA:TRUE pathlen 0, keyCertSign|cRLSign, SKI (openssl -text)', async () => {
  const dir = tempDir();
  const ca = await CertificateAuthority.init(join(dir, 'ca'));
  const rootPath = join(dir, 'ca', 'ca.crt');
  const text = opensslOk(['x509', '-in', rootPath, '-noout', '-text']);

  assert.match(text, /Version: 3 \(0x2\)/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Issuer: CN = Depot Root CA\n/);
  assert.match(text, /Subject: CN = Depot Root CA\n/);
  assert.match(text, /Public Key Algorithm: id-ecPublicKey/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.deepEqual(opensslExtension(text, 'Basic Constraints'), { critical: true, value: 'CA:TRUE, pathlen:0' });
  assert.deepEqual(opensslExtension(text, 'Key Usage'), { critical: true, value: 'Certificate Sign, CRL Sign' });
  assert.deepEqual(opensslExtension(text, 'Subject Key Identifier'), { critical: false, value: keyIdOf(ca.certificate) });
  assert.equal(opensslExtension(text, 'Extended Key Usage'), undefined);
  assert.equal(opensslExtension(text, 'Subject Alternative Name'), undefined);
  // Exactly these three extensions.
  assert.equal(text.match(/X509v3 (?!extensions:)/g)?.length, 3);

  // openssl accepts it as its own trust anchor; node:crypto agrees it is a CA that signed itself.
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, rootPath]).trim(), `${rootPath}: OK`);
  const cert = new X509Certificate(readFileSync(rootPath));
  assert.equal(cert.ca, true);
  assert.equal(cert.checkIssued(cert), true);
  assert.equal(cert.verify(cert.publicKey), true);
  assert.equal(cert.fingerprint256, ca.certificate.fingerprint256);
});

void test('root: subject O and UTF-8 CN are encoded as UTF8String; validity follows the injected clock exactly', async () => {
  const now = new Date('2026-03-01T12:00:00.789Z');
  const ca = await CertificateAuthority.create({ commonName: 'Dépôt Racine', organization: 'ACME Fleet', validityDays: 3650, now: () => now });
  const dir = tempDir();
  const pem = writeTemp(dir, 'root.pem', ca.exportRoot('pem'));
  const subject = opensslOk(['x509', '-in', pem, '-noout', '-subject', '-nameopt', 'RFC2253,show_type,-esc_msb,utf8']);
  assert.equal(subject.trim(), 'subject=CN=UTF8STRING:Dépôt Racine,O=UTF8STRING:ACME Fleet');
  const dates = opensslOk(['x509', '-in', pem, '-noout', '-dates']);
  // notBefore is backdated 5 minutes; times have whole seconds.
  assert.equal(opensslDate(dates, 'notBefore').toISOString(), '2026-03-01T11:55:00.000Z');
  assert.equal(opensslDate(dates, 'notAfter').toISOString(), new Date(Date.parse('2026-03-01T12:00:00Z') + 3650 * DAY).toISOString());
  assert.equal(ca.notAfter.toISOString(), '2036-02-27T12:00:00.000Z');
});

void test('root: a validity past 2049 is encoded as GeneralizedTime and read back the same by openssl', async () => {
  const now = new Date('2045-06-01T00:00:00Z');
  const ca = await CertificateAuthority.create({ validityDays: 3650, now: () => now });
  const dir = tempDir();
  const pem = writeTemp(dir, 'root.pem', ca.exportRoot('pem'));
  assert.equal(opensslDate(opensslOk(['x509', '-in', pem, '-noout', '-enddate']), 'notAfter').toISOString(), '2055-05-30T00:00:00.000Z');
  const asn1 = opensslOk(['asn1parse', '-in', pem]);
  assert.match(asn1, /UTCTIME\s+:450531235500Z/);
  assert.match(asn1, /GENERALIZEDTIME\s+:20550530000000Z/);
});

void test('exportRoot: PEM and DER are the same certificate, DER readable by openssl', async () => {
  const ca = await CertificateAuthority.create();
  const pem = ca.exportRoot('pem');
  const der = ca.exportRoot('der');
  assert.match(pem, /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/);
  assert.ok(Buffer.isBuffer(der));
  assert.equal(der[0], 0x30);
  assert.deepEqual(new X509Certificate(pem).raw, der);
  const dir = tempDir();
  const derPath = writeTemp(dir, 'root.der', der);
  const viaDer = opensslOk(['x509', '-inform', 'DER', '-in', derPath, '-outform', 'PEM']);
  assert.equal(viaDer, pem);
});

void test('serial numbers: 16 bytes, positive, random (openssl reads back the same value)', async () => {
  const serials = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const s = randomSerialNumber();
    assert.match(s, /^[0-7][0-9a-f]{31}$/);
    assert.notEqual(s.slice(0, 2), '00');
    serials.add(s);
  }
  assert.equal(serials.size, 200);

  const ca = await CertificateAuthority.create();
  const dir = tempDir();
  for (let i = 0; i < 3; i++) {
    const issued = await ca.issueDeviceCertificate({ endpoint: `dev-${i}` });
    assert.match(issued.serialNumber, /^[0-7][0-9A-F]{31}$/);
    const path = writeTemp(dir, `d${i}.pem`, issued.certificatePem);
    assert.equal(opensslOk(['x509', '-in', path, '-noout', '-serial']).trim(), `serial=${issued.serialNumber}`);
    // DER INTEGER of exactly 16 content octets (no 0x00 padding, no sign bit).
    assert.match(opensslOk(['asn1parse', '-in', path]), new RegExp(`prim: INTEGER\\s+:${issued.serialNumber}\\n`));
  }
});

void test('device certificate with a generated key: CN = endpoint, clientAuth, verified by openssl and node:crypto', async () => {
  const dir = tempDir();
  const now = new Date();
  const ca = await CertificateAuthority.create({ now: () => now });
  const rootPath = writeTemp(dir, 'root.pem', ca.exportRoot('pem'));
  const issued = await ca.issueDeviceCertificate({ endpoint: 'urn:imei:359072061234567' });
  const certPath = writeTemp(dir, 'device.pem', issued.certificatePem);

  assert.equal(opensslOk(['verify', '-CAfile', rootPath, certPath]).trim(), `${certPath}: OK`);
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, '-purpose', 'sslclient', certPath]).trim(), `${certPath}: OK`);
  const asServer = openssl(['verify', '-CAfile', rootPath, '-purpose', 'sslserver', certPath]);
  assert.notEqual(asServer.status, 0);
  assert.match(asServer.stdout + asServer.stderr, /unsuitable certificate purpose/);

  const text = opensslOk(['x509', '-in', certPath, '-noout', '-text']);
  assert.match(text, /Subject: CN = urn:imei:359072061234567\n/);
  assert.match(text, /Issuer: CN = Depot Root CA\n/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /ASN1 OID: prime256v1/);
  assert.deepEqual(opensslExtension(text, 'Basic Constraints'), { critical: true, value: 'CA:FALSE' });
  assert.deepEqual(opensslExtension(text, 'Key Usage'), { critical: true, value: 'Digital Signature' });
  assert.deepEqual(opensslExtension(text, 'Extended Key Usage'), { critical: false, value: 'TLS Web Client Authentication' });
  assert.deepEqual(opensslExtension(text, 'Subject Key Identifier'), { critical: false, value: keyIdOf(issued.certificate) });
  const aki = opensslExtension(text, 'Authority Key Identifier');
  assert.equal(aki?.critical, false);
  assert.equal(aki?.value.replace(/^keyid:/, ''), keyIdOf(ca.certificate));
  assert.equal(opensslExtension(text, 'Subject Alternative Name'), undefined);
  assert.equal(text.match(/X509v3 (?!extensions:)/g)?.length, 5);
  const subject = opensslOk(['x509', '-in', certPath, '-noout', '-subject', '-nameopt', 'RFC2253,show_type']);
  assert.equal(subject.trim(), 'subject=CN=UTF8STRING:urn:imei:359072061234567');

  // Validity: default 365 days from the injected now, backdated 5 minutes.
  const start = Math.floor(now.getTime() / 1000) * 1000;
  const dates = opensslOk(['x509', '-in', certPath, '-noout', '-dates']);
  assert.equal(opensslDate(dates, 'notBefore').getTime(), start - 300_000);
  assert.equal(opensslDate(dates, 'notAfter').getTime(), start + 365 * DAY);
  assert.equal(issued.notAfter.getTime(), start + 365 * DAY);

  // node:crypto: issued by the root, signature valid, the returned key belongs to the certificate.
  const cert = new X509Certificate(issued.certificateDer);
  assert.equal(cert.checkIssued(ca.certificate), true);
  assert.equal(cert.verify(ca.certificate.publicKey), true);
  assert.equal(cert.ca, false);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.equal(cert.subject, 'CN=urn:imei:359072061234567');
  assert.equal(issued.subject, 'CN=urn:imei:359072061234567');
  assert.equal(issued.fingerprint256, cert.fingerprint256);
  assert.equal(issued.serialNumber, cert.serialNumber.toUpperCase());
  assert.ok(issued.privateKeyPem);
  assert.match(issued.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = createPrivateKey(issued.privateKeyPem);
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(cert.checkPrivateKey(key), true);
  // And openssl agrees the key and certificate match.
  const keyPath = writeTemp(dir, 'device.key', issued.privateKeyPem);
  assert.equal(opensslOk(['pkey', '-in', keyPath, '-pubout']), opensslOk(['x509', '-in', certPath, '-noout', '-pubkey']));
});

void test('server certificate: SAN DNS/IP in order, CN = first name, serverAuth; openssl checks host names and IPs', async () => {
  const dir = tempDir();
  const ca = await CertificateAuthority.create();
  const rootPath = writeTemp(dir, 'root.pem', ca.exportRoot('pem'));
  const issued = await ca.issueServerCertificate({
    names: ['Depot.Example.com', '192.0.2.7', '2001:db8::1', 'other.example.', '[::ffff:10.1.2.3]', 'depot.example.com'],
    validityDays: 90,
  });
  const certPath = writeTemp(dir, 'server.pem', issued.certificatePem);
  const text = opensslOk(['x509', '-in', certPath, '-noout', '-text']);
  assert.match(text, /Subject: CN = depot.example.com\n/);
  assert.deepEqual(opensslExtension(text, 'Subject Alternative Name'), {
    critical: false,
    value: 'DNS:depot.example.com, IP Address:192.0.2.7, IP Address:2001:DB8:0:0:0:0:0:1, DNS:other.example, IP Address:0:0:0:0:0:FFFF:A01:203',
  });
  assert.deepEqual(opensslExtension(text, 'Extended Key Usage'), { critical: false, value: 'TLS Web Server Authentication' });
  assert.deepEqual(opensslExtension(text, 'Key Usage'), { critical: true, value: 'Digital Signature' });
  assert.deepEqual(opensslExtension(text, 'Basic Constraints'), { critical: true, value: 'CA:FALSE' });
  assert.equal(issued.notAfter.getTime() - issued.notBefore.getTime(), 90 * DAY + 300_000);

  const ok = (extra: string[]) => opensslOk(['verify', '-CAfile', rootPath, '-purpose', 'sslserver', ...extra, certPath]).trim();
  assert.equal(ok(['-verify_hostname', 'depot.example.com']), `${certPath}: OK`);
  assert.equal(ok(['-verify_hostname', 'other.example']), `${certPath}: OK`);
  assert.equal(ok(['-verify_ip', '192.0.2.7']), `${certPath}: OK`);
  assert.equal(ok(['-verify_ip', '2001:db8::1']), `${certPath}: OK`);
  const wrongHost = openssl(['verify', '-CAfile', rootPath, '-verify_hostname', 'evil.example', certPath]);
  assert.notEqual(wrongHost.status, 0);
  assert.match(wrongHost.stdout + wrongHost.stderr, /hostname mismatch/);
  const asClient = openssl(['verify', '-CAfile', rootPath, '-purpose', 'sslclient', certPath]);
  assert.notEqual(asClient.status, 0);

  const cert = issued.certificate;
  assert.equal(cert.checkHost('depot.example.com'), 'depot.example.com');
  assert.equal(cert.checkIP('192.0.2.7'), '192.0.2.7');
  assert.equal(cert.checkIP('10.1.2.4'), undefined);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
});

void test('server certificate: a name too long for a CN gives an empty subject and a critical SAN', async () => {
  const dir = tempDir();
  const ca = await CertificateAuthority.create();
  const rootPath = writeTemp(dir, 'root.pem', ca.exportRoot('pem'));
  const long = `${'a'.repeat(60)}.${'b'.repeat(20)}.example`;
  const issued = await ca.issueServerCertificate({ names: [long] });
  const certPath = writeTemp(dir, 'server.pem', issued.certificatePem);
  const text = opensslOk(['x509', '-in', certPath, '-noout', '-text']);
  assert.match(text, /Subject: *\n/);
  assert.deepEqual(opensslExtension(text, 'Subject Alternative Name'), { critical: true, value: `DNS:${long}` });
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, '-verify_hostname', long, certPath]).trim(), `${certPath}: OK`);
});

void test('server certificate: invalid names are refused with INVALID_NAME', async () => {
  const ca = await CertificateAuthority.create();
  for (const bad of ['', 'under_score.example', '-lead.example', 'trail-.example', '1.2.3', '999.1.1.1', '[depot.example]', 'fe80::1%eth0', 'a..b', '*.com', `${'x'.repeat(64)}.example`]) {
    await assert.rejects(ca.issueServerCertificate({ names: [bad] }), rejectsWith('INVALID_NAME'), bad);
  }
  await assert.rejects(ca.issueServerCertificate({ names: [] }), rejectsWith('INVALID_NAME'));
  // A wildcard is accepted.
  const wild = await ca.issueServerCertificate({ names: ['*.devices.example'] });
  assert.equal(wild.certificate.subjectAltName, 'DNS:*.devices.example');
});

void test('device certificate: endpoint names are checked (1-64 characters, no control characters)', async () => {
  const ca = await CertificateAuthority.create();
  for (const bad of ['', 'x'.repeat(65), 'dev\n1', 'dev\u00001', ' dev', 'dev ']) {
    await assert.rejects(ca.issueDeviceCertificate({ endpoint: bad }), rejectsWith('INVALID_NAME'), JSON.stringify(bad));
  }
  const max = await ca.issueDeviceCertificate({ endpoint: 'e'.repeat(64) });
  assert.equal(max.certificate.subject, `CN=${'e'.repeat(64)}`);
  // Characters that are special in string DNs go in literally, not parsed.
  const odd = await ca.issueDeviceCertificate({ endpoint: '#dev+1,O=evil' });
  const dir = tempDir();
  const path = writeTemp(dir, 'odd.pem', odd.certificatePem);
  assert.equal(opensslOk(['x509', '-in', path, '-noout', '-subject', '-nameopt', 'multiline,show_type']), 'subject=\n    commonName                = UTF8STRING:#dev+1,O=evil\n');
});

void test('validity: configurable, positive, and never beyond the CA certificate', async () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const ca = await CertificateAuthority.create({ validityDays: 100, now: () => now });
  const ok = await ca.issueDeviceCertificate({ endpoint: 'd', validityDays: 99 });
  assert.equal(ok.notAfter.toISOString(), '2026-09-08T00:00:00.000Z');
  assert.equal(ok.notBefore.toISOString(), '2026-05-31T23:55:00.000Z');
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'd', validityDays: 101 }), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.code, 'INVALID_VALIDITY');
    assert.match(err.message, /after the CA certificate expires \(2026-09-09T00:00:00.000Z\)/);
    return true;
  });
  for (const days of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(ca.issueServerCertificate({ names: ['a.example'], validityDays: days }), rejectsWith('INVALID_VALIDITY'));
    await assert.rejects(CertificateAuthority.create({ validityDays: days }), rejectsWith('INVALID_VALIDITY'));
  }
});

void test('files: init writes ca.key 0600 and ca.crt in a 0700 directory, even with a permissive umask, no temp files left', async () => {
  const dir = tempDir();
  const caDir = join(dir, 'data', 'ca');
  const old = process.umask(0o000);
  try {
    await CertificateAuthority.init(caDir);
  } finally {
    process.umask(old);
  }
  assert.equal(mode(caDir), 0o700);
  assert.equal(mode(join(caDir, 'ca.key')), 0o600);
  assert.equal(mode(join(caDir, 'ca.crt')), 0o644);
  assert.deepEqual(readdirSync(caDir).sort(), ['ca.crt', 'ca.key']);
  // PKCS#8, readable by openssl, matching the certificate.
  const keyPem = readFileSync(join(caDir, 'ca.key'), 'utf8');
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(
    opensslOk(['pkey', '-in', join(caDir, 'ca.key'), '-pubout']),
    opensslOk(['x509', '-in', join(caDir, 'ca.crt'), '-noout', '-pubkey']),
  );
});

void test('files: an existing CA directory with a loose mode is tightened to 0700', async () => {
  const dir = tempDir();
  const caDir = join(dir, 'ca');
  mkdirSync(caDir, { mode: 0o755 });
  chmodSync(caDir, 0o755);
  await CertificateAuthority.init(caDir);
  assert.equal(mode(caDir), 0o700);
});

void test('files: init refuses to replace an existing CA and leaves it untouched', async () => {
  const dir = tempDir();
  const caDir = join(dir, 'ca');
  await CertificateAuthority.init(caDir);
  const before = [readFileSync(join(caDir, 'ca.key')), readFileSync(join(caDir, 'ca.crt'))];
  await assert.rejects(CertificateAuthority.init(caDir), rejectsWith('CA_EXISTS'));
  rmSync(join(caDir, 'ca.crt'));
  await assert.rejects(CertificateAuthority.init(caDir), rejectsWith('CA_EXISTS'));
  assert.deepEqual(readFileSync(join(caDir, 'ca.key')), before[0]);
});

void test('load: the same CA comes back and issues certificates that chain to the original root', async () => {
  const dir = tempDir();
  const caDir = join(dir, 'ca');
  const created = await CertificateAuthority.init(caDir);
  const loaded = await CertificateAuthority.load(caDir);
  assert.equal(loaded.certificate.fingerprint256, created.certificate.fingerprint256);
  assert.equal(loaded.exportRoot('pem'), readFileSync(join(caDir, 'ca.crt'), 'utf8'));
  const issued = await loaded.issueDeviceCertificate({ endpoint: 'after-restart' });
  const rootPath = writeTemp(dir, 'root.pem', created.exportRoot('pem'));
  const certPath = writeTemp(dir, 'd.pem', issued.certificatePem);
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, certPath]).trim(), `${certPath}: OK`);
});

void test('load: missing, incomplete, exposed or mismatched CA files are refused with clear codes', async () => {
  const dir = tempDir();
  await assert.rejects(CertificateAuthority.load(join(dir, 'nothing')), rejectsWith('CA_NOT_FOUND'));

  const caDir = join(dir, 'ca');
  await CertificateAuthority.init(caDir);
  const keyPath = join(caDir, 'ca.key');
  const certPath = join(caDir, 'ca.crt');
  const cert = readFileSync(certPath);
  const key = readFileSync(keyPath);

  rmSync(certPath);
  await assert.rejects(CertificateAuthority.load(caDir), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.code, 'CA_INCOMPLETE');
    assert.match(err.message, /ca\.crt is missing/);
    return true;
  });
  writeFileSync(certPath, cert);

  chmodSync(keyPath, 0o640);
  await assert.rejects(CertificateAuthority.load(caDir), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.code, 'INSECURE_PERMISSIONS');
    assert.match(err.message, /has mode 0640/);
    return true;
  });
  chmodSync(keyPath, 0o600);

  // Another P-256 key: does not match the certificate.
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  writeFileSync(keyPath, other, { mode: 0o600 });
  await assert.rejects(CertificateAuthority.load(caDir), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.code, 'CA_INVALID');
    assert.match(err.message, /do not belong together/);
    return true;
  });

  // Not an EC key at all.
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  writeFileSync(keyPath, rsa, { mode: 0o600 });
  await assert.rejects(CertificateAuthority.load(caDir), rejectsWith('CA_INVALID'));

  // Garbage key: the message must not echo the file content.
  writeFileSync(keyPath, '-----BEGIN PRIVATE KEY-----\nU0VDUkVUU0VDUkVU\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
  await assert.rejects(CertificateAuthority.load(caDir), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.code, 'CA_INVALID');
    assert.doesNotMatch(err.message, /U0VDUkVU/);
    return true;
  });

  // A certificate that is not a CA (an issued device certificate with its own key).
  writeFileSync(keyPath, key, { mode: 0o600 });
  const ca = await CertificateAuthority.load(caDir);
  const device = await ca.issueDeviceCertificate({ endpoint: 'not-a-ca' });
  writeFileSync(certPath, device.certificatePem);
  writeFileSync(keyPath, device.privateKeyPem!, { mode: 0o600 });
  await assert.rejects(CertificateAuthority.load(caDir), (err: unknown) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.code, 'CA_INVALID');
    assert.match(err.message, /is not a CA certificate/);
    return true;
  });
});

void test('writeFileAtomic: replaces atomically with the given mode, exclusive refuses existing files', async () => {
  const dir = tempDir();
  const path = join(dir, 'f');
  await writeFileAtomic(path, 'one', { mode: 0o600 });
  assert.equal(readFileSync(path, 'utf8'), 'one');
  assert.equal(mode(path), 0o600);
  await writeFileAtomic(path, 'two', { mode: 0o644 });
  assert.equal(readFileSync(path, 'utf8'), 'two');
  assert.equal(mode(path), 0o644);
  await assert.rejects(writeFileAtomic(path, 'three', { mode: 0o600, exclusive: true }), rejectsWith('FILE_EXISTS'));
  assert.equal(readFileSync(path, 'utf8'), 'two');
  assert.deepEqual(readdirSync(dir), ['f']);
});

void test('no key material escapes through inspection or JSON', async () => {
  const ca = await CertificateAuthority.create();
  const dir = tempDir();
  await ca.save(join(dir, 'ca'));
  const keyPem = readFileSync(join(dir, 'ca', 'ca.key'), 'utf8');
  const keyBody = keyPem.split('\n')[2]!; // a line of the base64 body, containing the private scalar
  for (const shown of [inspect(ca, { depth: 10, showHidden: true }), JSON.stringify(ca)]) {
    assert.doesNotMatch(shown, /PRIVATE KEY/);
    assert.ok(!shown.includes(keyBody));
  }
});
