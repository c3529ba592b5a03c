/**
 * Untrusted text (a device's endpoint name, query parameter, error message quoting either) made
 * safe to print in a log line or a diagnostic: control characters cannot forge log lines, move
 * the cursor or hide text, and the length is bounded.
 */

/** Longest untrusted text printed as is; the rest is cut and counted. */
export const PRINTABLE_MAX_LENGTH = 200;

/**
 * C0 controls and DEL, C1 controls, line/paragraph separators, bidirectional overrides and
 * isolates (they reorder how a log line reads), and lone surrogates (not valid UTF-16).
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * `text` with every unprintable character written as `\xNN` / `\uNNNN` (a backslash as `\\`, so
 * the output reads back unambiguously), cut to `maxLength` characters of input with a note of
 * how many more there were.
 */
export function printable(text: string, maxLength = PRINTABLE_MAX_LENGTH): string {
  const cut = text.length > maxLength;
  let head = cut ? text.slice(0, maxLength) : text;
  // Do not end on half a surrogate pair: it would print as a lone surrogate.
  if (cut && /[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  const escaped = head.replace(/\\/g, '\\\\').replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return cut ? `${escaped}…(${text.length - head.length} more characters)` : escaped;
}
