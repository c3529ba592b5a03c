/**
 * Depot's certificate authority: one ECDSA P-256 root, stored in a directory,
 * that issues server certificates (SAN DNS/IP, serverAuth) and device certificates
 * (CN = LwM2M endpoint name, clientAuth), from a CSR or with a generated key pair.
 *
 * Files in the CA directory (0700):
 *   ca.key  PKCS#8 PEM private key, mode 0600
 *   ca.crt  PEM root certificate, mode 0644
 *
 * Nothing here logs; key material only leaves this module as the `privateKeyPem`
 * of a certificate issued with a generated key pair, for the caller to store.
 */
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, type KeyObject, type webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { PkiError } from './errors.js';
import { CERT_FILE_MODE, KEY_FILE_MODE, assertPrivateFile, ensurePrivateDir, exists, writeFileAtomic } from './files.js';
import { MAX_COMMON_NAME, checkEndpointName, parseServerName, type SubjectAltName } from './names.js';
import { TrustStore } from './verify.js';
import { nodeCrypto, x509 } from './x509.js';

type CryptoKey = webcrypto.CryptoKey;

export const CA_KEY_FILE = 'ca.key';
export const CA_CERT_FILE = 'ca.crt';

export const DEFAULT_CA_COMMON_NAME = 'Depot Root CA';
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
export const DEFAULT_DEVICE_VALIDITY_DAYS = 365;
export const DEFAULT_SERVER_VALIDITY_DAYS = 365;
/** notBefore is set this far in the past, for peers whose clocks run a little behind. */
export const DEFAULT_BACKDATE_SECONDS = 300;

const DAY_MS = 86_400_000;
const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Curves Depot certifies: the ones DTLS ECDHE-ECDSA suites use (RFC 8422). */
const SUPPORTED_CURVES: ReadonlySet<string> = new Set(['P-256', 'P-384']);

export interface CreateCaOptions {
  /** Subject CN of the root (default "Depot Root CA"). */
  commonName?: string;
  /** Optional subject O. */
  organization?: string;
  /** Lifetime of the root in days (default 3650). */
  validityDays?: number;
  /** Wall clock, injectable for tests (default: the system time). */
  now?: () => Date;
}

export interface LoadCaOptions {
  now?: () => Date;
}

export interface IssueOptions {
  /** Lifetime in days (default 365); must end before the CA certificate does. */
  validityDays?: number;
  /** A PKCS#10 request (PEM or DER); without one a P-256 key pair is generated. */
  csr?: string | Uint8Array;
}

export interface DeviceIssueOptions extends IssueOptions {
  /** LwM2M endpoint client name; becomes the subject CN. */
  endpoint: string;
}

export interface ServerIssueOptions extends IssueOptions {
  /** DNS names and/or IP addresses (at least one); the first also becomes the CN. */
  names: readonly string[];
}

export interface IssuedCertificate {
  /** The certificate, parsed by node:crypto. */
  certificate: X509Certificate;
  certificatePem: string;
  certificateDer: Buffer;
  /** PKCS#8 PEM of the generated key; absent when issued from a CSR. */
  privateKeyPem?: string;
  /** Serial number, upper-case hexadecimal (32 digits). */
  serialNumber: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 fingerprint, colon-separated hex (as node:crypto reports it). */
  fingerprint256: string;
}

export interface CaPaths {
  dir: string;
  keyPath: string;
  certPath: string;
}

/** Paths of the CA files in `dir`. */
export function caPaths(dir: string): CaPaths {
  return { dir, keyPath: join(dir, CA_KEY_FILE), certPath: join(dir, CA_CERT_FILE) };
}

/**
 * A loaded certificate authority. Create one with `CertificateAuthority.create`
 * (new root, in memory), `init` (new root, written to a directory) or `load`.
 */
export class CertificateAuthority {
  readonly #key: CryptoKey;
  readonly #keyObject: KeyObject;
  readonly #cert: x509.X509Certificate;
  readonly #nodeCert: X509Certificate;
  readonly #now: () => Date;

  private constructor(key: CryptoKey, keyObject: KeyObject, cert: x509.X509Certificate, now: () => Date) {
    this.#key = key;
    this.#keyObject = keyObject;
    this.#cert = cert;
    this.#nodeCert = new X509Certificate(Buffer.from(cert.rawData));
    this.#now = now;
  }

