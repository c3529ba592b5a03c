/**
 * CoRE Link Format (RFC 6690): parser, serializer and the .well-known/core
 * query filter of §4.1. Pure; no I/O.
 *
 * Grammar (RFC 6690 §2):
 *   Link            = link-value-list
 *   link-value-list = [ link-value *[ "," link-value ] ]
 *   link-value      = "<" URI-Reference ">" *( ";" link-param )
 *   link-extension  = ( parmname [ "=" ( ptoken / quoted-string ) ] )
 *                   / ( ext-name-star "=" ext-value )
 *   ext-name-star   = parmname "*"
 *   ptoken          = 1*ptokenchar
 *   parmname        = 1*attr-char                      (RFC 5987 §3.2.1)
 *   quoted-string   = DQUOTE *( qdtext / quoted-pair ) DQUOTE  (RFC 2616 §2.2)
 *
 * Every specific link-param of §2 (rel, anchor, rt, if, sz, title, ...) is, as
 * a string, also a link-extension except "title*" (an ext-name-star), so the
 * parser accepts exactly link-extension for every parameter and keeps the
 * value uninterpreted: which form was used (none / ptoken / quoted / ext) is
 * preserved so that serialization reproduces the input.
 *
 * The ABNF has no implicit whitespace (RFC 6690 converts an HTTP Link header by
 * removing LWS), so whitespace outside quoted strings is an error unless the
 * caller opts into `allowWhitespace` (for devices that pretty-print).
 */

import { analyzeUriReference } from './uri.js';

export type LinkParamValue =
  /** `;obs` */
  | { readonly kind: 'none' }
  /** `;ct=40`: a ptoken (RFC 6690 §2) */
  | { readonly kind: 'ptoken'; readonly value: string }
  /** `;rt="temperature-c"`: the quoted-string with its quoted-pairs resolved */
  | { readonly kind: 'quoted'; readonly value: string }
  /** `;title*=UTF-8'en'%E2%82%AC`: ext-value of RFC 5987 §3.2.1, still percent-encoded in `encoded` */
  | { readonly kind: 'ext'; readonly charset: string; readonly language: string; readonly encoded: string };

export interface LinkParam {
  /** The parameter name as written (for ext-name-star, including the trailing "*"). */
  readonly name: string;
  readonly value: LinkParamValue;
}

export interface Link {
  /** The URI-Reference between "<" and ">", as written (not resolved, not decoded). */
  readonly target: string;
  /** Parameters in document order; a name may repeat. */
  readonly params: readonly LinkParam[];
}

export interface LinkFormatLimits {
  /** Maximum input length in UTF-16 code units. Default 65536. */
  maxLength?: number;
  /** Maximum number of link-values. Default 1024. */
  maxLinks?: number;
  /** Maximum number of link-params in one link-value. Default 64. */
  maxParamsPerLink?: number;
}

export interface LinkFormatParseOptions extends LinkFormatLimits {
  /**
   * Accept SP / HTAB / CR / LF before and after the "," and ";" delimiters and
   * around the document. RFC 6690 §2 allows none; default false.
   */
  allowWhitespace?: boolean;
}

export const DEFAULT_LINK_FORMAT_LIMITS: Readonly<Required<LinkFormatLimits>> = Object.freeze({
  maxLength: 65536,
  maxLinks: 1024,
  maxParamsPerLink: 64,
});

export class LinkFormatError extends Error {
  /** Index in the input (UTF-16 code units) where parsing failed; for serialization, undefined. */
  readonly position: number | undefined;
  /** The rule that was violated, e.g. "RFC 6690 §2 link-value". */
  readonly clause: string;
  constructor(clause: string, detail: string, position: number | undefined) {
    super(position === undefined ? `${clause}: ${detail}` : `at position ${position}: ${detail} (${clause})`);
    this.name = 'LinkFormatError';
    this.clause = clause;
    this.position = position;
  }
}

