/**
 * Certificates made by `depot ca` (the built CLI, dist/src/cli/main.js) used with libcoap's DTLS
 * tools, OpenSSL and GnuTLS builds, in both roles:
 *   - coap-server-{openssl,gnutls} with Depot's server certificate, trusting Depot's root, and
 *     `depot coap get coaps://...` presenting a Depot-issued device certificate;
 *   - Depot's CoapServer on a DtlsTransport (Depot's server certificate, Depot's root as trust
 *     root, client certificate required) and coap-client-{openssl,gnutls} with the device certificate;
 *   - a certificate from another CA (made with the openssl CLI) refused in both directions.
 * Peers missing → the tests fail (never skip). Every wait is bounded; processes are killed in `after`.
 */
import { after, before, describe, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoapServer } from '../../src/coap/server.js';
import { Code, ContentFormat } from '../../src/coap/codes.js';
import type { PeerIdentity } from '../../src/coap/transport.js';
import { certificateOf, readCertificates } from '../../src/cli/dtls-options.js';
import { DtlsError } from '../../src/dtls/connection.js';
import { DtlsTransport } from '../../src/dtls/transport.js';
import { PeerProcess, requireExecutable, runProcess, type ProcessResult } from '../support/peer-process.js';
import { freeUdpPortPair, waitForCoapServer } from '../support/udp-probe.js';

const HOST = '127.0.0.1';
const DEVICE = 'dev-cert-1';
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The alert a validator sends for a chain that leads to no trusted root (RFC 5246 §7.2.2). */
const UNKNOWN_CA = 48;
const BODY = 'hello from depot';


interface Files {
  dir: string;
  root: string;
  serverCert: string;
  serverKey: string;
  deviceCert: string;
  deviceKey: string;
  otherRoot: string;
  otherServerCert: string;
  otherServerKey: string;
  otherDeviceCert: string;
  otherDeviceKey: string;
}

