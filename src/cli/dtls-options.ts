/** Command-line DTLS credentials shared by `depot coap` and `depot serve`: PSK, certificates, trust roots. */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CertificateCredentials } from '../dtls/connection.js';

export const dtlsOptionSpec = {
  'psk-identity': { type: 'string' },
  'psk-key': { type: 'string' },
  'psk-key-hex': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string', multiple: true },
} as const;

export const DTLS_USAGE = `  --psk-identity <id>      DTLS PSK identity (coaps://)
  --psk-key <text>         DTLS PSK key as text (like libcoap's -k)
  --psk-key-hex <hex>      DTLS PSK key as hex
  --cert <file.pem>        certificate chain (leaf first) for ECDHE-ECDSA
  --key <file.pem>         private key of --cert
  --ca <file.pem>          trusted root certificate(s) for the peer (repeatable)`;

export interface DtlsCliValues {
  'psk-identity'?: string | undefined;
  'psk-key'?: string | undefined;
  'psk-key-hex'?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string[] | undefined;
}

/** Splits a PEM file into its certificates. */
export function readCertificates(file: string): X509Certificate[] {
  const text = readFileSync(file, 'utf8');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${file} contains no PEM certificate`);
  return blocks.map((pem) => new X509Certificate(pem));
}

export function pskOf(values: DtlsCliValues): { identity: string; key: Uint8Array } | undefined {
  const identity = values['psk-identity'];
  const text = values['psk-key'];
  const hex = values['psk-key-hex'];
  if (identity === undefined && text === undefined && hex === undefined) return undefined;
  if (identity === undefined || (text === undefined) === (hex === undefined)) throw new Error('a PSK needs --psk-identity and one of --psk-key / --psk-key-hex');
  if (hex !== undefined && !/^([0-9a-fA-F]{2})+$/.test(hex)) throw new Error('--psk-key-hex must be an even number of hex digits');
  return { identity, key: hex !== undefined ? Buffer.from(hex, 'hex') : Buffer.from(text!, 'utf8') };
}

export function certificateOf(values: DtlsCliValues): CertificateCredentials | undefined {
  if (values.cert === undefined && values.key === undefined) return undefined;
  if (values.cert === undefined || values.key === undefined) throw new Error('--cert and --key go together');
  const chain = readCertificates(values.cert).map((c) => new Uint8Array(c.raw));
  return { chain, privateKey: createPrivateKey(readFileSync(values.key)) };
}

export function trustRootsOf(values: DtlsCliValues): X509Certificate[] {
  return (values.ca ?? []).flatMap(readCertificates);
}
