/** CoAP message types (RFC 7252 §3). */
export const MessageType = { CON: 0, NON: 1, ACK: 2, RST: 3 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];
export const messageTypeNames = ['CON', 'NON', 'ACK', 'RST'] as const;

/** A code is class << 5 | detail, written "c.dd" (RFC 7252 §3, §12.1). */
export function code(cls: number, detail: number): number {
  return (cls << 5) | detail;
}
export const codeClass = (c: number): number => c >> 5;
export const codeDetail = (c: number): number => c & 0x1f;
export function formatCode(c: number): string {
  return `${codeClass(c)}.${String(codeDetail(c)).padStart(2, '0')}`;
}
/** Parses "2.05" or "205" into a code. */
export function parseCode(text: string): number {
  const m = /^([0-7])\.?([0-3][0-9])$/.exec(text.trim());
  if (!m) throw new Error(`not a CoAP code: ${text}`);
  return code(Number(m[1]), Number(m[2]));
}

export const Method = { GET: 1, POST: 2, PUT: 3, DELETE: 4, FETCH: 5, PATCH: 6, IPATCH: 7 } as const;
export type MethodName = keyof typeof Method;
const methodNames: Record<number, MethodName> = { 1: 'GET', 2: 'POST', 3: 'PUT', 4: 'DELETE', 5: 'FETCH', 6: 'PATCH', 7: 'IPATCH' };
export function methodName(c: number): MethodName | undefined {
  return methodNames[c];
}

export const EMPTY = 0;

/** Response codes (RFC 7252 §5.9, RFC 7959 §2.9, RFC 8132). */
export const Code = {
  Created: code(2, 1),
  Deleted: code(2, 2),
  Valid: code(2, 3),
  Changed: code(2, 4),
  Content: code(2, 5),
  Continue: code(2, 31),
  BadRequest: code(4, 0),
  Unauthorized: code(4, 1),
  BadOption: code(4, 2),
  Forbidden: code(4, 3),
  NotFound: code(4, 4),
  MethodNotAllowed: code(4, 5),
  NotAcceptable: code(4, 6),
  RequestEntityIncomplete: code(4, 8),
  Conflict: code(4, 9),
  PreconditionFailed: code(4, 12),
  RequestEntityTooLarge: code(4, 13),
  UnsupportedContentFormat: code(4, 15),
  UnprocessableEntity: code(4, 22),
  TooManyRequests: code(4, 29),
  InternalServerError: code(5, 0),
  NotImplemented: code(5, 1),
  BadGateway: code(5, 2),
  ServiceUnavailable: code(5, 3),
  GatewayTimeout: code(5, 4),
  ProxyingNotSupported: code(5, 5),
} as const;

const codeNames = new Map<number, string>(Object.entries(Code).map(([name, value]) => [value, name]));
export function codeName(c: number): string {
  return codeNames.get(c) ?? methodName(c) ?? (c === EMPTY ? 'Empty' : 'Unknown');
}

export const isRequestCode = (c: number): boolean => codeClass(c) === 0 && c !== EMPTY;
export const isResponseCode = (c: number): boolean => codeClass(c) >= 2 && codeClass(c) <= 5;
export const isSuccess = (c: number): boolean => codeClass(c) === 2;

/** Content-Format registry entries Depot uses (RFC 7252 §12.3, LwM2M TS). */
export const ContentFormat = {
  TextPlain: 0,
  LinkFormat: 40,
  Xml: 41,
  OctetStream: 42,
  Exi: 47,
  Json: 50,
  Cbor: 60,
  SenmlJson: 110,
  SenmlCbor: 112,
  LwM2mTlv: 11542,
  LwM2mJson: 11543,
  LwM2mCbor: 11544,
} as const;