const LINK_VALUE = 'RFC 6690 §2 link-value';
const LINK_VALUE_LIST = 'RFC 6690 §2 link-value-list';
const LINK_EXTENSION = 'RFC 6690 §2 link-extension';
const PTOKEN = 'RFC 6690 §2 ptoken';
const PARMNAME = 'RFC 5987 §3.2.1 parmname';
const EXT_VALUE = 'RFC 5987 §3.2.1 ext-value';
const QUOTED_STRING = 'RFC 2616 §2.2 quoted-string';
const URI_REFERENCE = 'RFC 3986 §4.1 URI-Reference';
const LIMITS = 'limits';

/**
 * "/"-separated unreserved characters (RFC 3986 §2.3), e.g. "/3/0": always a valid
 * URI-Reference (a path, or an authority and a path), so the full check is skipped.
 */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9._~-]*)*$/;

// attr-char = ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
const ATTR_CHARS = "!#$&+-.^_`|~";
// ptokenchar (RFC 6690 §2), besides ALPHA / DIGIT
const PTOKEN_CHARS = "!#$%&'()*+-./:<=>?@[]^_`{|}~";
// mime-charsetc (RFC 5987 §3.2.1), besides ALPHA / DIGIT
const MIME_CHARSET_CHARS = '!#$%&+-^_`{}~';

function isAlphaDigit(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
function isAttrChar(c: string): boolean {
  return c !== '' && (isAlphaDigit(c) || ATTR_CHARS.includes(c));
}
function isPtokenChar(c: string): boolean {
  return c !== '' && (isAlphaDigit(c) || PTOKEN_CHARS.includes(c));
}
function isWhitespace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}
/** CTL of RFC 2616 §2.2 (octets 0-31 and 127). */
function isCtl(code: number): boolean {
  return code < 0x20 || code === 0x7f;
}

function isParmname(s: string): boolean {
  return s.length > 0 && [...s].every(isAttrChar);
}
function isPtoken(s: string): boolean {
  return s.length > 0 && [...s].every(isPtokenChar);
}

/**
 * Checks ext-value = charset "'" [ language ] "'" value-chars (RFC 5987 §3.2.1).
 * language is checked loosely as 1*( ALPHA / DIGIT / "-" ) (Language-Tag of RFC 5646
 * uses only those characters). Returns the index of the first bad character, or -1.
 */
function checkExtValue(s: string): { bad: number; charset: string; language: string; encoded: string } {
  const q1 = s.indexOf("'");
  const q2 = q1 < 0 ? -1 : s.indexOf("'", q1 + 1);
  const none = { charset: '', language: '', encoded: '' };
  if (q1 < 0 || q2 < 0) return { bad: s.length, ...none };
  const charset = s.slice(0, q1);
  if (charset === '') return { bad: 0, ...none };
  for (let i = 0; i < q1; i++) {
    const c = s.charAt(i);
    if (!isAlphaDigit(c) && !MIME_CHARSET_CHARS.includes(c)) return { bad: i, ...none };
  }
  const language = s.slice(q1 + 1, q2);
  for (let i = q1 + 1; i < q2; i++) {
    const c = s.charAt(i);
    if (!isAlphaDigit(c) && c !== '-') return { bad: i, ...none };
  }
  for (let i = q2 + 1; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '%') {
      if (!/^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) return { bad: i, ...none };
      i += 2;
    } else if (!isAttrChar(c)) {
      return { bad: i, ...none };
    }
  }
  return { bad: -1, charset, language, encoded: s.slice(q2 + 1) };
}

function limit(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return value;
}

/**
 * Parses an application/link-format document (RFC 6690 §2). The empty string is
 * an empty link-value-list. Throws LinkFormatError naming the position and rule.
 */
export function parseLinkFormat(text: string, options: LinkFormatParseOptions = {}): Link[] {
  const maxLength = limit(options.maxLength, DEFAULT_LINK_FORMAT_LIMITS.maxLength, 'maxLength');
  const maxLinks = limit(options.maxLinks, DEFAULT_LINK_FORMAT_LIMITS.maxLinks, 'maxLinks');
  const maxParams = limit(options.maxParamsPerLink, DEFAULT_LINK_FORMAT_LIMITS.maxParamsPerLink, 'maxParamsPerLink');
  if (text.length > maxLength) {
    throw new LinkFormatError(LIMITS, `input of ${text.length} characters exceeds maxLength ${maxLength}`, 0);
  }
  return new LinkFormatParser(text, options.allowWhitespace === true, maxLinks, maxParams).parse();
}