  /** Generates a new root key and self-signed certificate, in memory only. */
  static async create(options: CreateCaOptions = {}): Promise<CertificateAuthority> {
    const now = options.now ?? (() => new Date());
    const commonName = options.commonName ?? DEFAULT_CA_COMMON_NAME;
    checkCommonName(commonName, 'the CA common name');
    if (options.organization !== undefined) checkCommonName(options.organization, 'the CA organization');
    const { notBefore, notAfter } = validityWindow(now(), options.validityDays ?? DEFAULT_CA_VALIDITY_DAYS);

    const keys = (await nodeCrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']));
    const name: x509.JsonNameParams = [];
    if (options.organization !== undefined) name.push({ O: [{ utf8String: options.organization }] });
    name.push({ CN: [{ utf8String: commonName }] });

    const cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber: randomSerialNumber(),
        name: new x509.Name(name),
        notBefore,
        notAfter,
        keys,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          // Path length 0: this root signs end-entity certificates only.
          new x509.BasicConstraintsExtension(true, 0, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, nodeCrypto),
        ],
      },
      nodeCrypto,
    );
    const pkcs8 = Buffer.from(await nodeCrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const keyObject = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    pkcs8.fill(0);
    // Keep a non-extractable handle for signing.
    const signingKey = await importSigningKey(keyObject);
    return new CertificateAuthority(signingKey, keyObject, cert, now);
  }

  /**
   * Creates a new CA and writes it to `dir` (created 0700). Refuses (`CA_EXISTS`)
   * when `dir` already holds a CA key or certificate: replacing a root silently
   * would cut off every device that trusts it.
   */
  static async init(dir: string, options: CreateCaOptions = {}): Promise<CertificateAuthority> {
    const paths = caPaths(dir);
    if ((await exists(paths.keyPath)) || (await exists(paths.certPath))) {
      throw new PkiError('CA_EXISTS', `a CA already exists in ${dir} (remove it first to create a new root)`);
    }
    const ca = await CertificateAuthority.create(options);
    await ca.save(dir);
    return ca;
  }

  /** Loads the CA stored in `dir`, checking file permissions and that key and certificate belong together. */
  static async load(dir: string, options: LoadCaOptions = {}): Promise<CertificateAuthority> {
    const paths = caPaths(dir);
    const [hasKey, hasCert] = await Promise.all([exists(paths.keyPath), exists(paths.certPath)]);
    if (!hasKey && !hasCert) {
      throw new PkiError('CA_NOT_FOUND', `no CA in ${dir} (create one with "depot ca init")`);
    }
    if (!hasKey || !hasCert) {
      const missing = hasKey ? paths.certPath : paths.keyPath;
      throw new PkiError('CA_INCOMPLETE', `the CA in ${dir} is incomplete: ${missing} is missing`);
    }
    await assertPrivateFile(paths.keyPath);

    let keyObject: KeyObject;
    try {
      keyObject = createPrivateKey({ key: await readFile(paths.keyPath), format: 'pem' });
    } catch (err) {
      // The underlying message names the problem (e.g. an encrypted key), never the key.
      throw new PkiError('CA_INVALID', `cannot read the CA private key ${paths.keyPath}: ${errorText(err)}`, { cause: err });
    }
    if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new PkiError('CA_INVALID', `${paths.keyPath} is not an ECDSA P-256 key`);
    }

    let cert: x509.X509Certificate;
    try {
      cert = new x509.X509Certificate(await readFile(paths.certPath, 'utf8'));
    } catch (err) {
      throw new PkiError('CA_INVALID', `cannot parse the CA certificate ${paths.certPath}: ${errorText(err)}`, { cause: err });
    }
    const spkiFromKey = createPublicKey(keyObject).export({ type: 'spki', format: 'der' });
    if (!spkiFromKey.equals(Buffer.from(cert.publicKey.rawData))) {
      throw new PkiError('CA_INVALID', `${paths.keyPath} and ${paths.certPath} do not belong together (different public keys)`);
    }
    const basic = cert.getExtension(x509.BasicConstraintsExtension);
    if (!basic?.ca) throw new PkiError('CA_INVALID', `${paths.certPath} is not a CA certificate (basicConstraints CA is not set)`);
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      throw new PkiError('CA_INVALID', `${paths.certPath} may not sign certificates (keyUsage lacks keyCertSign)`);
    }
    return new CertificateAuthority(await importSigningKey(keyObject), keyObject, cert, options.now ?? (() => new Date()));
  }

  /** Writes the key (0600) and certificate to `dir` (0700), each atomically. */
  async save(dir: string): Promise<void> {
    const paths = caPaths(dir);
    await ensurePrivateDir(dir);
    const keyPem = this.#keyObject.export({ type: 'pkcs8', format: 'pem' });
    // Key first: a crash between the two leaves "key without certificate", which load reports.
    await writeFileAtomic(paths.keyPath, keyPem, { mode: KEY_FILE_MODE });
    await writeFileAtomic(paths.certPath, this.exportRoot('pem'), { mode: CERT_FILE_MODE });
  }

  /** The root certificate. */
  get certificate(): X509Certificate {
    return this.#nodeCert;
  }

  get notBefore(): Date {
    return this.#cert.notBefore;
  }

  get notAfter(): Date {
    return this.#cert.notAfter;
  }

  /** The root certificate as PEM (text) or DER (bytes). */
  exportRoot(format: 'pem'): string;
  exportRoot(format: 'der'): Buffer;
  exportRoot(format: 'pem' | 'der'): string | Buffer;
  exportRoot(format: 'pem' | 'der'): string | Buffer {
    if (format === 'der') return Buffer.from(this.#nodeCert.raw);
    return this.#cert.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n';
  }

  /** A trust store holding just this root, for verifying what it issued. */
  trustStore(): TrustStore {
    return new TrustStore([this.#nodeCert]);
  }

  /**
   * Issues a device certificate: subject CN = the endpoint name, EKU clientAuth,
   * keyUsage digitalSignature, CA:FALSE. With a CSR, the CSR's signature must verify
   * and a CN in its subject, if any, must equal the endpoint name; nothing else is
   * taken from the CSR but its public key.
   */
  async issueDeviceCertificate(options: DeviceIssueOptions): Promise<IssuedCertificate> {
    const endpoint = checkEndpointName(options.endpoint);
    const subject = new x509.Name([{ CN: [{ utf8String: endpoint }] }]);
    return this.#issue(options, subject, [], x509.ExtendedKeyUsage.clientAuth, (csr) => {
      const cns = csr.subjectName.getField('CN');
      if (cns.length > 0 && !(cns.length === 1 && cns[0] === endpoint)) {
        throw new PkiError(
          'CSR_SUBJECT_MISMATCH',
          `the CSR subject CN (${cns.map((c) => JSON.stringify(c)).join(', ')}) does not match the endpoint name ${JSON.stringify(endpoint)}`,
        );
      }
    });
  }

  /**
   * Issues a server certificate: SAN with the given DNS names / IP addresses,
   * EKU serverAuth, keyUsage digitalSignature, CA:FALSE. The subject is CN = the
   * first name when it fits in a CN (64 characters), else empty with a critical SAN.
   * A CSR's subject and requested extensions are ignored: the names given here decide.
   */
  async issueServerCertificate(options: ServerIssueOptions): Promise<IssuedCertificate> {
    if (options.names.length === 0) throw new PkiError('INVALID_NAME', 'a server certificate needs at least one DNS name or IP address');
    const sans: SubjectAltName[] = [];
    for (const raw of options.names) {
      const san = parseServerName(raw);
      if (!sans.some((s) => s.type === san.type && s.value === san.value)) sans.push(san);
    }
    const first = options.names[0]!.trim();
    const cn = sans[0]!.type === 'dns' ? sans[0]!.value : first.replace(/^\[(.*)\]$/, '$1');
    const subject = cn.length <= MAX_COMMON_NAME ? new x509.Name([{ CN: [{ utf8String: cn }] }]) : new x509.Name([]);
    const sanExtension = new x509.SubjectAlternativeNameExtension(sans, cn.length > MAX_COMMON_NAME);
    return this.#issue(options, subject, [sanExtension], x509.ExtendedKeyUsage.serverAuth);
  }

  async #issue(
    options: IssueOptions,
    subject: x509.Name,
    extra: x509.Extension[],
    purpose: x509.ExtendedKeyUsage,
    checkCsr?: (csr: x509.Pkcs10CertificateRequest) => void,
  ): Promise<IssuedCertificate> {
    const validityDays = options.validityDays ?? (purpose === x509.ExtendedKeyUsage.serverAuth ? DEFAULT_SERVER_VALIDITY_DAYS : DEFAULT_DEVICE_VALIDITY_DAYS);
    const window = validityWindow(this.#now(), validityDays);
    const notAfter = window.notAfter;
    const notBefore = window.notBefore < this.#cert.notBefore ? this.#cert.notBefore : window.notBefore;
    if (notAfter > this.#cert.notAfter) {
      throw new PkiError(
        'INVALID_VALIDITY',
        `the certificate would be valid until ${notAfter.toISOString()}, after the CA certificate expires (${this.#cert.notAfter.toISOString()}); use fewer days`,
      );
    }
    if (notAfter <= notBefore) {
      throw new PkiError('INVALID_VALIDITY', `the CA certificate expires (${this.#cert.notAfter.toISOString()}) before the certificate would start`);
    }

    let publicKey: x509.PublicKey;
    let privateKeyPem: string | undefined;
    if (options.csr !== undefined) {
      const csr = await parseAndVerifyCsr(options.csr);
      checkCsr?.(csr);
      publicKey = csr.publicKey;
    } else {
      const keys = (await nodeCrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']));
      publicKey = await x509.PublicKey.create(keys.publicKey, nodeCrypto);
      const pkcs8 = Buffer.from(await nodeCrypto.subtle.exportKey('pkcs8', keys.privateKey));
      privateKeyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
      pkcs8.fill(0);
    }

    const caKeyId = this.#cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: randomSerialNumber(),
        subject,
        issuer: this.#cert.subjectName,
        notBefore,
        notAfter,
        publicKey,
        signingKey: this.#key,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([purpose], false),
          ...extra,
          await x509.SubjectKeyIdentifierExtension.create(publicKey, false, nodeCrypto),
          caKeyId !== undefined
            ? new x509.AuthorityKeyIdentifierExtension(caKeyId, false)
            : await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey, false, nodeCrypto),
        ],
      },
      nodeCrypto,
    );
    const der = Buffer.from(cert.rawData);
    const nodeCert = new X509Certificate(der);
    // Self-check with an independent implementation (OpenSSL through node:crypto).
    if (!nodeCert.checkIssued(this.#nodeCert) || !nodeCert.verify(this.#nodeCert.publicKey)) {
      throw new PkiError('CA_INVALID', 'internal error: the issued certificate does not verify with the CA certificate');
    }
    const issued: IssuedCertificate = {
      certificate: nodeCert,
      certificatePem: cert.toString('pem').replace(/\r\n/g, '\n').trimEnd() + '\n',
      certificateDer: der,
      serialNumber: nodeCert.serialNumber.toUpperCase(),
      subject: nodeCert.subject,
      notBefore,
      notAfter,
      fingerprint256: nodeCert.fingerprint256,
    };
    if (privateKeyPem !== undefined) issued.privateKeyPem = privateKeyPem;
    return issued;
  }
}

