import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CertificateAuthority } from '../../../src/pki/ca.js';
import { ALERT_FOR_CODE, TlsAlert, TrustStore, verifyChain, type ChainErrorCode, type ChainResult } from '../../../src/pki/verify.js';
import { DAY, openssl, opensslOk, tempDir, writeTemp } from './helpers.js';

function assertFails(result: ChainResult, code: ChainErrorCode, depth: number, message?: RegExp): void {
  assert.equal(result.ok, false, `expected ${code}, got success`);
  if (result.ok) return;
  assert.equal(result.error.code, code, result.error.message);
  assert.equal(result.error.depth, depth, result.error.message);
  assert.equal(result.error.alert, ALERT_FOR_CODE[code]);
  assert.equal(TlsAlert[result.error.alertName], result.error.alert);
  if (message) assert.match(result.error.message, message);
}

function assertOk(result: ChainResult): asserts result is Extract<ChainResult, { ok: true }> {
  if (!result.ok) assert.fail(`expected success, got ${result.error.code}: ${result.error.message}`);
}

/**
 * Certificates made by the openssl CLI, for shapes Depot's CA never produces
 * (intermediates, non-CA issuers, odd key usages, critical policies).
 */
class OpensslPki {
  readonly dir = tempDir('depot-verify-');
  #n = 0;

  /** A self-signed root with the given v3 extension lines. */
  root(cn: string, ext: string[], days = 30): { cert: string; key: string } {
    const base = join(this.dir, `root${this.#n++}`);
    const conf = writeTemp(this.dir, `${this.#n}-root.cnf`, `[req]\ndistinguished_name = dn\n[dn]\n[ext]\n${ext.join('\n')}\n`);
    opensslOk([
      'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', `${base}.key`, '-out', `${base}.crt`, '-subj', `/CN=${cn}`, '-days', String(days),
      '-config', conf, '-extensions', 'ext',
    ]);
    return { cert: `${base}.crt`, key: `${base}.key` };
  }

  /** A certificate for a fresh key, signed by `issuer`, with the given v3 extension lines. */
  issue(cn: string, issuer: { cert: string; key: string }, ext: string[], days = 30): { cert: string; key: string } {
    const base = join(this.dir, `cert${this.#n++}`);
    opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-subj', `/CN=${cn}`, '-out', `${base}.csr`]);
    const conf = writeTemp(this.dir, `${this.#n}-ext.cnf`, `[ext]\n${ext.join('\n')}\n`);
    opensslOk([
      'x509', '-req', '-in', `${base}.csr`, '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', `0x${(0x1000 + this.#n).toString(16)}`,
      '-days', String(days), '-extfile', conf, '-extensions', 'ext', '-out', `${base}.crt`,
    ]);
    return { cert: `${base}.crt`, key: `${base}.key` };
  }

  pem(path: string): string {
    return readFileSync(path, 'utf8');
  }
}

const CA_EXT = ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign', 'subjectKeyIdentifier = hash'];
const LEAF_EXT = ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = clientAuth, serverAuth'];

void test('a certificate issued by the CA verifies: path leaf -> root, also with the root appended to the chain', async () => {
  const ca = await CertificateAuthority.create();
  const device = await ca.issueDeviceCertificate({ endpoint: 'urn:imei:1' });
  const trust = ca.trustStore();
  for (const input of [device.certificateDer, device.certificatePem, device.certificate, new Uint8Array(device.certificateDer)]) {
    const r = trust.verify([input], { purpose: 'clientAuth', endpoint: 'urn:imei:1' });
    assertOk(r);
    assert.equal(r.path.length, 2);
    assert.equal(r.leaf.fingerprint256, device.fingerprint256);
    assert.equal(r.anchor.fingerprint256, ca.certificate.fingerprint256);
  }
  const withRoot = verifyChain([device.certificateDer, ca.exportRoot('der')], trust, { purpose: 'clientAuth' });
  assertOk(withRoot);
  assert.deepEqual(withRoot.path.map((c) => c.subject), ['CN=urn:imei:1', 'CN=Depot Root CA']);
});

