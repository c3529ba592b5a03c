/**
 * The one place that loads @peculiar/x509.
 *
 * The library resolves its algorithm registry through tsyringe, which refuses to load
 * unless a Reflect metadata polyfill is present; ES module imports are evaluated in
 * order, so importing reflect-metadata first (here, and only here) is enough.
 * The library's WebCrypto provider is set to Node's own implementation; every call in
 * src/pki also passes it explicitly, so nothing depends on that global setting.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

/** Node's WebCrypto implementation (the library's `Crypto` parameter type). */
export const nodeCrypto = webcrypto;

x509.cryptoProvider.set(nodeCrypto);

export { x509 };
