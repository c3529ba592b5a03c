/**
 * The handshake transcript (RFC 5246 §7.4.9, RFC 6347 §4.2.6): every handshake message so far, each
 * as if sent in one fragment, hashed as it arrives. Finished and the session hash (RFC 7627) need only
 * the hash at some point, so the messages themselves are not kept, except for a CertificateVerify,
 * which signs them rather than their hash.
 */
import { concat } from './bytes.js';
import { HANDSHAKE_HEADER_LENGTH } from './constants.js';
import { writeHandshakeHeader, type HandshakeMessage } from './fragment.js';
import { Sha256 } from './sha256.js';

/** Scratch for the header of the message being added: hashed before the next one is written. */
const header = new Uint8Array(HANDSHAKE_HEADER_LENGTH);

export class Transcript extends Sha256 {
  /** The last digest and the transcript length it covers: the session hash and a Finished often share it. */
  private digested: Uint8Array | undefined;
  private digestedLength = -1;
  /** The encoded messages, for a CertificateVerify only (see keepMessages). */
  private messages: Uint8Array[] | undefined;

  /** Keeps a copy of every message added from now on, for `messageBytes`. */
  keepMessages(): void {
    if (this.length > 0) throw new Error('keepMessages must be called before the first message');
    this.messages = [];
  }

  /** Adds a message encoded whole (header and body, fragment offset 0). */
  addEncoded(encoded: Uint8Array): void {
    this.update(encoded);
    this.messages?.push(encoded);
  }

  /** Adds a received message. */
  add(m: HandshakeMessage): void {
    const length = m.body.length;
    writeHandshakeHeader(header, 0, m.msgType, length, m.messageSeq, 0, length);
    this.update(header).update(m.body);
    this.messages?.push(concat(header, m.body));
  }

  /** SHA-256 of the transcript so far (the same buffer while no message is added: do not modify it). */
  override digest(): Uint8Array {
    if (this.digestedLength !== this.length) {
      this.digested = super.digest();
      this.digestedLength = this.length;
    }
    return this.digested!;
  }

  /** The transcript itself (only after keepMessages). */
  messageBytes(): Uint8Array {
    if (!this.messages) throw new Error('transcript messages were not kept');
    return concat(...this.messages);
  }
}
