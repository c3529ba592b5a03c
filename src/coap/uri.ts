/**
 * CoAP URIs (RFC 7252 §6, RFC 8323 §8 for the TCP schemes).
 *
 * parseCoapUri implements the decomposition algorithm of RFC 7252 §6.4 and
 * formatCoapUri the composition algorithm of §6.5. Both are pure. The RFC 3986
 * reference parser below (analyzeUriReference) is shared with the link-format
 * parser, which must validate the URI-Reference of every link-value.
 *
 * Conventions chosen where the RFC leaves the representation open:
 * - `host` is the Uri-Host value for a reg-name (lowercased, percent-decoded,
 *   §6.4 step 5) and the address itself for an IP literal: IPv4 as written,
 *   IPv6 lowercased and without its brackets. formatCoapUri accepts IPv6 with
 *   or without brackets. An IPvFuture literal keeps its brackets.
 * - `port` is always filled in (the scheme's default when the URI has none);
 *   whether a Uri-Port option is needed depends on the destination (step 7),
 *   which is the caller's business.
 * - An empty query (`coap://h/?`) yields one empty Uri-Query, so that it
 *   composes back to the same URI.
 */

export type CoapScheme = 'coap' | 'coaps' | 'coap+tcp' | 'coaps+tcp';

export interface CoapUriParts {
  scheme: CoapScheme;
  host: string;
  port: number;
  uriPath: string[];
  uriQuery: string[];
  /** True when host is an IP-literal or IPv4address (then no Uri-Host option is needed). */
  hostIsLiteral: boolean;
}

/** Input of formatCoapUri: the port may be left out (default port of the scheme). */
export interface CoapUriInput {
  scheme: CoapScheme;
  host: string;
  port?: number;
  uriPath?: readonly string[];
  uriQuery?: readonly string[];
}

/** Default ports: RFC 7252 §6.1/§6.2 (UDP), RFC 8323 §8.1/§8.2 (TCP). */
export const COAP_DEFAULT_PORTS: Readonly<Record<CoapScheme, number>> = Object.freeze({
  coap: 5683,
  coaps: 5684,
  'coap+tcp': 5683,
  'coaps+tcp': 5684,
});

export class CoapUriError extends Error {
  /** The RFC clause whose rule failed, e.g. "RFC 7252 §6.4 step 4". */
  readonly clause: string;
  constructor(clause: string, detail: string) {
    super(`${clause}: ${detail}`);
    this.name = 'CoapUriError';
    this.clause = clause;
  }
}

// ---------------------------------------------------------------------------
// RFC 3986 generic syntax

export type HostKind = 'ip-literal' | 'ipv4' | 'reg-name';

/** The components of a URI-reference (RFC 3986 §4.1), still percent-encoded. */
export interface UriReference {
  scheme: string | undefined;
  /** Present when the reference has an authority ("//" ...). */
  authority:
    | { userinfo: string | undefined; host: string; hostKind: HostKind; port: string | undefined }
    | undefined;
  path: string;
  query: string | undefined;
  fragment: string | undefined;
}

export type UriAnalysis =
  | { ok: true; ref: UriReference }
  | { ok: false; index: number; message: string };

const HEX = /^[0-9A-Fa-f]$/;
/** Length of the scheme of `s` (scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), RFC 3986 §3.1) when a ":" ends it, else 0. */
function schemeLength(s: string): number {
  const first = s.charAt(0);
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z'))) return 0;
  let at = 1;
  for (;;) {
    const c = s.charAt(at);
    if (!isAlphaNum(c) && c !== '+' && c !== '-' && c !== '.') break;
    at++;
  }
  return s.charAt(at) === ':' ? at : 0;
}

function fail(index: number, message: string): UriAnalysis {
  return { ok: false, index, message };
}
const SUB_DELIMS = "!$&'()*+,;=";
const GEN_DELIMS = ':/?#[]@';

