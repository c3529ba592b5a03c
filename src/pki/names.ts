/**
 * Validation and normalisation of the names that go into certificates:
 * LwM2M endpoint names (device CN), DNS names and IP addresses (server SAN).
 */
import { isIPv4, isIPv6 } from 'node:net';

import { PkiError } from './errors.js';

/** X.520 upper bound for a commonName (RFC 5280 ub-common-name). */
export const MAX_COMMON_NAME = 64;

/**
 * Checks an LwM2M endpoint client name for use as a certificate CN.
 * LwM2M puts few rules on endpoint names (urn:imei:..., urn:dev:ops:..., urn:uuid:...),
 * so this only refuses what cannot be a sensible CN: empty, longer than 64
 * characters, control characters, or leading/trailing white space.
 */
export function checkEndpointName(endpoint: string): string {
  if (endpoint.length === 0) throw new PkiError('INVALID_NAME', 'the endpoint name is empty');
  if ([...endpoint].length > MAX_COMMON_NAME) {
    throw new PkiError('INVALID_NAME', `the endpoint name is longer than ${MAX_COMMON_NAME} characters (the X.509 commonName limit)`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/u.test(endpoint)) {
    throw new PkiError('INVALID_NAME', 'the endpoint name contains control characters');
  }
  if (endpoint.trim() !== endpoint) {
    throw new PkiError('INVALID_NAME', 'the endpoint name starts or ends with white space');
  }
  return endpoint;
}

export type SubjectAltName = { type: 'dns'; value: string } | { type: 'ip'; value: string };

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses a server name given by an operator: an IPv4/IPv6 address (IP SAN) or a
 * DNS name (DNS SAN, lower-cased, trailing dot removed, optional leading "*." wildcard).
 */
export function parseServerName(input: string): SubjectAltName {
  const name = input.trim();
  const bracketed = /^\[(.*)\]$/.exec(name);
  const ipCandidate = bracketed ? bracketed[1]! : name;
  if (isIPv4(ipCandidate)) return { type: 'ip', value: ipCandidate };
  if (isIPv6(ipCandidate)) return { type: 'ip', value: expandIPv6(ipCandidate) };
  if (bracketed) throw new PkiError('INVALID_NAME', `"${input}" is not an IP address`);

  let dns = name.toLowerCase();
  if (dns.endsWith('.')) dns = dns.slice(0, -1);
  if (dns.length === 0 || dns.length > 253) {
    throw new PkiError('INVALID_NAME', `"${input}" is not a valid DNS name or IP address`);
  }
  const labels = dns.split('.');
  const wildcard = labels[0] === '*';
  const rest = wildcard ? labels.slice(1) : labels;
  if (wildcard && rest.length < 2) {
    throw new PkiError('INVALID_NAME', `"${input}": a wildcard needs at least two labels after "*."`);
  }
  for (const label of rest) {
    if (!LABEL.test(label)) {
      throw new PkiError(
        'INVALID_NAME',
        `"${input}" is not a valid DNS name or IP address (labels are letters, digits and inner hyphens, 1-63 characters)`,
      );
    }
  }
  // A name made only of digits and dots is a mistyped IPv4 address, not a host name.
  if (rest.every((l) => /^\d+$/.test(l))) {
    throw new PkiError('INVALID_NAME', `"${input}" is not a valid IPv4 address`);
  }
  return { type: 'dns', value: dns };
}

/**
 * Expands an IPv6 address (already checked by net.isIPv6) to eight hexadecimal
 * groups, converting an embedded dotted IPv4 tail. The ASN.1 library's own parser
 * does not handle the dotted form, so it only ever sees this canonical spelling.
 */
export function expandIPv6(address: string): string {
  if (address.includes('%')) throw new PkiError('INVALID_NAME', `"${address}": a zone index cannot go into a certificate`);
  let text = address.toLowerCase();
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const octets = v4[2]!.split('.').map((p) => Number.parseInt(p, 10));
    const hi = ((octets[0]! << 8) | octets[1]!).toString(16);
    const lo = ((octets[2]! << 8) | octets[3]!).toString(16);
    text = `${v4[1]!}${hi}:${lo}`;
  }
  const halves = text.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - left.length - right.length;
  const groups = halves.length > 1 ? [...left, ...Array<string>(missing).fill('0'), ...right] : left;
  if (groups.length !== 8) throw new PkiError('INVALID_NAME', `"${address}" is not a valid IPv6 address`);
  return groups.map((g) => Number.parseInt(g, 16).toString(16)).join(':');
}
