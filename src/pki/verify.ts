/**
 * Certificate chain validation against a trust store, for DTLS (and anything else
 * that receives certificates). Errors are values with stable codes, each with the
 * TLS alert a handshake should send for it.
 *
 * Signatures and issuer matching use node:crypto's X509Certificate (OpenSSL);
 * validity dates, basicConstraints and keyUsage bits come from @peculiar/x509's
 * parse of the same DER, since node:crypto does not expose them.
 *
 * Not covered: revocation (CRL/OCSP), name constraints and certificate policies
 * (a certificate that marks those critical is refused, as RFC 5280 requires of an
 * implementation that does not process them).
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

import { x509 } from './x509.js';

export type CertificateInput = X509Certificate | Uint8Array | string;

export type ChainErrorCode =
  /** No certificate at all. */
  | 'EMPTY_CHAIN'
  /** A certificate that cannot be parsed. */
  | 'MALFORMED'
  /** Past its notAfter. */
  | 'EXPIRED'
  /** Before its notBefore. */
  | 'NOT_YET_VALID'
  /** No trust anchor (or supplied intermediate) issued this certificate. */
  | 'UNTRUSTED_ISSUER'
  /** The issuer was found by name but the signature does not verify with its key. */
  | 'BAD_SIGNATURE'
  /** An issuer that is not a CA (basicConstraints CA not set). */
  | 'NOT_A_CA'
  /** keyUsage / extendedKeyUsage forbid this use (issuer without keyCertSign, leaf without digitalSignature or the asked purpose). */
  | 'WRONG_KEY_USAGE'
  /** More intermediates than an issuer's pathLenConstraint allows, or a chain longer than maxDepth. */
  | 'PATH_TOO_LONG'
  /** A critical extension this verifier does not process. */
  | 'UNSUPPORTED_CRITICAL_EXTENSION'
  /** The leaf does not carry the expected host name / IP address / endpoint name. */
  | 'NAME_MISMATCH';

/** TLS AlertDescription values (RFC 5246 7.2.2) used for certificate errors. */
export const TlsAlert = {
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_expired: 45,
  unknown_ca: 48,
  decrypt_error: 51,
} as const;

export type TlsAlertName = keyof typeof TlsAlert;

/** The alert for each error code; the same choices as OpenSSL's ssl_verify_alarm_type. */
export const ALERT_NAME_FOR_CODE: Readonly<Record<ChainErrorCode, TlsAlertName>> = {
  EMPTY_CHAIN: 'bad_certificate',
  MALFORMED: 'bad_certificate',
  EXPIRED: 'certificate_expired',
  NOT_YET_VALID: 'bad_certificate',
  UNTRUSTED_ISSUER: 'unknown_ca',
  BAD_SIGNATURE: 'decrypt_error',
  NOT_A_CA: 'unknown_ca',
  WRONG_KEY_USAGE: 'unsupported_certificate',
  PATH_TOO_LONG: 'unknown_ca',
  UNSUPPORTED_CRITICAL_EXTENSION: 'unsupported_certificate',
  NAME_MISMATCH: 'bad_certificate',
};

/** ALERT_NAME_FOR_CODE as numeric AlertDescription values. */
export const ALERT_FOR_CODE: Readonly<Record<ChainErrorCode, number>> = Object.fromEntries(
  Object.entries(ALERT_NAME_FOR_CODE).map(([code, name]) => [code, TlsAlert[name]]),
) as Record<ChainErrorCode, number>;

export interface ChainError {
  code: ChainErrorCode;
  /** Operator-readable explanation naming the certificate. */
  message: string;
  /** Position of the offending certificate: 0 = leaf, 1 = its issuer, ... (the trust anchor counts too). */
  depth: number;
  /** Subject of the offending certificate, when there is one. */
  subject?: string;
  /** TLS AlertDescription to send (numeric, RFC 5246 7.2.2). */
  alert: number;
  /** The same alert by its RFC name, e.g. "unknown_ca". */
  alertName: TlsAlertName;
}

export type ChainResult =
  | {
      ok: true;
      /** The validated path: leaf first, trust anchor last. */
      path: X509Certificate[];
      leaf: X509Certificate;
      anchor: X509Certificate;
    }
  | { ok: false; error: ChainError };

export type Purpose = 'serverAuth' | 'clientAuth';

export interface VerifyChainOptions {
  /** Time of validation, a Date or epoch milliseconds (default: now). */
  at?: Date | number;
  /**
   * What the leaf is used for. When set, the leaf's keyUsage (if present) must allow
   * digitalSignature and its extendedKeyUsage (if present) must list the purpose.
   */
  purpose?: Purpose;
  /** A DNS name or IP address the leaf must be valid for (SAN, CN as fallback for DNS). */
  host?: string;
  /** An LwM2M endpoint name the leaf's subject CN must equal exactly. */
  endpoint?: string;
  /** Longest accepted path including leaf and anchor (default 8). */
  maxDepth?: number;
}

