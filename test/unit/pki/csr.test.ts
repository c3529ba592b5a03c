import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CertificateAuthority, parseAndVerifyCsr } from '../../../src/pki/ca.js';
import { PkiError } from '../../../src/pki/errors.js';
import { openssl, opensslExtension, opensslOk, tempDir, writeTemp } from './helpers.js';

function rejectsWith(code: string, message?: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected a PkiError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

interface Csr {
  dir: string;
  keyPath: string;
  pemPath: string;
  pem: string;
  der: Buffer;
}

/** A CSR made by `openssl req` with a fresh key. */
function makeCsr(subject: string, keyArgs: string[] = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], extra: string[] = []): Csr {
  const dir = tempDir('depot-csr-');
  const keyPath = join(dir, 'req.key');
  const pemPath = join(dir, 'req.csr');
  opensslOk(['req', '-new', ...keyArgs, '-nodes', '-keyout', keyPath, '-subj', subject, ...extra, '-out', pemPath]);
  const derPath = join(dir, 'req.der');
  opensslOk(['req', '-in', pemPath, '-outform', 'DER', '-out', derPath]);
  return { dir, keyPath, pemPath, pem: readFileSync(pemPath, 'utf8'), der: readFileSync(derPath) };
}

/** Does openssl itself consider this (DER) request's signature valid? */
function opensslAcceptsCsr(dir: string, der: Buffer): boolean {
  const path = writeTemp(dir, `check-${Math.random().toString(16).slice(2)}.der`, der);
  // openssl 3.0 exits 0 either way; its verdict is in the message.
  const r = openssl(['req', '-inform', 'DER', '-in', path, '-verify', '-noout']);
  const out = r.stdout + r.stderr;
  if (/self-signature verify OK/.test(out)) return true;
  assert.match(out, /self-signature verify failure|signature/i);
  return false;
}

void test('CSR from openssl req (P-256, PEM): signed into a device certificate that carries the CSR key', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/CN=urn:imei:490154203237518');
  const issued = await ca.issueDeviceCertificate({ endpoint: 'urn:imei:490154203237518', csr: csr.pem });
  assert.equal(issued.privateKeyPem, undefined);

  const rootPath = writeTemp(csr.dir, 'root.pem', ca.exportRoot('pem'));
  const certPath = writeTemp(csr.dir, 'device.pem', issued.certificatePem);
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, '-purpose', 'sslclient', certPath]).trim(), `${certPath}: OK`);
  // The certified key is the CSR's key: same public key, and the openssl-made private key matches.
  assert.equal(opensslOk(['x509', '-in', certPath, '-noout', '-pubkey']), opensslOk(['req', '-in', csr.pemPath, '-noout', '-pubkey']));
  assert.equal(new X509Certificate(issued.certificatePem).checkPrivateKey(createPrivateKey(readFileSync(csr.keyPath))), true);
  const text = opensslOk(['x509', '-in', certPath, '-noout', '-text']);
  assert.match(text, /Subject: CN = urn:imei:490154203237518\n/);
  assert.deepEqual(opensslExtension(text, 'Extended Key Usage'), { critical: false, value: 'TLS Web Client Authentication' });
});

void test('CSR in DER form, and a CSR without a CN, are accepted; the CN comes from the endpoint name', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/O=Some Maker/serialNumber=SN-1');
  assert.equal(csr.der[0], 0x30);
  const issued = await ca.issueDeviceCertificate({ endpoint: 'urn:dev:ops:0004A3-Sensor-1', csr: csr.der });
  assert.equal(issued.certificate.subject, 'CN=urn:dev:ops:0004A3-Sensor-1');
  // DER given as bytes of PEM text works too.
  const again = await ca.issueDeviceCertificate({ endpoint: 'urn:dev:ops:0004A3-Sensor-1', csr: Buffer.from(csr.pem) });
  assert.equal(again.certificate.publicKey.export({ type: 'spki', format: 'der' }).equals(issued.certificate.publicKey.export({ type: 'spki', format: 'der' })), true);
});