/**
 * Parses a PKCS#10 request (PEM or DER) and checks it: a supported ECDSA key
 * (P-256 or P-384) and a signature that verifies with that key.
 */
export async function parseAndVerifyCsr(input: string | Uint8Array): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    const text = typeof input === 'string' ? input : looksLikePem(input) ? Buffer.from(input).toString('utf8') : undefined;
    csr = text !== undefined ? new x509.Pkcs10CertificateRequest(text) : new x509.Pkcs10CertificateRequest(Buffer.from(input as Uint8Array));
    // Touch the lazily parsed parts so a malformed request fails here.
    void csr.publicKey.algorithm;
    void csr.signatureAlgorithm;
  } catch (err) {
    throw new PkiError('BAD_CSR', `the certificate signing request cannot be parsed: ${errorText(err)}`, { cause: err });
  }
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve === undefined || !SUPPORTED_CURVES.has(algorithm.namedCurve)) {
    const what = algorithm.namedCurve ? `${algorithm.name ?? 'unknown'} ${algorithm.namedCurve}` : (algorithm.name ?? 'unknown');
    throw new PkiError('UNSUPPORTED_KEY', `the CSR's public key is ${what}; Depot certifies ECDSA P-256 or P-384 keys only (DTLS ECDHE-ECDSA)`);
  }
  let valid: boolean;
  try {
    valid = await csr.verify(nodeCrypto);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new PkiError('CSR_SIGNATURE', 'the CSR signature does not verify with its public key (corrupted or tampered request)');
  }
  return csr;
}