void describe('depot ca certificates with libcoap (RFC 5280 paths, RFC 6347 DTLS 1.2, RFC 7252 §9.1.3.3)', () => {
  const processes: PeerProcess[] = [];
  const closers: (() => Promise<void>)[] = [];
  let files: Files | undefined;
  const f = (): Files => {
    assert.ok(files, 'the PKI was not set up (see the first failure)');
    return files;
  };

  async function cli(args: string[], timeoutMs = 30_000): Promise<ProcessResult> {
    return runProcess(process.execPath, [CLI, ...args], { timeoutMs });
  }

  async function cliOk(args: string[]): Promise<ProcessResult> {
    const r = await cli(args);
    assert.equal(r.code, 0, `depot ${args.join(' ')} failed:\n${r.output}`);
    return r;
  }

  function openssl(dir: string, args: string[]): Promise<ProcessResult> {
    return runProcess('openssl', args, { cwd: dir, timeoutMs: 30_000 }).then((r) => {
      assert.equal(r.code, 0, `openssl ${args.join(' ')} failed:\n${r.output}`);
      return r;
    });
  }

  before(async () => {
    assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" first`);
    requireExecutable('openssl');
    const dir = mkdtempSync(join(tmpdir(), 'depot-ca-interop-'));
    const dataDir = join(dir, 'data');
    const out = join(dir, 'issued');
    await cliOk(['ca', 'init', '--data-dir', dataDir]);
    await cliOk(['ca', 'issue', '--data-dir', dataDir, '--server', HOST, '--out', out]);
    await cliOk(['ca', 'issue', '--data-dir', dataDir, '--device', DEVICE, '--out', out]);
    await cliOk(['ca', 'export', '--data-dir', dataDir, '--out', join(dir, 'root.pem')]);

    // Another CA, unrelated to Depot's, and leaf certificates from it (the openssl CLI).
    await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'other-ca.key']);
    await openssl(dir, ['req', '-x509', '-new', '-key', 'other-ca.key', '-subj', '/CN=Other Root CA', '-days', '2', '-out', 'other-ca.pem',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    for (const [name, cn, usage] of [['other-server', HOST, 'serverAuth'], ['other-device', DEVICE, 'clientAuth']] as const) {
      await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
      await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
      // The same profile as Depot's leaves (docs/pki.md), so only the issuer differs.
      const extensions = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', `extendedKeyUsage=${usage}`];
      if (usage === 'serverAuth') extensions.push(`subjectAltName=IP:${HOST}`);
      writeFileSync(join(dir, `${name}.ext`), extensions.join('\n') + '\n');
      await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'other-ca.pem', '-CAkey', 'other-ca.key', '-CAcreateserial', '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
    }
    files = {
      dir,
      root: join(dir, 'root.pem'),
      serverCert: join(out, `${HOST}.crt`),
      serverKey: join(out, `${HOST}.key`),
      deviceCert: join(out, `${DEVICE}.crt`),
      deviceKey: join(out, `${DEVICE}.key`),
      otherRoot: join(dir, 'other-ca.pem'),
      otherServerCert: join(dir, 'other-server.pem'),
      otherServerKey: join(dir, 'other-server.key'),
      otherDeviceCert: join(dir, 'other-device.pem'),
      otherDeviceKey: join(dir, 'other-device.key'),
    };
  });

  after(async () => {
    for (const p of processes) await p.stop(1000);
    for (const close of closers) await close();
    if (files) rmSync(files.dir, { recursive: true, force: true });
  });

  /** libcoap's server with the given certificate, trusting `trustFile` (-C or -R); resolves with its DTLS port. */
  async function libcoapServer(flavour: string, cert: string, key: string, trustFlag: '-C' | '-R', trustFile: string): Promise<{ port: number; server: PeerProcess }> {
    const binary = requireExecutable(`coap-server-${flavour}`);
    const port = await freeUdpPortPair();
    const server = new PeerProcess(binary, ['-A', HOST, '-p', String(port), '-c', cert, '-j', key, trustFlag, trustFile]);
    processes.push(server);
    // Up when its plain CoAP port (P) answers a ping; DTLS is on P+1.
    await waitForCoapServer(HOST, port, 10_000, () => (server.exited ? `coap-server-${flavour} exited:\n${server.output}` : undefined));
    return { port: port + 1, server };
  }

  function depotGet(port: number, cert: string, key: string, ca: string): Promise<ProcessResult> {
    return cli(['coap', 'get', `coaps://${HOST}:${port}/`, '--cert', cert, '--key', key, '--ca', ca, '--timeout', '10000'], 40_000);
  }

  interface DepotServer {
    port: number;
    identities: (PeerIdentity | undefined)[];
    errors: Error[];
  }

  /** Depot's CoapServer on a DtlsTransport: `cert`/`key` (loaded as `depot serve` does), `root` as trust root, client certificate required. */
  async function depotServer(cert: string, key: string, root: string): Promise<DepotServer> {
    const certificate = certificateOf({ cert, key });
    assert.ok(certificate);
    const transport = await DtlsTransport.bind({ host: HOST, server: { certificate, trustRoots: readCertificates(root), clientCertificate: 'require' } });
    // The CoapServer installs its own error listener; tee what it receives.
    const errors: Error[] = [];
    const setErrorListener = transport.setErrorListener.bind(transport);
    transport.setErrorListener = (listener) =>
      setErrorListener((peer, error) => {
        errors.push(error);
        listener(peer, error);
      });
    const server = new CoapServer({ transport });
    closers.push(() => server.close());
    const identities: (PeerIdentity | undefined)[] = [];
    server.resource('/whoami', {
      get: (request) => {
        identities.push(request.peer.identity);
        const who = request.peer.identity?.kind === 'x509' ? request.peer.identity.commonName : 'nobody';
        return { code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: `${BODY} to ${who}` };
      },
    });
    return { port: transport.address().port, identities, errors };
  }

  function libcoapGet(flavour: string, port: number, cert: string, key: string, root: string): Promise<ProcessResult> {
    const binary = requireExecutable(`coap-client-${flavour}`);
    return runProcess(binary, ['-B', '5', '-c', cert, '-j', key, '-R', root, '-m', 'get', `coaps://${HOST}:${port}/whoami`], { timeoutMs: 30_000 });
  }

  async function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  const alertOf = (errors: Error[], code: 'alert_sent' | 'alert_received'): DtlsError | undefined =>
    errors.find((e): e is DtlsError => e instanceof DtlsError && e.code === code && e.alert === UNKNOWN_CA);

  void test('RFC 5280 §6: an independent validator (openssl verify -x509_strict) accepts the depot ca chain for its purposes', async () => {
    const { dir, root, serverCert, deviceCert, otherDeviceCert } = f();
    const server = await runProcess('openssl', ['verify', '-x509_strict', '-CAfile', root, '-purpose', 'sslserver', serverCert], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(server.code, 0, server.output);
    const device = await runProcess('openssl', ['verify', '-x509_strict', '-CAfile', root, '-purpose', 'sslclient', deviceCert], { cwd: dir, timeoutMs: 30_000 });
    assert.equal(device.code, 0, device.output);
    // And the other CA's certificate does not chain to Depot's root (the premise of the refusal tests).
    const other = await runProcess('openssl', ['verify', '-CAfile', root, otherDeviceCert], { cwd: dir, timeoutMs: 30_000 });
    assert.notEqual(other.code, 0, other.output);
    assert.equal(new X509Certificate(readFileSync(deviceCert)).subject, `CN=${DEVICE}`);
    assert.ok(new X509Certificate(readFileSync(serverCert)).checkIP(HOST), 'the server certificate names 127.0.0.1 in subjectAltName');
  });

  for (const flavour of ['openssl', 'gnutls']) {
    for (const trustFlag of ['-C', '-R'] as const) {
      void test(`RFC 6347 / RFC 7252 §9.1.3.3: coap-server-${flavour} with the depot ca server certificate (${trustFlag} root) accepts depot coap with the device certificate: 2.05`, async () => {
        const { root, serverCert, serverKey, deviceCert, deviceKey } = f();
        const { port, server } = await libcoapServer(flavour, serverCert, serverKey, trustFlag, root);
        const r = await depotGet(port, deviceCert, deviceKey, root);
        assert.equal(r.code, 0, `depot coap get failed:\n${r.output}\nserver:\n${server.output}`);
        assert.match(r.stderr, /^2\.05 Content/m);
        assert.match(r.stdout.toString('utf8'), /libcoap/);
        await server.stop(1000);
      });
    }

    void test(`RFC 6347 / RFC 5280: coap-client-${flavour} with the depot ca device certificate -> Depot CoapServer (client certificate required): 2.05, handler sees CN ${DEVICE}`, async () => {
      const { root, serverCert, serverKey, deviceCert, deviceKey } = f();
      const depot = await depotServer(serverCert, serverKey, root);
      const r = await libcoapGet(flavour, depot.port, deviceCert, deviceKey, root);
      assert.match(r.output, new RegExp(`${BODY} to ${DEVICE}`), `coap-client-${flavour} did not get the response:\n${r.output}\nDepot errors: ${depot.errors.map((e) => e.message).join('; ')}`);
      assert.equal(depot.identities.length, 1, 'exactly one request reached the handler');
      const identity = depot.identities[0];
      assert.equal(identity?.kind, 'x509');
      if (identity?.kind === 'x509') {
        assert.equal(identity.commonName, DEVICE);
        assert.equal(identity.subject, `CN=${DEVICE}`);
        assert.deepEqual(Buffer.from(identity.certificateDer), Buffer.from(new X509Certificate(readFileSync(deviceCert)).raw));
      }
      assert.deepEqual(depot.errors.map((e) => e.message), []);
    });

    void test(`RFC 5280 §6.1 / RFC 6347: coap-server-${flavour} trusting the depot root refuses a device certificate from another CA (depot coap reports unknown_ca)`, async () => {
      const { root, serverCert, serverKey, otherDeviceCert, otherDeviceKey } = f();
      const { port, server } = await libcoapServer(flavour, serverCert, serverKey, '-R', root);
      const r = await depotGet(port, otherDeviceCert, otherDeviceKey, root);
      assert.equal(r.code, 1, `depot coap get should fail:\n${r.output}`);
      assert.match(r.stderr, /depot coap: peer sent fatal alert unknown_ca/);
      assert.doesNotMatch(r.output, /2\.05/);
      await waitFor(() => (/unknown|issuer/i.test(server.output) ? true : undefined), 5000, `coap-server-${flavour} to log the refusal`);
      await server.stop(1000);
    });

    void test(`RFC 5280 §6.1 / RFC 6347: depot coap trusting the depot root refuses a coap-server-${flavour} certificate from another CA (unknown_ca)`, async () => {
      const { root, otherRoot, otherServerCert, otherServerKey, deviceCert, deviceKey } = f();
      const { port, server } = await libcoapServer(flavour, otherServerCert, otherServerKey, '-C', otherRoot);
      const r = await depotGet(port, deviceCert, deviceKey, root);
      assert.equal(r.code, 1, `depot coap get should fail:\n${r.output}`);
      assert.match(r.stderr, /depot coap: unknown_ca: certificate chain does not lead to a trusted root/);
      assert.doesNotMatch(r.output, /2\.05/);
      await waitFor(() => (/unknown/i.test(server.output) ? true : undefined), 5000, `coap-server-${flavour} to log the alert it received`);
      await server.stop(1000);
    });

    void test(`RFC 5280 §6.1 / RFC 6347: Depot CoapServer trusting the depot root refuses a coap-client-${flavour} certificate from another CA (sends unknown_ca)`, async () => {
      const { root, serverCert, serverKey, otherDeviceCert, otherDeviceKey } = f();
      const depot = await depotServer(serverCert, serverKey, root);
      const r = await libcoapGet(flavour, depot.port, otherDeviceCert, otherDeviceKey, root);
      const refusal = await waitFor(() => alertOf(depot.errors, 'alert_sent'), 10_000, 'the Depot server to report the refusal');
      assert.match(refusal.message, /unknown_ca: certificate chain does not lead to a trusted root/);
      assert.deepEqual(depot.identities, [], 'no request reached the handler');
      assert.doesNotMatch(r.output, new RegExp(BODY));
    });

    void test(`RFC 5280 §6.1 / RFC 6347: coap-client-${flavour} trusting the depot root refuses a Depot server certificate from another CA (Depot receives unknown_ca)`, async () => {
      const { root, otherRoot, otherServerCert, otherServerKey, deviceCert, deviceKey } = f();
      const depot = await depotServer(otherServerCert, otherServerKey, otherRoot);
      const r = await libcoapGet(flavour, depot.port, deviceCert, deviceKey, root);
      const refusal = await waitFor(() => alertOf(depot.errors, 'alert_received'), 10_000, `the Depot server to receive coap-client-${flavour}'s alert`);
      assert.match(refusal.message, /unknown_ca/);
      assert.deepEqual(depot.identities, [], 'no request reached the handler');
      assert.doesNotMatch(r.output, new RegExp(BODY));
      assert.match(r.output, /unknown|issuer/i, `coap-client-${flavour} should say why:\n${r.output}`);
    });
  }
});
