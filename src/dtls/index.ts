/** DTLS 1.2 (RFC 6347) for Depot: sans-IO core plus a node:dgram transport. */
export { CipherSuite, CIPHER_SUITES, type CipherSuiteInfo } from './cipher.js';
export {
  DtlsConnection,
  DtlsError,
  DEFAULT_CIPHER_SUITES,
  type CertificateCredentials,
  type DtlsClientOptions,
  type DtlsServerOptions,
  type DtlsConnectionEvents,
  type DtlsErrorCode,
  type SessionInfo,
} from './connection.js';
export { DtlsServerEndpoint, type DtlsServerEndpointOptions, type DtlsServerEndpointEvents } from './server.js';
export { AlertDescription, alertName } from './constants.js';
