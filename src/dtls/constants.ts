/** Protocol numbers from RFC 5246, RFC 6347 and the TLS IANA registries. */

export const ContentType = {
  change_cipher_spec: 20,
  alert: 21,
  handshake: 22,
  application_data: 23,
  /** RFC 9146: protected record carrying a connection ID; the real type is inside. */
  tls12_cid: 25,
} as const;

export const HandshakeType = {
  hello_request: 0,
  client_hello: 1,
  server_hello: 2,
  hello_verify_request: 3,
  certificate: 11,
  server_key_exchange: 12,
  certificate_request: 13,
  server_hello_done: 14,
  certificate_verify: 15,
  client_key_exchange: 16,
  finished: 20,
} as const;

export const AlertLevel = { warning: 1, fatal: 2 } as const;

export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  user_canceled: 90,
  no_renegotiation: 100,
  unsupported_extension: 110,
  unknown_psk_identity: 115,
} as const;

export function alertName(code: number): string {
  for (const [name, value] of Object.entries(AlertDescription)) if (value === code) return name;
  return `alert_${code}`;
}

/** DTLS 1.2 is {254, 253}; DTLS 1.0 is {254, 255}. */
export const DTLS_1_2 = 0xfefd;
export const DTLS_1_0 = 0xfeff;

export const ExtensionType = {
  server_name: 0,
  supported_groups: 10,
  ec_point_formats: 11,
  signature_algorithms: 13,
  client_certificate_type: 19,
  server_certificate_type: 20,
  encrypt_then_mac: 22,
  extended_master_secret: 23,
  connection_id: 54,
  session_ticket: 35,
  renegotiation_info: 0xff01,
} as const;

/** TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746). */
export const EMPTY_RENEGOTIATION_INFO_SCSV = 0x00ff;

export const NamedGroup = { secp256r1: 23 } as const;
export const HashAlgorithm = { sha256: 4 } as const;
export const SignatureAlgorithm = { ecdsa: 3 } as const;
export const ClientCertificateType = { ecdsa_sign: 64 } as const;
/** RFC 7250 certificate types. */
export const CertificateType = { x509: 0, raw_public_key: 2 } as const;

/** Record header: type(1) version(2) epoch(2) sequence_number(6) length(2). */
export const RECORD_HEADER_LENGTH = 13;
/** Handshake header: msg_type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3). */
export const HANDSHAKE_HEADER_LENGTH = 12;
export const MAX_PLAINTEXT = 16384;
