/**
 * A strict JSON (RFC 8259) parser for SenML JSON payloads. JSON.parse cannot be used:
 * it loses integers beyond 2^53 and the integer/float distinction, and it does not bound
 * nesting. Numbers come back with their source text; objects reject duplicate keys.
 */
import { badRequest, type CodecLimits } from '../errors.js';

export class JsonNumber {
  constructor(readonly raw: string) {}
  get isInteger(): boolean {
    return !/[.eE]/.test(this.raw);
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>;

const NUMBER_RE = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

export function parseJson(text: string, limits: CodecLimits): JsonValue {
  let pos = 0;
  let items = 0;
  const fail = (what: string): never => {
    throw badRequest(`JSON ${what} at offset ${pos}`);
  };
  const ws = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
      else break;
    }
  };
  const str = (): string => {
    // at opening quote
    pos++;
    let out = '';
    let chunk = pos;
    for (;;) {
      if (pos >= text.length) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        out += text.slice(chunk, pos);
        pos++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        out += text.slice(chunk, pos);
        const e = text[pos + 1];
        pos += 2;
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = text.slice(pos, pos + 4);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
            out += String.fromCharCode(parseInt(hex, 16));
            pos += 4;
            break;
          }
          default:
            pos -= 2;
            fail('bad escape');
        }
        chunk = pos;
        continue;
      }
      pos++;
    }
  };
  const value = (depth: number): JsonValue => {
    if (depth > limits.maxDepth) fail(`nesting deeper than ${limits.maxDepth}`);
    if (++items > limits.maxEntries) fail('payload with too many values');
    ws();
    const c = text[pos];
    switch (c) {
      case '{': {
        pos++;
        const m = new Map<string, JsonValue>();
        ws();
        if (text[pos] === '}') {
          pos++;
          return m;
        }
        for (;;) {
          ws();
          if (text[pos] !== '"') fail('expected a member name');
          const k = str();
          if (m.has(k)) fail(`duplicate member ${JSON.stringify(k.slice(0, 16))}`);
          ws();
          if (text[pos] !== ':') fail('expected ":"');
          pos++;
          m.set(k, value(depth + 1));
          ws();
          if (text[pos] === ',') {
            pos++;
            continue;
          }
          if (text[pos] === '}') {
            pos++;
            return m;
          }
          fail('expected "," or "}"');
        }
      }
      // falls through (unreachable: the loop returns or throws)
      case '[': {
        pos++;
        const a: JsonValue[] = [];
        ws();
        if (text[pos] === ']') {
          pos++;
          return a;
        }
        for (;;) {
          a.push(value(depth + 1));
          ws();
          if (text[pos] === ',') {
            pos++;
            continue;
          }
          if (text[pos] === ']') {
            pos++;
            return a;
          }
          fail('expected "," or "]"');
        }
      }
      // falls through (unreachable)
      case '"':
        return str();
      case 't':
        if (text.startsWith('true', pos)) {
          pos += 4;
          return true;
        }
        return fail('unexpected token');
      case 'f':
        if (text.startsWith('false', pos)) {
          pos += 5;
          return false;
        }
        return fail('unexpected token');
      case 'n':
        if (text.startsWith('null', pos)) {
          pos += 4;
          return null;
        }
        return fail('unexpected token');
      default: {
        NUMBER_RE.lastIndex = pos;
        const m = NUMBER_RE.exec(text);
        if (m === null || m[0] === '' || m[0] === '-') return fail('unexpected token');
        pos += m[0].length;
        if (m[0].length > 400) fail('number too long');
        return new JsonNumber(m[0]);
      }
    }
  };
  const v = value(0);
  ws();
  if (pos !== text.length) fail('trailing characters');
  return v;
}
