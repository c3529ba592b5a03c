/**
 * Errors of the SMS layer, as values with codes (see /work/shared/ARCHITECTURE.md): the API
 * maps them onto HTTP statuses and operators read their messages. Messages never carry a
 * secret (sendsms password, callback secret) or a message body.
 */
export type SmsErrorCode =
  /** A phone number Depot does not accept (see address.ts). */
  | 'BAD_NUMBER'
  /** A message that cannot be built (too long, bad parameters, bad port). */
  | 'BAD_MESSAGE'
  /** A WAP Push / WSP / UDH octet string that does not decode. */
  | 'BAD_PDU'
  /** A delivery report or MO callback whose parameters are missing or malformed. */
  | 'BAD_CALLBACK'
  /** A callback without the right secret or signature. */
  | 'UNAUTHENTICATED'
  /** The gateway could not take the message now (unreachable, 5xx): the outbox retries. */
  | 'GATEWAY_TEMPORARY'
  /** The gateway refused the message for good (4xx): the outbox does not retry. */
  | 'GATEWAY_REFUSED'
  /** The gateway may or may not have taken it (timeout after the request was sent): never resent. */
  | 'GATEWAY_AMBIGUOUS'
  /** The idempotency key was used for a message to another number. */
  | 'CONFLICT'
  | 'NOT_FOUND'
  /** SMS is not configured (no gateway, no callback base URL). */
  | 'NOT_CONFIGURED';

export class SmsError extends Error {
  constructor(
    readonly code: SmsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SmsError';
  }
}