void test('expired certificate: EXPIRED at depth 0 with alert certificate_expired (openssl agrees)', async () => {
  const past = new Date(Date.now() - 400 * DAY);
  const ca = await CertificateAuthority.create({ now: () => past });
  const device = await ca.issueDeviceCertificate({ endpoint: 'old-device', validityDays: 30 });
  const r = ca.trustStore().verify([device.certificateDer], { purpose: 'clientAuth' });
  assertFails(r, 'EXPIRED', 0, new RegExp(`"CN=old-device" expired at ${device.notAfter.toISOString()}`));
  assert.equal(r.ok ? 0 : r.error.alert, 45);
  assert.equal(r.ok ? '' : r.error.subject, 'CN=old-device');

  const dir = tempDir();
  const out = openssl(['verify', '-CAfile', writeTemp(dir, 'root.pem', ca.exportRoot('pem')), writeTemp(dir, 'd.pem', device.certificatePem)]);
  assert.notEqual(out.status, 0);
  assert.match(out.stdout + out.stderr, /certificate has expired/);
  // At a time inside its validity it is fine.
  assertOk(ca.trustStore().verify([device.certificateDer], { at: new Date(past.getTime() + DAY) }));
});

void test('validity boundaries: notBefore and notAfter themselves are inside, one second beyond is not', async () => {
  const ca = await CertificateAuthority.create({ validityDays: 10 });
  const device = await ca.issueDeviceCertificate({ endpoint: 'edge', validityDays: 2 });
  const trust = ca.trustStore();
  assertOk(trust.verify([device.certificateDer], { at: device.notBefore }));
  assertOk(trust.verify([device.certificateDer], { at: device.notAfter.getTime() }));
  assertFails(trust.verify([device.certificateDer], { at: device.notAfter.getTime() + 1000 }), 'EXPIRED', 0);
  assertOk(trust.verify([device.certificateDer], { at: device.notAfter }));
  assertFails(trust.verify([device.certificateDer], { at: new Date(device.notBefore.getTime() - 1000) }), 'NOT_YET_VALID', 0, /is not valid before/);
  assertFails(trust.verify([device.certificateDer], { at: new Date(device.notAfter.getTime() + 1000) }), 'EXPIRED', 0);
});

void test('expired trust anchor: EXPIRED at the depth of the root', () => {
  const pki = new OpensslPki();
  const root = pki.root('Short Root', CA_EXT, 1);
  const leaf = pki.issue('long-leaf', root, LEAF_EXT, 30);
  const trust = new TrustStore([pki.pem(root.cert)]);
  assertOk(trust.verify([pki.pem(leaf.cert)]));
  assertFails(trust.verify([pki.pem(leaf.cert)], { at: new Date(Date.now() + 2 * DAY) }), 'EXPIRED', 1, /"CN=Short Root" expired/);
});

void test('certificate from another CA: UNTRUSTED_ISSUER with alert unknown_ca (openssl agrees)', async () => {
  const ours = await CertificateAuthority.create();
  const theirs = await CertificateAuthority.create({ commonName: 'Other Root CA' });
  const foreign = await theirs.issueDeviceCertificate({ endpoint: 'intruder' });
  const r = ours.trustStore().verify([foreign.certificateDer], { purpose: 'clientAuth' });
  assertFails(r, 'UNTRUSTED_ISSUER', 0, /"CN=intruder" was issued by "CN=Other Root CA", which is not in the trust store/);
  assert.equal(r.ok ? 0 : r.error.alert, 48);
  // Sending the foreign root along does not help.
  assertFails(ours.trustStore().verify([foreign.certificateDer, theirs.exportRoot('der')]), 'UNTRUSTED_ISSUER', 1, /is self-signed and not in the trust store/);

  const dir = tempDir();
  const out = openssl(['verify', '-CAfile', writeTemp(dir, 'root.pem', ours.exportRoot('pem')), writeTemp(dir, 'f.pem', foreign.certificatePem)]);
  assert.notEqual(out.status, 0);
  assert.match(out.stdout + out.stderr, /unable to get local issuer certificate/);
});

void test('same issuer name, different key: BAD_SIGNATURE with alert decrypt_error', async () => {
  const ours = await CertificateAuthority.create();
  const impostor = await CertificateAuthority.create(); // also "CN=Depot Root CA"
  const forged = await impostor.issueDeviceCertificate({ endpoint: 'forged' });
  assertFails(ours.trustStore().verify([forged.certificateDer]), 'BAD_SIGNATURE', 0, /signature of "CN=forged" does not verify/);
});

void test('tampered signature bytes: BAD_SIGNATURE (openssl agrees)', async () => {
  const ca = await CertificateAuthority.create();
  const device = await ca.issueDeviceCertificate({ endpoint: 'tampered' });
  const der = Buffer.from(device.certificateDer);
  der[der.length - 1]! ^= 0x01;
  assertFails(ca.trustStore().verify([der]), 'BAD_SIGNATURE', 0);
  const dir = tempDir();
  const out = openssl(['verify', '-CAfile', writeTemp(dir, 'root.pem', ca.exportRoot('pem')), '-inform', 'DER', writeTemp(dir, 't.der', der)]);
  const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
  const outPem = openssl(['verify', '-CAfile', join(dir, 'root.pem'), writeTemp(dir, 't.pem', pem)]);
  assert.ok(out.status !== 0 || outPem.status !== 0);
  assert.match(outPem.stdout + outPem.stderr, /certificate signature failure/);
});

