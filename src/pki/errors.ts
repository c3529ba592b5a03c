/** Error codes of the certificate authority (operations on the CA and its files). */
export type PkiErrorCode =
  /** No CA in the given directory. */
  | 'CA_NOT_FOUND'
  /** `init` on a directory that already holds a CA (or part of one). */
  | 'CA_EXISTS'
  /** The CA directory holds a key without a certificate, or the reverse. */
  | 'CA_INCOMPLETE'
  /** The CA certificate or key cannot be used (not a CA, wrong key type, key and certificate do not match, expired). */
  | 'CA_INVALID'
  /** A private key file is readable by group or others. */
  | 'INSECURE_PERMISSIONS'
  /** A CSR that cannot be parsed. */
  | 'BAD_CSR'
  /** A CSR whose signature does not verify with its own public key (no proof of possession). */
  | 'CSR_SIGNATURE'
  /** A CSR whose subject contradicts what is being issued. */
  | 'CSR_SUBJECT_MISMATCH'
  /** A public key type Depot does not certify (only ECDSA P-256 / P-384). */
  | 'UNSUPPORTED_KEY'
  /** An endpoint name, DNS name or IP address that cannot go into a certificate. */
  | 'INVALID_NAME'
  /** A validity period that is empty, negative or extends past the CA certificate. */
  | 'INVALID_VALIDITY'
  /** An output file exists and overwriting was not asked for. */
  | 'FILE_EXISTS'
  | 'IO_ERROR';

/** An error of the PKI layer; `code` is stable, `message` is meant for operators. */
export class PkiError extends Error {
  override readonly name = 'PkiError';
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