function isAlphaNum(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
function isUnreserved(c: string): boolean {
  return isAlphaNum(c) || c === '-' || c === '.' || c === '_' || c === '~';
}
function isSubDelim(c: string): boolean {
  return SUB_DELIMS.includes(c);
}

/** dec-octet "." dec-octet "." dec-octet "." dec-octet (RFC 3986 §3.2.2), no leading zeros. Scanned: every client request by URI asks. */
export function isIPv4Address(s: string): boolean {
  let octets = 0;
  let at = 0;
  while (octets < 4) {
    const start = at;
    let value = 0;
    while (at < s.length && at - start < 3) {
      const digit = s.charCodeAt(at) - 0x30;
      if (digit < 0 || digit > 9) break;
      value = value * 10 + digit;
      at++;
    }
    const length = at - start;
    if (length === 0 || (length > 1 && s.charCodeAt(start) === 0x30) || value > 255) return false;
    octets++;
    if (octets < 4) {
      if (s.charCodeAt(at) !== 0x2e) return false;
      at++;
    }
  }
  return at === s.length;
}

/** IPv6address of RFC 3986 §3.2.2 (no zone identifier). */
export function isIPv6Address(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  let head = s;
  let v4Groups = 0;
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0 || !isIPv4Address(s.slice(lastColon + 1))) return false;
    head = s.slice(0, lastColon + 1);
    if (!head.endsWith('::')) head = head.slice(0, -1);
    v4Groups = 2;
  }
  const isGroup = (g: string): boolean => /^[0-9A-Fa-f]{1,4}$/.test(g);
  const doubles = head.split('::').length - 1;
  if (doubles > 1) return false;
  if (doubles === 1) {
    const [left = '', right = ''] = head.split('::');
    const l = left === '' ? [] : left.split(':');
    const r = right === '' ? [] : right.split(':');
    return l.every(isGroup) && r.every(isGroup) && l.length + r.length + v4Groups <= 7;
  }
  const groups = head.split(':');
  return groups.every(isGroup) && groups.length + v4Groups === 8;
}

function isIPvFuture(s: string): boolean {
  return /^[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+$/.test(s);
}

/**
 * Checks a string against URI-reference (RFC 3986 §4.1) and splits it into its
 * components. Positions in failures are indexes into `s`.
 */
export function analyzeUriReference(s: string): UriAnalysis {
  // Character repertoire and percent-encodings (§2.1-§2.3).
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '%') {
      if (!HEX.test(s.charAt(i + 1)) || !HEX.test(s.charAt(i + 2))) {
        return fail(i, `malformed percent-encoding (RFC 3986 §2.1)`);
      }
      i += 2;
    } else if (!isUnreserved(c) && !isSubDelim(c) && !GEN_DELIMS.includes(c)) {
      return fail(i, `character ${JSON.stringify(c)} is not allowed in a URI (RFC 3986 §2)`);
    }
  }
  let rest = s;
  let fragment: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    const bad = fragment.search(/[#[\]]/);
    if (bad >= 0) return fail(hash + 1 + bad, `character not allowed in fragment (RFC 3986 §3.5)`);
    rest = rest.slice(0, hash);
  }
  let query: string | undefined;
  const qm = rest.indexOf('?');
  if (qm >= 0) {
    query = rest.slice(qm + 1);
    const bad = query.search(/[[\]]/);
    if (bad >= 0) return fail(qm + 1 + bad, `character not allowed in query (RFC 3986 §3.4)`);
    rest = rest.slice(0, qm);
  }
  let offset = 0;
  let scheme: string | undefined;
  const schemeEnd = schemeLength(rest);
  if (schemeEnd > 0) {
    scheme = rest.slice(0, schemeEnd);
    offset = schemeEnd + 1;
  } else {
    const firstSlash = rest.indexOf('/');
    const firstSeg = firstSlash < 0 ? rest : rest.slice(0, firstSlash);
    const colon = firstSeg.indexOf(':');
    if (colon >= 0) {
      return fail(
        colon,
        colon === 0
          ? 'empty scheme (RFC 3986 §3.1)'
          : 'invalid scheme, or ":" in the first segment of a relative path (RFC 3986 §3.1, §4.2)',
      );
    }
  }
  let authority: UriReference['authority'];
  let path = rest.slice(offset);
  if (path.startsWith('//')) {
    const authStart = offset + 2;
    const slash = rest.indexOf('/', authStart);
    const authEnd = slash < 0 ? rest.length : slash;
    const auth = rest.slice(authStart, authEnd);
    path = rest.slice(authEnd);
    let userinfo: string | undefined;
    let hostStart = 0;
    const at = auth.indexOf('@');
    if (at >= 0) {
      userinfo = auth.slice(0, at);
      const bad = userinfo.search(/[[\]]/);
      if (bad >= 0) return fail(authStart + bad, 'character not allowed in userinfo (RFC 3986 §3.2.1)');
      hostStart = at + 1;
    }
    const hostPort = auth.slice(hostStart);
    const base = authStart + hostStart;
    let host: string;
    let hostKind: HostKind;
    let portText: string | undefined;
    if (hostPort.startsWith('[')) {
      const close = hostPort.indexOf(']');
      if (close < 0) return fail(base, 'unterminated IP-literal (RFC 3986 §3.2.2)');
      const literal = hostPort.slice(1, close);
      if (!isIPv6Address(literal) && !isIPvFuture(literal)) {
        return fail(base + 1, 'invalid IP-literal: neither IPv6address nor IPvFuture (RFC 3986 §3.2.2)');
      }
      host = hostPort.slice(0, close + 1);
      hostKind = 'ip-literal';
      const after = hostPort.slice(close + 1);
      if (after !== '' && !after.startsWith(':')) {
        return fail(base + close + 1, 'expected ":" port or end of authority after IP-literal (RFC 3986 §3.2)');
      }
      if (after !== '') portText = after.slice(1);
    } else {
      const colon = hostPort.indexOf(':');
      host = colon < 0 ? hostPort : hostPort.slice(0, colon);
      if (colon >= 0) portText = hostPort.slice(colon + 1);
      const bad = host.search(/[@[\]]/);
      if (bad >= 0) return fail(base + bad, 'character not allowed in reg-name (RFC 3986 §3.2.2)');
      hostKind = isIPv4Address(host) ? 'ipv4' : 'reg-name';
    }
    if (portText !== undefined) {
      const bad = portText.search(/[^0-9]/);
      if (bad >= 0) {
        return fail(base + hostPort.length - portText.length + bad, 'port must be digits (RFC 3986 §3.2.3)');
      }
    }
    authority = { userinfo, host, hostKind, port: portText };
    offset = authEnd;
  }
  const bad = path.search(/[[\]]/);
  if (bad >= 0) return fail(offset + bad, 'character not allowed in path (RFC 3986 §3.3)');
  return { ok: true, ref: { scheme, authority, path, query, fragment } };
}

