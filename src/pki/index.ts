/** Depot's PKI: certificate authority, certificate issuing and chain verification. */
export {
  CertificateAuthority,
  caPaths,
  parseAndVerifyCsr,
  randomSerialNumber,
  CA_CERT_FILE,
  CA_KEY_FILE,
  DEFAULT_CA_COMMON_NAME,
  DEFAULT_CA_VALIDITY_DAYS,
  DEFAULT_DEVICE_VALIDITY_DAYS,
  DEFAULT_SERVER_VALIDITY_DAYS,
  type CaPaths,
  type CreateCaOptions,
  type DeviceIssueOptions,
  type IssueOptions,
  type IssuedCertificate,
  type LoadCaOptions,
  type ServerIssueOptions,
} from './ca.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  ALERT_FOR_CODE,
  TlsAlert,
  TrustStore,
  verifyChain,
  type CertificateInput,
  type ChainError,
  type ChainErrorCode,
  type ChainResult,
  type Purpose,
  type VerifyChainOptions,
} from './verify.js';
