/** X.509 chain validation against a trust store with node:crypto X509Certificate. */
import { X509Certificate, type KeyObject } from 'node:crypto';

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    message: string,
    /** The TLS alert that reports it (RFC 5246 §7.2.2). */
    readonly alert: 'bad_certificate' | 'unsupported_certificate' | 'certificate_expired' | 'unknown_ca',
  ) {
    super(message);
  }
}

export function parseCertificates(ders: Uint8Array[]): X509Certificate[] {
  try {
    return ders.map((d) => new X509Certificate(Buffer.from(d)));
  } catch {
    throw new CertificateError('unparseable certificate', 'bad_certificate');
  }
}

function validAt(cert: X509Certificate, nowMs: number): boolean {
  return Date.parse(cert.validFrom) <= nowMs && nowMs <= Date.parse(cert.validTo);
}

function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * Validates `chain` (leaf first, as sent in the Certificate message) up to one of `roots`.
 * Intermediates must be CA certificates; the leaf key must be an EC P-256 key.
 * Returns the leaf's public key. `nowMs` is wall-clock time (Date.now()).
 */
export function validateChain(chain: X509Certificate[], roots: readonly X509Certificate[], nowMs: number): KeyObject {
  try {
    return validate(chain, roots, nowMs);
  } catch (e) {
    // X509Certificate getters (publicKey, ...) throw on certificates that parse but hold garbage.
    if (e instanceof CertificateError) throw e;
    throw new CertificateError('malformed certificate', 'bad_certificate');
  }
}

function validate(chain: X509Certificate[], roots: readonly X509Certificate[], nowMs: number): KeyObject {
  const leaf = chain[0];
  if (!leaf) throw new CertificateError('empty certificate chain', 'bad_certificate');
  const key = leaf.publicKey;
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CertificateError('leaf key is not EC P-256', 'unsupported_certificate');
  }
  for (const c of chain) if (!validAt(c, nowMs)) throw new CertificateError('certificate outside its validity period', 'certificate_expired');
  // Walk up: at each step the current certificate is either issued by a trust root or by the next one in the chain.
  let current = leaf;
  const remaining = chain.slice(1);
  for (let depth = 0; depth <= chain.length; depth++) {
    // A trusted certificate presented directly (e.g. a pinned self-signed leaf) is accepted.
    if (roots.some((r) => r.fingerprint256 === current.fingerprint256)) return key;
    const root = roots.find((r) => r.ca && validAt(r, nowMs) && signedBy(current, r));
    if (root) return key;
    const idx = remaining.findIndex((c) => c.ca && signedBy(current, c));
    if (idx < 0) break;
    current = remaining[idx]!;
    remaining.splice(idx, 1);
  }
  throw new CertificateError('certificate chain does not lead to a trusted root', 'unknown_ca');
}

/** The subject DN as one line, and the CN if any. */
export function describeSubject(cert: X509Certificate): { subject: string; commonName?: string } {
  let subject: string;
  try {
    subject = cert.subject;
  } catch {
    subject = '';
  }
  const lines = subject.split('\n').filter((l) => l.length > 0);
  const cn = lines.find((l) => l.startsWith('CN='))?.slice(3);
  return cn === undefined ? { subject: lines.join(', ') } : { subject: lines.join(', '), commonName: cn };
}