/** The state of one parse: an object, rather than closures over locals (each Register parses one). */
class LinkFormatParser {
  private readonly n: number;
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly allowWs: boolean,
    private readonly maxLinks: number,
    private readonly maxParams: number,
  ) {
    this.n = text.length;
  }

  parse(): Link[] {
    const text = this.text;
    const n = this.n;
    const links: Link[] = [];
    this.skipWs();
    if (this.pos >= n) return links;
    while (true) {
      // link-value = "<" URI-Reference ">" *( ";" link-param )
      if (links.length >= this.maxLinks) throw this.err(LIMITS, `more than maxLinks ${this.maxLinks} link-values`);
      if (text.charAt(this.pos) !== '<') throw this.err(LINK_VALUE, `expected "<" to start a link-value, found ${this.describe(this.pos)}`);
      const targetStart = this.pos + 1;
      const close = text.indexOf('>', targetStart);
      if (close < 0) throw this.err(LINK_VALUE, 'unterminated "<" URI-Reference (no ">")');
      const target = text.slice(targetStart, close);
      if (!PLAIN_PATH.test(target)) {
        const uri = analyzeUriReference(target);
        if (!uri.ok) throw this.err(URI_REFERENCE, uri.message, targetStart + uri.index);
      }
      this.pos = close + 1;
      const params: LinkParam[] = [];
      this.skipWs();
      while (text.charAt(this.pos) === ';') {
        this.pos++;
        this.skipWs();
        if (params.length >= this.maxParams) throw this.err(LIMITS, `more than maxParamsPerLink ${this.maxParams} link-params`);
        params.push(this.parseParam());
        this.skipWs();
      }
      links.push({ target, params });
      if (this.pos >= n) return links;
      if (text.charAt(this.pos) !== ',') {
        throw this.err(LINK_VALUE_LIST, `expected ";", "," or end of input after a link-value, found ${this.describe(this.pos)}`);
      }
      this.pos++;
      this.skipWs();
      if (this.pos >= n) throw this.err(LINK_VALUE_LIST, 'a "," must be followed by a link-value');
    }
  }

  private err(clause: string, detail: string, at = this.pos): LinkFormatError {
    return new LinkFormatError(clause, detail, at);
  }

  private describe(at: number): string {
    const c = this.text.charAt(at);
    return at >= this.n ? 'end of input' : `${JSON.stringify(c)}${isWhitespace(c) ? ' (whitespace is not allowed outside quoted-strings)' : ''}`;
  }

  private skipWs(): void {
    if (this.allowWs) while (this.pos < this.n && isWhitespace(this.text.charAt(this.pos))) this.pos++;
  }

  private parseParam(): LinkParam {
    const text = this.text;
    const n = this.n;
    const allowWs = this.allowWs;
    const nameStart = this.pos;
    while (isAttrChar(text.charAt(this.pos))) this.pos++;
    if (this.pos === nameStart) throw this.err(PARMNAME, `expected a parameter name, found ${this.describe(this.pos)}`);
    let name = text.slice(nameStart, this.pos);
    if (text.charAt(this.pos) === '*') {
      // ext-name-star "=" ext-value; no whitespace allowed in between.
      this.pos++;
      name += '*';
      if (text.charAt(this.pos) !== '=') throw this.err(LINK_EXTENSION, `expected "=" after ext-name-star ${name}, found ${this.describe(this.pos)}`);
      this.pos++;
      const valueStart = this.pos;
      while (this.pos < n && text.charAt(this.pos) !== ',' && text.charAt(this.pos) !== ';' && !(allowWs && isWhitespace(text.charAt(this.pos)))) this.pos++;
      const ext = checkExtValue(text.slice(valueStart, this.pos));
      if (ext.bad >= 0) throw this.err(EXT_VALUE, `malformed ext-value`, valueStart + ext.bad);
      return { name, value: { kind: 'ext', charset: ext.charset, language: ext.language, encoded: ext.encoded } };
    }
    if (text.charAt(this.pos) !== '=') return { name, value: { kind: 'none' } };
    this.pos++;
    if (text.charAt(this.pos) === '"') return { name, value: { kind: 'quoted', value: this.parseQuoted() } };
    const valueStart = this.pos;
    while (isPtokenChar(text.charAt(this.pos))) this.pos++;
    if (this.pos === valueStart) throw this.err(PTOKEN, `expected a ptoken or quoted-string after "=", found ${this.describe(this.pos)}`);
    return { name, value: { kind: 'ptoken', value: text.slice(valueStart, this.pos) } };
  }

  private parseQuoted(): string {
    const text = this.text;
    const n = this.n;
    // quoted-string = <"> *( qdtext | quoted-pair ) <">; qdtext = TEXT except <">,
    // TEXT = any octet except CTLs but including LWS ([CRLF] 1*(SP|HT)); quoted-pair = "\" CHAR.
    const open = this.pos;
    this.pos++;
    // Plain text is taken in runs (one slice each), not character by character.
    let value = '';
    let run = this.pos;
    while (true) {
      if (this.pos >= n) throw this.err(QUOTED_STRING, 'unterminated quoted-string', open);
      const c = text.charAt(this.pos);
      const code = text.charCodeAt(this.pos);
      if (c === '"') {
        value += text.slice(run, this.pos);
        this.pos++;
        return value;
      }
      if (c === '\\') {
        if (this.pos + 1 >= n) throw this.err(QUOTED_STRING, 'unterminated quoted-string', open);
        if (text.charCodeAt(this.pos + 1) > 0x7f) throw this.err(QUOTED_STRING, 'quoted-pair must escape an US-ASCII CHAR', this.pos + 1);
        value += text.slice(run, this.pos) + text.charAt(this.pos + 1);
        this.pos += 2;
        run = this.pos;
      } else if (c === '\r' && text.charAt(this.pos + 1) === '\n' && (text.charAt(this.pos + 2) === ' ' || text.charAt(this.pos + 2) === '\t')) {
        this.pos += 2; // CRLF kept in the run; the SP/HT after it is an ordinary character
      } else if (isCtl(code) && c !== '\t') {
        throw this.err(QUOTED_STRING, `control character U+${code.toString(16).toUpperCase().padStart(4, '0')} in quoted-string`);
      } else {
        this.pos++;
      }
    }
  }
}