/**
 * A random positive 16-byte serial number (RFC 5280 4.1.2.2: positive, at most
 * 20 octets; CA/B Forum: at least 64 random bits). The top bit is cleared so the
 * DER INTEGER needs no padding byte, and the first byte is non-zero so the serial
 * is always exactly 16 bytes: 126 random bits at least.
 */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

function validityWindow(now: Date, days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) {
    throw new PkiError('INVALID_VALIDITY', `the validity must be a positive number of days (got ${days})`);
  }
  // X.509 times have one-second resolution.
  const start = Math.floor(now.getTime() / 1000) * 1000;
  const notBefore = new Date(start - DEFAULT_BACKDATE_SECONDS * 1000);
  const notAfter = new Date(start + Math.round(days * DAY_MS));
  if (notAfter.getUTCFullYear() > 9999) throw new PkiError('INVALID_VALIDITY', `a validity of ${days} days ends after the year 9999`);
  return { notBefore, notAfter };
}

function checkCommonName(value: string, what: string): void {
  if (value.length === 0 || [...value].length > MAX_COMMON_NAME) {
    throw new PkiError('INVALID_NAME', `${what} must be 1-${MAX_COMMON_NAME} characters`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/u.test(value)) throw new PkiError('INVALID_NAME', `${what} contains control characters`);
}

async function importSigningKey(keyObject: KeyObject): Promise<CryptoKey> {
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  try {
    return await nodeCrypto.subtle.importKey('pkcs8', pkcs8, EC_ALGORITHM, false, ['sign']);
  } finally {
    pkcs8.fill(0);
  }
}

function looksLikePem(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.subarray(0, 64)).toString('latin1').includes('-----BEGIN');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