void test('any single flipped byte in the signed part or signature is never accepted', async () => {
  const ca = await CertificateAuthority.create();
  const device = await ca.issueDeviceCertificate({ endpoint: 'flip' });
  const trust = ca.trustStore();
  const der = device.certificateDer;
  // Skip the 4-byte outer header; every other byte is covered by the signature or is the signature.
  for (let i = 4; i < der.length; i += 7) {
    const copy = Buffer.from(der);
    copy[i]! ^= 0x20;
    const r = trust.verify([copy], { purpose: 'clientAuth', endpoint: 'flip' });
    assert.equal(r.ok, false, `byte ${i} flipped was accepted`);
  }
});

void test('device certificate used as a server certificate (and the reverse): WRONG_KEY_USAGE, alert unsupported_certificate', async () => {
  const ca = await CertificateAuthority.create();
  const device = await ca.issueDeviceCertificate({ endpoint: 'dev' });
  const server = await ca.issueServerCertificate({ names: ['depot.example'] });
  const trust = ca.trustStore();
  const r = trust.verify([device.certificateDer], { purpose: 'serverAuth' });
  assertFails(r, 'WRONG_KEY_USAGE', 0, /is not valid for serverAuth \(extendedKeyUsage: 1\.3\.6\.1\.5\.5\.7\.3\.2\)/);
  assert.equal(r.ok ? 0 : r.error.alert, 43);
  assertFails(trust.verify([server.certificateDer], { purpose: 'clientAuth' }), 'WRONG_KEY_USAGE', 0);
  assertOk(trust.verify([server.certificateDer], { purpose: 'serverAuth', host: 'depot.example' }));
});

void test('leaf whose keyUsage lacks digitalSignature: WRONG_KEY_USAGE; anyExtendedKeyUsage is accepted', () => {
  const pki = new OpensslPki();
  const root = pki.root('Test Root', CA_EXT);
  const trust = new TrustStore([pki.pem(root.cert)]);
  const enc = pki.issue('enc-only', root, ['keyUsage = critical, keyAgreement', 'extendedKeyUsage = clientAuth']);
  assertFails(trust.verify([pki.pem(enc.cert)], { purpose: 'clientAuth' }), 'WRONG_KEY_USAGE', 0, /lacks digitalSignature/);
  // Without a purpose the key usage of the leaf is not judged.
  assertOk(trust.verify([pki.pem(enc.cert)]));
  const any = pki.issue('any-eku', root, ['keyUsage = critical, digitalSignature', 'extendedKeyUsage = anyExtendedKeyUsage']);
  assertOk(trust.verify([pki.pem(any.cert)], { purpose: 'serverAuth' }));
  // No keyUsage and no extendedKeyUsage: no restriction (RFC 5280).
  const plain = pki.issue('plain', root, ['basicConstraints = CA:FALSE']);
  assertOk(trust.verify([pki.pem(plain.cert)], { purpose: 'clientAuth' }));
});