function quote(value: string): string {
  let out = '"';
  for (const c of value) {
    const code = c.charCodeAt(0);
    // Escape DQUOTE, backslash and every CTL but HT (a quoted-pair may carry any CHAR).
    out += c === '"' || c === '\\' || (isCtl(code) && c !== '\t') ? '\\' + c : c;
  }
  return out + '"';
}

/**
 * Serializes links as application/link-format (no whitespace). Throws
 * LinkFormatError (position undefined) when a link cannot be represented.
 */
export function serializeLinkFormat(links: readonly Link[]): string {
  return links
    .map((link, i) => {
      const uri = analyzeUriReference(link.target);
      if (!uri.ok) throw new LinkFormatError(URI_REFERENCE, `link ${i}: target: ${uri.message} at index ${uri.index}`, undefined);
      let out = `<${link.target}>`;
      for (const p of link.params) {
        const v = p.value;
        if (v.kind === 'ext') {
          if (!p.name.endsWith('*') || !isParmname(p.name.slice(0, -1))) {
            throw new LinkFormatError(LINK_EXTENSION, `link ${i}: ext-value parameter name ${JSON.stringify(p.name)} must be parmname "*"`, undefined);
          }
          const ext = `${v.charset}'${v.language}'${v.encoded}`;
          if (checkExtValue(ext).bad >= 0 || v.charset.includes("'") || v.language.includes("'")) {
            throw new LinkFormatError(EXT_VALUE, `link ${i}: malformed ext-value for ${p.name}`, undefined);
          }
          out += `;${p.name}=${ext}`;
          continue;
        }
        if (!isParmname(p.name)) {
          throw new LinkFormatError(PARMNAME, `link ${i}: invalid parameter name ${JSON.stringify(p.name)}`, undefined);
        }
        out += ';' + p.name;
        if (v.kind === 'ptoken') {
          if (!isPtoken(v.value)) {
            throw new LinkFormatError(PTOKEN, `link ${i}: ${JSON.stringify(v.value)} is not a ptoken (quote it)`, undefined);
          }
          out += '=' + v.value;
        } else if (v.kind === 'quoted') {
          out += '=' + quote(v.value);
        }
      }
      return out;
    })
    .join(',');
}

