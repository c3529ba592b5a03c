/**
 * Errors for everything a device sends over OMA DM. Every byte and string from a device is
 * untrusted: malformed, truncated or oversized input ends in one of these, never in another
 * exception, so a session can answer with a status code instead of crashing.
 */

/** Which decoder refused the input. */
export type OmaDmLayer = 'wbxml' | 'xml' | 'syncml' | 'auth';

/**
 * Input that is not a well-formed OMA DM message. `clause` names the rule that was broken
 * (a spec clause, or "limit" for one of Depot's bounds); `where` says where (a byte offset,
 * a line:column, or an element path such as SyncML/SyncBody/Replace[2]/Item).
 */
export class OmaDmFormatError extends Error {
  constructor(
    message: string,
    readonly layer: OmaDmLayer,
    readonly clause: string,
    readonly where?: string,
  ) {
    super(`${message}${where === undefined ? '' : ` at ${where}`} (${clause})`);
    this.name = 'OmaDmFormatError';
  }
}

/** A WBXML document that cannot be decoded (WAP-192-WBXML, WBXML 1.3). */
export class WbxmlFormatError extends OmaDmFormatError {
  constructor(message: string, clause: string, offset?: number) {
    super(message, 'wbxml', clause, offset === undefined ? undefined : `byte ${offset}`);
    this.name = 'WbxmlFormatError';
  }
}

/** An XML document that is not well-formed, uses a refused feature (DTD subset, entities) or breaks a limit. */
export class XmlFormatError extends OmaDmFormatError {
  constructor(message: string, clause: string, where?: string) {
    super(message, 'xml', clause, where);
    this.name = 'XmlFormatError';
  }
}

/** A well-formed document that is not a valid SyncML DM 1.2 message (OMA-TS-DM_RepPro-V1_2). */
export class SyncMLFormatError extends OmaDmFormatError {
  constructor(message: string, clause: string, path: string) {
    super(message, 'syncml', clause, path);
    this.name = 'SyncMLFormatError';
  }
}

/** Authentication data (a Cred, an x-syncml-hmac header) that cannot be read (OMA-TS-DM_Security-V1_2). */
export class DmAuthFormatError extends OmaDmFormatError {
  constructor(message: string, clause: string, where?: string) {
    super(message, 'auth', clause, where);
    this.name = 'DmAuthFormatError';
  }
}
