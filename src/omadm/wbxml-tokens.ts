/**
 * WBXML code pages for SyncML DM 1.2 messages.
 *
 * Page 0 is SyncML 1.2 (the WBXML code page table of OMA-TS-SyncML_RepPro-V1_2), page 1 is
 * MetInf 1.2 (that of OMA-TS-SyncML_MetaInfo-V1_2). libwbxml's SyncML 1.2 table has the same
 * tokens: the interop tests check every tag byte for byte against its encoder.
 *
 * DevInf (the SyncML DS device information document) has its own public identifier (0x1202)
 * and, when carried in a message, travels as an opaque embedded document, so it is not a page
 * of this vocabulary; OMA DM describes the device through ./DevInfo nodes instead.
 */

export interface CodePage {
  readonly page: number;
  /** The XML namespace of the page's elements (an xmlns on the outermost element of the page). */
  readonly namespace: string;
  /** Tag tokens 0x05..0x3F (WAP-192-WBXML §7.1.1: the low six bits of a tag byte). */
  readonly tags: readonly (readonly [token: number, tag: string])[];
}

export interface WbxmlVocabulary {
  readonly name: string;
  /** Registered WBXML public identifier (WAP-192-WBXML §7.2, OMNA WBXML registry). */
  readonly publicId: number;
  /** The formal public identifier of the DTD, used when a document names it literally. */
  readonly fpi: string;
  readonly pages: readonly CodePage[];
  /** tag name → its page and token; names are distinct across the vocabulary's pages. */
  readonly codeOf: ReadonlyMap<string, { readonly page: number; readonly token: number }>;
  /** page → token → tag name. */
  readonly tagOf: ReadonlyMap<number, ReadonlyMap<number, string>>;
  /** tag name → the namespace of its page. */
  readonly namespaceOf: ReadonlyMap<string, string>;
}

export const SYNCML_NAMESPACE = 'SYNCML:SYNCML1.2';
export const METINF_NAMESPACE = 'syncml:metinf';

const SYNCML_PAGE: CodePage = {
  page: 0,
  namespace: SYNCML_NAMESPACE,
  tags: [
    [0x05, 'Add'], [0x06, 'Alert'], [0x07, 'Archive'], [0x08, 'Atomic'], [0x09, 'Chal'],
    [0x0a, 'Cmd'], [0x0b, 'CmdID'], [0x0c, 'CmdRef'], [0x0d, 'Copy'], [0x0e, 'Cred'],
    [0x0f, 'Data'], [0x10, 'Delete'], [0x11, 'Exec'], [0x12, 'Final'], [0x13, 'Get'],
    [0x14, 'Item'], [0x15, 'Lang'], [0x16, 'LocName'], [0x17, 'LocURI'], [0x18, 'Map'],
    [0x19, 'MapItem'], [0x1a, 'Meta'], [0x1b, 'MsgID'], [0x1c, 'MsgRef'], [0x1d, 'NoResp'],
    [0x1e, 'NoResults'], [0x1f, 'Put'], [0x20, 'Replace'], [0x21, 'RespURI'], [0x22, 'Results'],
    [0x23, 'Search'], [0x24, 'Sequence'], [0x25, 'SessionID'], [0x26, 'SftDel'], [0x27, 'Source'],
    [0x28, 'SourceRef'], [0x29, 'Status'], [0x2a, 'Sync'], [0x2b, 'SyncBody'], [0x2c, 'SyncHdr'],
    [0x2d, 'SyncML'], [0x2e, 'Target'], [0x2f, 'TargetRef'],
    // 0x30 is reserved (it was Version in SyncML 1.0).
    [0x31, 'VerDTD'], [0x32, 'VerProto'], [0x33, 'NumberOfChanges'], [0x34, 'MoreData'],
    [0x35, 'Field'], [0x36, 'Filter'], [0x37, 'Record'], [0x38, 'FilterType'],
    [0x39, 'SourceParent'], [0x3a, 'TargetParent'], [0x3b, 'Move'], [0x3c, 'Correlator'],
  ],
};

const METINF_PAGE: CodePage = {
  page: 1,
  namespace: METINF_NAMESPACE,
  tags: [
    [0x05, 'Anchor'], [0x06, 'EMI'], [0x07, 'Format'], [0x08, 'FreeID'], [0x09, 'FreeMem'],
    [0x0a, 'Last'], [0x0b, 'Mark'], [0x0c, 'MaxMsgSize'], [0x0d, 'Mem'], [0x0e, 'MetInf'],
    [0x0f, 'Next'], [0x10, 'NextNonce'], [0x11, 'SharedMem'], [0x12, 'Size'], [0x13, 'Type'],
    [0x14, 'Version'], [0x15, 'MaxObjSize'], [0x16, 'FieldLevel'],
  ],
};

function vocabulary(name: string, publicId: number, fpi: string, pages: CodePage[]): WbxmlVocabulary {
  const codeOf = new Map<string, { page: number; token: number }>();
  const tagOf = new Map<number, Map<number, string>>();
  const namespaceOf = new Map<string, string>();
  for (const p of pages) {
    const tokens = new Map<number, string>();
    for (const [token, tag] of p.tags) {
      // A duplicate would make the tag name ambiguous in the element tree: a table bug.
      if (codeOf.has(tag) || tokens.has(token) || token < 0x05 || token > 0x3f) throw new Error(`bad code page entry ${p.page}/${token} ${tag}`);
      codeOf.set(tag, { page: p.page, token });
      tokens.set(token, tag);
      namespaceOf.set(tag, p.namespace);
    }
    tagOf.set(p.page, tokens);
  }
  return { name, publicId, fpi, pages, codeOf, tagOf, namespaceOf };
}

/** SyncML 1.2 with MetInf 1.2: the vocabulary of every OMA DM 1.2 message. */
export const SYNCML_12 = vocabulary('SyncML 1.2', 0x1201, '-//SYNCML//DTD SyncML 1.2//EN', [SYNCML_PAGE, METINF_PAGE]);