// ---------------------------------------------------------------------------
// Helpers

/** Text of a parameter value: '' for a valueless one, the decoded text of an ext-value when its charset is known. */
export function linkParamText(value: LinkParamValue): string {
  switch (value.kind) {
    case 'none':
      return '';
    case 'ptoken':
    case 'quoted':
      return value.value;
    case 'ext':
      return decodeExtValue(value) ?? value.encoded;
  }
}

/** Decodes an ext-value whose charset is UTF-8 or ISO-8859-1 (case-insensitive); undefined otherwise. */
export function decodeExtValue(value: { charset: string; encoded: string }): string | undefined {
  const charset = value.charset.toLowerCase();
  if (charset !== 'utf-8' && charset !== 'iso-8859-1') return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < value.encoded.length; i++) {
    if (value.encoded.charAt(i) === '%') {
      bytes.push(parseInt(value.encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(value.encoded.charCodeAt(i));
    }
  }
  try {
    return new TextDecoder(charset === 'utf-8' ? 'utf-8' : 'latin1', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The first value of the parameter `name` (exact, case-sensitive match) as text:
 * undefined if absent, '' if it has no value (e.g. `obs`).
 */
export function linkAttr(link: Link, name: string): string | undefined {
  const params = link.params;
  for (let i = 0; i < params.length; i++) if (params[i]!.name === name) return linkParamText(params[i]!.value);
  return undefined;
}

/** All values of the parameter `name`, in order. */
export function linkAttrs(link: Link, name: string): LinkParamValue[] {
  return link.params.filter((q) => q.name === name).map((q) => q.value);
}

function matches(value: string, pattern: string): boolean {
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return value.startsWith(prefix) || value.split(' ').some((v) => v.startsWith(prefix));
  }
  return value === pattern || value.split(' ').includes(pattern);
}

/**
 * Whether a link passes one .well-known/core query argument (one Uri-Query
 * value, already percent-decoded) per RFC 6690 §4.1:
 * - `href=<value>` compares with the link target;
 * - `<name>=<value>` compares with every value of the parameter `name`; a value
 *   that is a space-separated list (rt, if, rel, ct="0 41") matches if any
 *   element matches;
 * - a trailing "*" makes it a prefix match (`rt=oma.*`, `href=/3*`, `rt=*`);
 * - a bare `<name>` (no "=") matches when the parameter is present.
 */
export function linkMatchesQuery(link: Link, query: string): boolean {
  const eq = query.indexOf('=');
  const name = eq < 0 ? query : query.slice(0, eq);
  if (eq < 0) return name === 'href' || link.params.some((p) => p.name === name);
  const pattern = query.slice(eq + 1);
  if (name === 'href') {
    return pattern.endsWith('*') ? link.target.startsWith(pattern.slice(0, -1)) : link.target === pattern;
  }
  return link.params.some((p) => p.name === name && matches(linkParamText(p.value), pattern));
}

/**
 * Filters links by .well-known/core query arguments (RFC 6690 §4.1). With no
 * arguments every link passes; with several, a link must pass all of them.
 */
export function filterLinks(links: readonly Link[], query: string | readonly string[]): Link[] {
  const args = typeof query === 'string' ? [query] : query;
  return links.filter((link) => args.every((q) => linkMatchesQuery(link, q)));
}