const OID_ANY_EKU = '2.5.29.37.0';
const EKU_OID: Record<Purpose, string> = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' };
/** Extensions this verifier processes or may safely ignore when marked critical. */
const KNOWN_CRITICAL: ReadonlySet<string> = new Set([
  '2.5.29.19', // basicConstraints
  '2.5.29.15', // keyUsage
  '2.5.29.37', // extendedKeyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
]);

interface Parsed {
  node: X509Certificate;
  peculiar: x509.X509Certificate;
}

function parse(input: CertificateInput): Parsed {
  const node = input instanceof X509Certificate ? input : new X509Certificate(typeof input === 'string' ? input : Buffer.from(input));
  const peculiar = new x509.X509Certificate(new Uint8Array(node.raw));
  // Decode the extensions now, so a malformed one is reported as MALFORMED.
  void peculiar.extensions;
  return { node, peculiar };
}

/** A set of trusted root certificates. */
export class TrustStore {
  readonly #anchors: Parsed[] = [];

  constructor(anchors: Iterable<CertificateInput> = []) {
    for (const a of anchors) this.add(a);
  }

  /** Reads every certificate of a PEM bundle. */
  static fromPem(bundle: string): TrustStore {
    const blocks = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new Error('no PEM certificate found in the trust bundle');
    return new TrustStore(blocks);
  }