void test('issuer whose keyUsage lacks keyCertSign: WRONG_KEY_USAGE at depth 1 (openssl refuses it too)', () => {
  const pki = new OpensslPki();
  const root = pki.root('No Sign Root', ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, cRLSign, digitalSignature']);
  const leaf = pki.issue('leaf', root, LEAF_EXT);
  const trust = new TrustStore([pki.pem(root.cert)]);
  assertFails(trust.verify([pki.pem(leaf.cert)]), 'WRONG_KEY_USAGE', 1, /"CN=No Sign Root" may not sign certificates/);
  const out = openssl(['verify', '-CAfile', root.cert, leaf.cert]);
  assert.notEqual(out.status, 0);
});

void test('certificate signed by an end-entity certificate: NOT_A_CA at depth 1', async () => {
  const ca = await CertificateAuthority.create();
  const device = await ca.issueDeviceCertificate({ endpoint: 'rogue-issuer' });
  const pki = new OpensslPki();
  const issuer = { cert: writeTemp(pki.dir, 'dev.crt', device.certificatePem), key: writeTemp(pki.dir, 'dev.key', device.privateKeyPem!) };
  const leaf = pki.issue('child', issuer, LEAF_EXT);
  const r = ca.trustStore().verify([pki.pem(leaf.cert), device.certificatePem], { purpose: 'clientAuth' });
  assertFails(r, 'NOT_A_CA', 1, /the issuer "CN=rogue-issuer" is not a CA/);
  assert.equal(r.ok ? 0 : r.error.alert, 48);
});

void test('intermediate CA: chain leaf -> intermediate -> root verifies; without the intermediate it is UNTRUSTED_ISSUER', () => {
  const pki = new OpensslPki();
  const root = pki.root('Chain Root', CA_EXT);
  const inter = pki.issue('Chain Intermediate', root, [...CA_EXT, 'authorityKeyIdentifier = keyid']);
  const leaf = pki.issue('chain-leaf', inter, [...LEAF_EXT, 'authorityKeyIdentifier = keyid']);
  const trust = new TrustStore([pki.pem(root.cert)]);
  const r = trust.verify([pki.pem(leaf.cert), pki.pem(inter.cert)], { purpose: 'clientAuth' });
  assertOk(r);
  assert.deepEqual(r.path.map((c) => c.subject), ['CN=chain-leaf', 'CN=Chain Intermediate', 'CN=Chain Root']);
  // The same chain with the root appended, and with the intermediates in a different order.
  assertOk(trust.verify([pki.pem(leaf.cert), pki.pem(root.cert), pki.pem(inter.cert)]));
  assertFails(trust.verify([pki.pem(leaf.cert)]), 'UNTRUSTED_ISSUER', 0, /issued by "CN=Chain Intermediate"/);
  // openssl agrees on both.
  assert.equal(opensslOk(['verify', '-CAfile', root.cert, '-untrusted', inter.cert, leaf.cert]).trim(), `${leaf.cert}: OK`);
  assert.notEqual(openssl(['verify', '-CAfile', root.cert, leaf.cert]).status, 0);
  // maxDepth bounds the path.
  assertFails(trust.verify([pki.pem(leaf.cert), pki.pem(inter.cert)], { maxDepth: 2 }), 'PATH_TOO_LONG', 1);
});

void test("Depot's root (pathlen 0) does not accept an intermediate below it: PATH_TOO_LONG (openssl agrees)", async () => {
  const dir = tempDir();
  const caDir = join(dir, 'ca');
  const ca = await CertificateAuthority.init(caDir);
  const pki = new OpensslPki();
  const inter = pki.issue('Sneaky Intermediate', { cert: join(caDir, 'ca.crt'), key: join(caDir, 'ca.key') }, CA_EXT);
  const leaf = pki.issue('below', inter, LEAF_EXT);
  const r = ca.trustStore().verify([pki.pem(leaf.cert), pki.pem(inter.cert)]);
  assertFails(r, 'PATH_TOO_LONG', 2, /allows 0 intermediate CA\(s\) below it, the chain has 1/);
  const out = openssl(['verify', '-CAfile', join(caDir, 'ca.crt'), '-untrusted', inter.cert, leaf.cert]);
  assert.notEqual(out.status, 0);
  assert.match(out.stdout + out.stderr, /path length constraint exceeded/);
});

void test('a critical extension the verifier does not process: UNSUPPORTED_CRITICAL_EXTENSION', () => {
  const pki = new OpensslPki();
  const root = pki.root('Policy Root', CA_EXT);
  const leaf = pki.issue('policy-leaf', root, [...LEAF_EXT, 'certificatePolicies = critical, 1.3.6.1.4.1.99999.1']);
  const trust = new TrustStore([pki.pem(root.cert)]);
  assertFails(trust.verify([pki.pem(leaf.cert)]), 'UNSUPPORTED_CRITICAL_EXTENSION', 0, /\(2\.5\.29\.32\)/);
});

void test('names: host (DNS or IP) and endpoint must match the leaf, else NAME_MISMATCH', async () => {
  const ca = await CertificateAuthority.create();
  const trust = ca.trustStore();
  const server = await ca.issueServerCertificate({ names: ['depot.example', '192.0.2.1', '2001:db8::5'] });
  assertOk(trust.verify([server.certificateDer], { purpose: 'serverAuth', host: 'DEPOT.example' }));
  assertOk(trust.verify([server.certificateDer], { host: '192.0.2.1' }));
  assertOk(trust.verify([server.certificateDer], { host: '[2001:db8::5]' }));
  assertFails(trust.verify([server.certificateDer], { host: 'other.example' }), 'NAME_MISMATCH', 0, /is not valid for "other.example"/);
  assertFails(trust.verify([server.certificateDer], { host: '192.0.2.2' }), 'NAME_MISMATCH', 0);
  const device = await ca.issueDeviceCertificate({ endpoint: 'urn:imei:42' });
  assertOk(trust.verify([device.certificateDer], { endpoint: 'urn:imei:42' }));
  assertFails(trust.verify([device.certificateDer], { endpoint: 'urn:imei:43' }), 'NAME_MISMATCH', 0, /does not belong to endpoint "urn:imei:43"/);
  assertFails(trust.verify([device.certificateDer], { endpoint: 'urn:imei:4' }), 'NAME_MISMATCH', 0);
});

void test('empty chain and unparseable certificates are reported, not thrown', async () => {
  const ca = await CertificateAuthority.create();
  const trust = ca.trustStore();
  assertFails(trust.verify([]), 'EMPTY_CHAIN', 0);
  assertFails(trust.verify([Buffer.from('not a certificate')]), 'MALFORMED', 0);
  const device = await ca.issueDeviceCertificate({ endpoint: 'x' });
  assertFails(trust.verify([device.certificateDer, Buffer.from([0x30, 0x01])]), 'MALFORMED', 1, /certificate 1 of the chain/);
});

void test('TrustStore: several roots from a PEM bundle, duplicates ignored, an empty bundle refused', async () => {
  const a = await CertificateAuthority.create({ commonName: 'Root A' });
  const b = await CertificateAuthority.create({ commonName: 'Root B' });
  const store = TrustStore.fromPem(`# bundle\n${a.exportRoot('pem')}${b.exportRoot('pem')}${a.exportRoot('pem')}`);
  assert.equal(store.size, 2);
  assert.deepEqual(store.anchors.map((c) => c.subject), ['CN=Root A', 'CN=Root B']);
  const fromA = await a.issueDeviceCertificate({ endpoint: 'a1' });
  const fromB = await b.issueDeviceCertificate({ endpoint: 'b1' });
  assert.equal(verifyChain([fromA.certificateDer], store).ok, true);
  assert.equal(verifyChain([fromB.certificateDer], store).ok, true);
  store.add(new X509Certificate(b.exportRoot('der')));
  assert.equal(store.size, 2);
  assert.throws(() => TrustStore.fromPem('nothing here'), /no PEM certificate/);
  assertFails(new TrustStore().verify([fromA.certificateDer]), 'UNTRUSTED_ISSUER', 0);
});

void test('checks are ordered: an untrusted and expired certificate reports UNTRUSTED_ISSUER first', async () => {
  const past = new Date(Date.now() - 400 * DAY);
  const ours = await CertificateAuthority.create();
  const theirs = await CertificateAuthority.create({ commonName: 'Elsewhere', now: () => past });
  const old = await theirs.issueDeviceCertificate({ endpoint: 'old', validityDays: 1 });
  assertFails(ours.trustStore().verify([old.certificateDer]), 'UNTRUSTED_ISSUER', 0);
  assertFails(theirs.trustStore().verify([old.certificateDer]), 'EXPIRED', 0);
});

void test('a pinned certificate (the leaf itself in the trust store) is trusted directly; validity and purpose still apply', () => {
  const pki = new OpensslPki();
  const pinned = pki.root('pinned-device', ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', 'extendedKeyUsage = clientAuth'], 1);
  const trust = new TrustStore([pki.pem(pinned.cert)]);
  const r = trust.verify([pki.pem(pinned.cert)], { purpose: 'clientAuth', endpoint: 'pinned-device' });
  assertOk(r);
  assert.equal(r.path.length, 1);
  assertFails(trust.verify([pki.pem(pinned.cert)], { purpose: 'serverAuth' }), 'WRONG_KEY_USAGE', 0);
  assertFails(trust.verify([pki.pem(pinned.cert)], { at: new Date(Date.now() + 2 * DAY) }), 'EXPIRED', 0);
  // The same self-signed certificate without being pinned is not trusted.
  assertFails(new TrustStore().verify([pki.pem(pinned.cert)]), 'UNTRUSTED_ISSUER', 0, /is self-signed and not in the trust store/);
});

void test('alerts: each code maps to the RFC 5246 alert OpenSSL would send', () => {
  assert.deepEqual(ALERT_FOR_CODE, {
    EMPTY_CHAIN: 42,
    MALFORMED: 42,
    EXPIRED: 45,
    NOT_YET_VALID: 42,
    UNTRUSTED_ISSUER: 48,
    BAD_SIGNATURE: 51,
    NOT_A_CA: 48,
    WRONG_KEY_USAGE: 43,
    PATH_TOO_LONG: 48,
    UNSUPPORTED_CRITICAL_EXTENSION: 43,
    NAME_MISMATCH: 42,
  });
});