void test('CSR for a server certificate: requested SANs are ignored, the names given by the operator decide', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/CN=evil.example', undefined, ['-addext', 'subjectAltName=DNS:evil.example,DNS:depot.example']);
  const issued = await ca.issueServerCertificate({ names: ['depot.example'], csr: csr.pem });
  assert.equal(issued.certificate.subjectAltName, 'DNS:depot.example');
  assert.equal(issued.certificate.subject, 'CN=depot.example');
});

void test('CSR with a P-384 key is accepted (ECDHE-ECDSA also runs on P-384)', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/CN=dev-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']);
  const issued = await ca.issueDeviceCertificate({ endpoint: 'dev-384', csr: csr.pem });
  assert.equal(issued.certificate.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  const rootPath = writeTemp(csr.dir, 'root.pem', ca.exportRoot('pem'));
  const certPath = writeTemp(csr.dir, 'device.pem', issued.certificatePem);
  assert.equal(opensslOk(['verify', '-CAfile', rootPath, certPath]).trim(), `${certPath}: OK`);
});

void test('CSR with a tampered signature is refused (and openssl agrees the signature is bad)', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/CN=tamper-1');
  assert.equal(opensslAcceptsCsr(csr.dir, csr.der), true, 'the untouched CSR verifies');
  // The last byte belongs to the ECDSA signature's s value; flipping it keeps the DER well-formed.
  const tampered = Buffer.from(csr.der);
  tampered[tampered.length - 1]! ^= 0x01;
  assert.equal(opensslAcceptsCsr(csr.dir, tampered), false);
  await assert.rejects(parseAndVerifyCsr(tampered), rejectsWith('CSR_SIGNATURE', /does not verify/));
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'tamper-1', csr: tampered }), rejectsWith('CSR_SIGNATURE'));
  // And as PEM.
  const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${tampered.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'tamper-1', csr: pem }), rejectsWith('CSR_SIGNATURE'));
});

void test('CSR whose signed content was changed (subject edited after signing) is refused', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/CN=device-AAAA');
  const at = csr.der.indexOf('device-AAAA');
  assert.ok(at > 0);
  const edited = Buffer.from(csr.der);
  edited.write('device-BBBB', at, 'latin1');
  assert.equal(opensslAcceptsCsr(csr.dir, edited), false);
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'device-BBBB', csr: edited }), rejectsWith('CSR_SIGNATURE'));
});

void test('CSR whose CN is not the endpoint name is refused', async () => {
  const ca = await CertificateAuthority.create();
  const csr = makeCsr('/CN=urn:imei:111111111111111');
  await assert.rejects(
    ca.issueDeviceCertificate({ endpoint: 'urn:imei:222222222222222', csr: csr.pem }),
    rejectsWith('CSR_SUBJECT_MISMATCH', /"urn:imei:111111111111111".*"urn:imei:222222222222222"/),
  );
});

void test('CSR with an RSA or Ed25519 key is refused with UNSUPPORTED_KEY', async () => {
  const ca = await CertificateAuthority.create();
  const rsa = makeCsr('/CN=rsa-dev', ['-newkey', 'rsa:2048']);
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'rsa-dev', csr: rsa.pem }), rejectsWith('UNSUPPORTED_KEY', /RSA/));
  const ed = makeCsr('/CN=ed-dev', ['-newkey', 'ed25519']);
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'ed-dev', csr: ed.pem }), rejectsWith('UNSUPPORTED_KEY'));
  const p521 = makeCsr('/CN=p521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']);
  await assert.rejects(ca.issueDeviceCertificate({ endpoint: 'p521', csr: p521.pem }), rejectsWith('UNSUPPORTED_KEY', /P-521/));
});

void test('input that is not a CSR is refused with BAD_CSR', async () => {
  const ca = await CertificateAuthority.create();
  await assert.rejects(parseAndVerifyCsr('not a csr'), rejectsWith('BAD_CSR'));
  await assert.rejects(parseAndVerifyCsr(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])), rejectsWith('BAD_CSR'));
  await assert.rejects(parseAndVerifyCsr(new Uint8Array(0)), rejectsWith('BAD_CSR'));
  // A certificate is not a request.
  await assert.rejects(parseAndVerifyCsr(ca.exportRoot('der')), rejectsWith('BAD_CSR'));
  const truncated = makeCsr('/CN=t').der.subarray(0, 40);
  await assert.rejects(parseAndVerifyCsr(truncated), rejectsWith('BAD_CSR'));
});