  /** Adds a trust anchor (PEM, DER or a parsed certificate); duplicates are ignored. */
  add(anchor: CertificateInput): void {
    const parsed = parse(anchor);
    if (!this.#anchors.some((a) => a.node.raw.equals(parsed.node.raw))) this.#anchors.push(parsed);
  }

  get anchors(): readonly X509Certificate[] {
    return this.#anchors.map((a) => a.node);
  }

  get size(): number {
    return this.#anchors.length;
  }

  /** Same as `verifyChain(chain, this, options)`. */
  verify(chain: readonly CertificateInput[], options: VerifyChainOptions = {}): ChainResult {
    return verifyChain(chain, this, options);
  }

  /** @internal */
  parsedAnchors(): readonly Parsed[] {
    return this.#anchors;
  }
}

function fail(code: ChainErrorCode, depth: number, message: string, cert?: Parsed): ChainResult {
  const error: ChainError = { code, message, depth, alert: ALERT_FOR_CODE[code], alertName: ALERT_NAME_FOR_CODE[code] };
  if (cert) error.subject = cert.node.subject.replace(/\n/g, ', ');
  return { ok: false, error };
}

function describe(cert: Parsed): string {
  return `"${cert.node.subject.replace(/\n/g, ', ') || '(empty subject)'}"`;
}

function signatureVerifies(cert: Parsed, issuer: Parsed): boolean {
  try {
    return cert.node.verify(issuer.node.publicKey);
  } catch {
    // An issuer key node:crypto cannot use for this signature algorithm.
    return false;
  }
}

function isSelfIssued(cert: Parsed): boolean {
  return cert.node.subject === cert.node.issuer;
}

/**
 * Validates `chain` (leaf first, then intermediates in any order; a trailing copy of
 * the root is allowed) against the trust anchors of `trust`. A leaf that is itself in
 * the trust store (a pinned certificate) is trusted directly.
 *
 * Checks, in this order, reporting the first failure: path building and signatures
 * (UNTRUSTED_ISSUER, BAD_SIGNATURE, NOT_A_CA, WRONG_KEY_USAGE on an issuer,
 * PATH_TOO_LONG), validity period of every certificate on the path including the
 * anchor (NOT_YET_VALID, EXPIRED), unknown critical extensions, then the leaf's
 * purpose (WRONG_KEY_USAGE) and names (NAME_MISMATCH).
 */
export function verifyChain(chain: readonly CertificateInput[], trust: TrustStore, options: VerifyChainOptions = {}): ChainResult {
  if (chain.length === 0) return fail('EMPTY_CHAIN', 0, 'no certificate was presented');
  const at = options.at === undefined ? new Date() : new Date(options.at);
  const maxDepth = options.maxDepth ?? 8;

  const supplied: Parsed[] = [];
  for (let i = 0; i < chain.length; i++) {
    try {
      supplied.push(parse(chain[i]!));
    } catch (err) {
      return fail('MALFORMED', i, `certificate ${i} of the chain cannot be parsed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const anchors = trust.parsedAnchors();

  // 1. Build the path from the leaf to a trust anchor, verifying each signature.
  const path: Parsed[] = [supplied[0]!];
  const used = new Set<Parsed>([supplied[0]!]);
  let anchor: Parsed | undefined;
  let current = supplied[0]!;
  // A certificate that is itself in the trust store ends the path: a chain that ends
  // with a copy of the root, or a leaf trusted directly (a pinned self-signed
  // certificate; its validity and purpose are still checked below).
  const asAnchor = (c: Parsed): Parsed | undefined => anchors.find((a) => a.node.raw.equals(c.node.raw));
  while (anchor === undefined) {
    const depth = path.length - 1;
    const same = asAnchor(current);
    if (same) {
      path[depth] = same;
      anchor = same;
      break;
    }
    if (path.length >= maxDepth) {
      return fail('PATH_TOO_LONG', depth, `the chain is longer than ${maxDepth} certificates without reaching a trust anchor`, current);
    }
    const byName = (c: Parsed): boolean => c !== current && (c.node.subject === current.node.issuer || current.node.checkIssued(c.node));
    const candidates = [
      ...anchors.filter(byName).map((c) => ({ c, trusted: true })),
      ...supplied.filter((c) => !used.has(c) && byName(c)).map((c) => ({ c, trusted: false })),
    ];
    if (candidates.length === 0) {
      const why = isSelfIssued(current)
        ? `${describe(current)} is self-signed and not in the trust store`
        : `${describe(current)} was issued by "${current.node.issuer.replace(/\n/g, ', ')}", which is not in the trust store`;
      return fail('UNTRUSTED_ISSUER', depth, why, current);
    }
    const found = candidates.find(({ c }) => signatureVerifies(current, c));
    if (!found) {
      return fail('BAD_SIGNATURE', depth, `the signature of ${describe(current)} does not verify with its issuer's key`, current);
    }
    const issuer = found.c;
    const issuerDepth = depth + 1;
    const basic = issuer.peculiar.getExtension(x509.BasicConstraintsExtension);
    if (!basic?.ca) {
      return fail('NOT_A_CA', issuerDepth, `the issuer ${describe(issuer)} is not a CA (basicConstraints CA is not set)`, issuer);
    }
    const usage = issuer.peculiar.getExtension(x509.KeyUsagesExtension);
    if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
      return fail('WRONG_KEY_USAGE', issuerDepth, `the issuer ${describe(issuer)} may not sign certificates (keyUsage lacks keyCertSign)`, issuer);
    }
    if (basic.pathLength !== undefined) {
      // Non-self-issued intermediates between this issuer and the leaf (RFC 5280 4.2.1.9).
      const intermediates = path.slice(1).filter((c) => !isSelfIssued(c)).length;
      if (intermediates > basic.pathLength) {
        return fail(
          'PATH_TOO_LONG',
          issuerDepth,
          `the issuer ${describe(issuer)} allows ${basic.pathLength} intermediate CA(s) below it, the chain has ${intermediates}`,
          issuer,
        );
      }
    }
    path.push(issuer);
    used.add(issuer);
    if (found.trusted) anchor = issuer;
    current = issuer;
  }

  // 2. Validity periods, leaf first.
  for (let depth = 0; depth < path.length; depth++) {
    const cert = path[depth]!;
    const { notBefore, notAfter } = cert.peculiar;
    if (at < notBefore) {
      return fail('NOT_YET_VALID', depth, `${describe(cert)} is not valid before ${notBefore.toISOString()} (now ${at.toISOString()})`, cert);
    }
    if (at > notAfter) {
      return fail('EXPIRED', depth, `${describe(cert)} expired at ${notAfter.toISOString()} (now ${at.toISOString()})`, cert);
    }
  }

  // 3. Critical extensions this code does not understand.
  for (let depth = 0; depth < path.length; depth++) {
    const cert = path[depth]!;
    const unknown = cert.peculiar.extensions.find((e) => e.critical && !KNOWN_CRITICAL.has(e.type));
    if (unknown) {
      return fail('UNSUPPORTED_CRITICAL_EXTENSION', depth, `${describe(cert)} has a critical extension Depot does not process (${unknown.type})`, cert);
    }
  }

  // 4. The leaf's purpose and names.
  const leaf = path[0]!;
  if (options.purpose) {
    const usage = leaf.peculiar.getExtension(x509.KeyUsagesExtension);
    if (usage && (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
      return fail('WRONG_KEY_USAGE', 0, `${describe(leaf)} may not be used for signatures (keyUsage lacks digitalSignature)`, leaf);
    }
    const eku = leaf.peculiar.getExtension(x509.ExtendedKeyUsageExtension);
    if (eku) {
      const oids = eku.usages.map(String);
      if (!oids.includes(EKU_OID[options.purpose]) && !oids.includes(OID_ANY_EKU)) {
        return fail('WRONG_KEY_USAGE', 0, `${describe(leaf)} is not valid for ${options.purpose} (extendedKeyUsage: ${oids.join(', ')})`, leaf);
      }
    }
  }
  if (options.host !== undefined) {
    const host = options.host.replace(/^\[(.*)\]$/, '$1');
    const matched = isIP(host) ? leaf.node.checkIP(host) : leaf.node.checkHost(host);
    if (matched === undefined) {
      return fail('NAME_MISMATCH', 0, `${describe(leaf)} is not valid for ${JSON.stringify(options.host)}`, leaf);
    }
  }
  if (options.endpoint !== undefined) {
    const cns = leaf.peculiar.subjectName.getField('CN');
    if (cns.length !== 1 || cns[0] !== options.endpoint) {
      return fail('NAME_MISMATCH', 0, `${describe(leaf)} does not belong to endpoint ${JSON.stringify(options.endpoint)}`, leaf);
    }
  }

  return { ok: true, path: path.map((p) => p.node), leaf: leaf.node, anchor: anchor.node };
}
