import type { MessageType } from './codes.js';

/** One option instance; repeatable options appear once per value. */
export interface CoapOption {
  number: number;
  value: Uint8Array;
}

/** A CoAP message as it travels (RFC 7252 §3). Options are kept in number order. */
export interface CoapMessage {
  type: MessageType;
  /** class << 5 | detail */
  code: number;
  messageId: number;
  token: Uint8Array;
  options: CoapOption[];
  payload: Uint8Array;
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);