/** remove_dot_segments of RFC 3986 §5.2.4. */
export function removeDotSegments(path: string): string {
  // Every rule below needs a "." or ".." segment: a path without a dot is its own result.
  if (!path.includes('.')) return path;
  let input = path;
  const output: string[] = [];
  while (input.length > 0) {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./')) input = input.slice(2);
    else if (input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../')) {
      input = input.slice(3);
      output.pop();
    } else if (input === '/..') {
      input = '/';
      output.pop();
    } else if (input === '.' || input === '..') input = '';
    else {
      const next = input.indexOf('/', input.startsWith('/') ? 1 : 0);
      const seg = next < 0 ? input : input.slice(0, next);
      output.push(seg);
      input = input.slice(seg.length);
    }
  }
  return output.join('');
}

// ---------------------------------------------------------------------------
// Percent-encoding

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Converts every "%" HEXDIG HEXDIG to its byte and decodes the bytes as UTF-8; undefined if not UTF-8. */
function percentDecode(s: string): string | undefined {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && HEX.test(s.charAt(i + 1)) && HEX.test(s.charAt(i + 2))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of utf8Encoder.encode(s.charAt(i))) bytes.push(b);
    }
  }
  try {
    return utf8Decoder.decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

const LONE_SURROGATE = /\p{Cs}/u;

/** Percent-encodes (uppercase hex, UTF-8) every character for which keep() is false. */
function percentEncode(s: string, keep: (c: string) => boolean): string {
  let out = '';
  for (const ch of s) {
    if (ch.length === 1 && keep(ch)) out += ch;
    else for (const b of utf8Encoder.encode(ch)) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

const keepInSegment = (c: string): boolean => isUnreserved(c) || isSubDelim(c) || c === ':' || c === '@';
const keepInQuery = (c: string): boolean =>
  isUnreserved(c) || (isSubDelim(c) && c !== '&') || c === ':' || c === '@' || c === '/' || c === '?';

// ---------------------------------------------------------------------------
// §6.4 Decomposing URIs into options

const STEP = (n: number): string => `RFC 7252 §6.4 step ${n}`;

function isCoapScheme(s: string): s is CoapScheme {
  return s === 'coap' || s === 'coaps' || s === 'coap+tcp' || s === 'coaps+tcp';
}

/**
 * Decomposes a CoAP URI into the values of its Uri-Host/Uri-Port/Uri-Path/
 * Uri-Query options (RFC 7252 §6.4). Throws CoapUriError naming the failing step.
 */
export function parseCoapUri(uri: string): CoapUriParts {
  // Step 1: must be an absolute URI (RFC 3986 §4.3: scheme ":" hier-part; the
  // fragment is checked separately by step 4).
  const analysis = analyzeUriReference(uri);
  if (!analysis.ok) {
    throw new CoapUriError(STEP(1), `not a URI: at index ${analysis.index}: ${analysis.message}`);
  }
  const ref = analysis.ref;
  if (ref.scheme === undefined) throw new CoapUriError(STEP(1), 'relative reference, not an absolute URI');
  // Step 2: reference resolution of an absolute URI only removes dot segments (RFC 3986 §5.2.2).
  const path = removeDotSegments(ref.path);
  // Step 3: scheme.
  const scheme = ref.scheme.toLowerCase();
  if (!isCoapScheme(scheme)) {
    throw new CoapUriError(STEP(3), `scheme ${JSON.stringify(ref.scheme)} is not coap, coaps, coap+tcp or coaps+tcp`);
  }
  // Step 4: fragment.
  if (ref.fragment !== undefined) throw new CoapUriError(STEP(4), 'URI has a fragment component');
  // Scheme syntax: "coap:" "//" host [ ":" port ] path-abempty [ "?" query ] (§6.1).
  const auth = ref.authority;
  if (auth === undefined) throw new CoapUriError('RFC 7252 §6.1', 'a coap URI needs "//" and a host');
  if (auth.userinfo !== undefined) throw new CoapUriError('RFC 7252 §6.1', 'a coap URI has no userinfo');
  if (auth.host === '') throw new CoapUriError('RFC 7252 §6.1', 'empty host');
  // Step 5: host.
  let host: string;
  const hostIsLiteral = auth.hostKind !== 'reg-name';
  if (auth.hostKind === 'ip-literal') {
    // IPv6 without brackets; an IPvFuture keeps them (it could not be told from a reg-name).
    const inner = auth.host.slice(1, -1).toLowerCase();
    host = isIPv6Address(inner) ? inner : `[${inner}]`;
  } else if (auth.hostKind === 'ipv4') {
    host = auth.host;
  } else {
    const decoded = percentDecode(auth.host.toLowerCase());
    if (decoded === undefined) throw new CoapUriError(STEP(5), 'host is not UTF-8 after percent-decoding');
    if (utf8Encoder.encode(decoded).length > 255) throw new CoapUriError(STEP(5), 'Uri-Host longer than 255 bytes');
    host = decoded;
  }
  // Step 6: port (an empty port subcomponent means the default, RFC 3986 §3.2.3).
  let port = COAP_DEFAULT_PORTS[scheme];
  if (auth.port !== undefined && auth.port !== '') {
    port = Number(auth.port);
    if (!Number.isSafeInteger(port) || port > 65535) {
      throw new CoapUriError(STEP(6), `port ${auth.port} is out of range 0-65535`);
    }
  }
  // Step 7 (Uri-Port only if it differs from the destination port) is left to the caller.
  // Step 8: path.
  const uriPath = segmentsOf(path, 8);
  // Step 9: query.
  const uriQuery: string[] = [];
  if (ref.query !== undefined) {
    for (const arg of ref.query.split('&')) {
      const decoded = percentDecode(arg);
      if (decoded === undefined) throw new CoapUriError(STEP(9), `query argument ${JSON.stringify(arg)} is not UTF-8`);
      uriQuery.push(decoded);
    }
  }
  return { scheme, host, port, uriPath, uriQuery, hostIsLiteral };
}

function segmentsOf(path: string, step: number): string[] {
  if (path === '' || path === '/') return [];
  const segments: string[] = [];
  for (const raw of path.slice(1).split('/')) {
    const decoded = percentDecode(raw);
    if (decoded === undefined) {
      throw new CoapUriError(STEP(step), `path segment ${JSON.stringify(raw)} is not UTF-8`);
    }
    if (decoded === '.' || decoded === '..') {
      throw new CoapUriError(STEP(step), `Uri-Path must not be "." or ".." (RFC 7252 §5.10.1)`);
    }
    segments.push(decoded);
  }
  return segments;
}

// ---------------------------------------------------------------------------
// §6.5 Composing URIs from options

const CSTEP = (n: number): string => `RFC 7252 §6.5 step ${n}`;

/** Composes a URI from option values (RFC 7252 §6.5). Throws CoapUriError naming the failing step. */
export function formatCoapUri(parts: CoapUriInput): string {
  // Step 1: scheme (extended to the RFC 8323 schemes).
  if (!isCoapScheme(parts.scheme)) {
    throw new CoapUriError(CSTEP(1), `unknown scheme ${JSON.stringify(parts.scheme)}`);
  }
  let url = `${parts.scheme}://`;
  // Step 2: host. IPv6 may be given with or without brackets.
  const h = parts.host;
  let host: string;
  if (h.startsWith('[') && h.endsWith(']') && (isIPv6Address(h.slice(1, -1)) || isIPvFuture(h.slice(1, -1)))) {
    host = h.toLowerCase();
  } else if (isIPv6Address(h)) {
    host = `[${h.toLowerCase()}]`;
  } else {
    if (LONE_SURROGATE.test(h)) throw new CoapUriError(CSTEP(2), 'host contains a lone surrogate');
    host = percentEncode(h, (c) => c.charCodeAt(0) < 0x80);
    const validRegName = [...host.replace(/%[0-9A-F]{2}/g, '')].every((c) => isUnreserved(c) || isSubDelim(c));
    if (host === '' || !validRegName) {
      throw new CoapUriError(CSTEP(2), `host ${JSON.stringify(h)} is not a valid reg-name, IP-literal or IPv4address`);
    }
  }
  // Step 3.
  url += host;
  // Steps 4-5: port, elided when it is the default.
  const port = parts.port ?? COAP_DEFAULT_PORTS[parts.scheme];
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CoapUriError(CSTEP(4), `port ${port} is out of range 0-65535`);
  }
  if (port !== COAP_DEFAULT_PORTS[parts.scheme]) url += `:${port}`;
  // Steps 6-7: path.
  let resourceName = segmentsToPathAt(parts.uriPath ?? [], CSTEP(6));
  // Step 8: query.
  (parts.uriQuery ?? []).forEach((arg, i) => {
    checkUriQueryValue(arg);
    resourceName += (i === 0 ? '?' : '&') + percentEncode(arg, keepInQuery);
  });
  // Steps 9-10.
  return url + resourceName;
}

function segmentsToPathAt(segments: readonly string[], clause: string): string {
  let name = '';
  for (const seg of segments) {
    checkUriPathValue(seg, clause);
    name += '/' + percentEncode(seg, keepInSegment);
  }
  return name === '' ? '/' : name;
}

/** A Uri-Path value a URI can carry (RFC 7252 §5.10.1, §6.5 steps 6-7); throws CoapUriError. */
export function checkUriPathValue(segment: string, clause = CSTEP(6)): void {
  if (segment === '.' || segment === '..') throw new CoapUriError(clause, 'Uri-Path must not be "." or ".." (RFC 7252 §5.10.1)');
  if (LONE_SURROGATE.test(segment)) throw new CoapUriError(clause, 'path segment contains a lone surrogate');
}

/** A Uri-Query value a URI can carry (RFC 7252 §6.5 step 8); throws CoapUriError. */
export function checkUriQueryValue(arg: string): void {
  if (LONE_SURROGATE.test(arg)) throw new CoapUriError(CSTEP(8), 'query argument contains a lone surrogate');
}

/**
 * Splits an absolute path such as "/a/b%20c" into Uri-Path values ["a", "b c"]
 * (RFC 7252 §6.4 step 8: "" and "/" give no segments). Throws CoapUriError.
 */
export function pathToSegments(path: string): string[] {
  if (path !== '' && !path.startsWith('/')) throw new CoapUriError(STEP(8), 'path must be empty or start with "/"');
  const a = analyzeUriReference(path.startsWith('//') ? '/.' + path : path);
  if (!a.ok || a.ref.scheme !== undefined || a.ref.query !== undefined || a.ref.fragment !== undefined) {
    throw new CoapUriError(STEP(8), `${JSON.stringify(path)} is not a path-abempty`);
  }
  return segmentsOf(path, 8);
}

/** Joins Uri-Path values into a percent-encoded absolute path (RFC 7252 §6.5 steps 6-7): [] gives "/". */
export function segmentsToPath(segments: readonly string[]): string {
  return segmentsToPathAt(segments, CSTEP(6));
}
