/**
 * SyncML DM 1.2 messages (OMA-TS-DM_RepPro-V1_2): a typed model, read from and written to the
 * element tree, and so to XML (application/vnd.syncml.dm+xml) and WBXML
 * (application/vnd.syncml.dm+wbxml). Reading validates the content model of each element (which
 * children, how many, text or elements) and says what was wrong where; the order of children is
 * not enforced, which devices get wrong without ambiguity. Writing follows the DTD's order.
 */
import { DEFAULT_LIMITS, element, isElement } from './element.js';
import type { DecodeLimits, Element, Node } from './element.js';
import { OmaDmFormatError, SyncMLFormatError } from './errors.js';
import { decodeWbxml, encodeWbxml } from './wbxml.js';
import type { WbxmlEncodeOptions } from './wbxml.js';
import { parseXml, writeXml } from './xml.js';

export const SYNCML_DM_XML = 'application/vnd.syncml.dm+xml';
export const SYNCML_DM_WBXML = 'application/vnd.syncml.dm+wbxml';
export type SyncMLEncoding = 'xml' | 'wbxml';

const REPPRO = 'OMA-TS-DM_RepPro-V1_2';
const METINF = 'OMA-TS-SyncML_MetaInfo-V1_2';

/** Meta information (MetInf 1.2) as DM uses it. */
export interface Meta {
  readonly format?: string;
  readonly type?: string;
  readonly mark?: string;
  readonly size?: number;
  readonly nextNonce?: string;
  readonly version?: string;
  readonly maxMsgSize?: number;
  readonly maxObjSize?: number;
  readonly emi?: readonly string[];
}

export interface Location {
  readonly locUri: string;
  readonly locName?: string;
}

/** Cred: the authentication type and format are in Meta, the credential in Data (RepPro <Cred>). */
export interface Credential {
  readonly meta?: Meta;
  readonly data: string;
}

/** Chal: the authentication the sender wants next, with its nonce (RepPro <Chal>). */
export interface Challenge {
  readonly meta: Meta;
}

export interface Item {
  readonly target?: Location;
  readonly source?: Location;
  readonly sourceParent?: string;
  readonly targetParent?: string;
  readonly meta?: Meta;
  /** Text, or WBXML opaque bytes (binary data with Format bin). */
  readonly data?: string | Uint8Array;
  /** More chunks of this item's data follow (large object delivery). */
  readonly moreData?: boolean;
}

export interface SyncHdr {
  readonly verDTD: '1.2';
  readonly verProto: 'DM/1.2';
  readonly sessionId: string;
  readonly msgId: string;
  readonly target: Location;
  readonly source: Location;
  readonly respUri?: string;
  readonly noResp?: boolean;
  readonly cred?: Credential;
  readonly meta?: Meta;
}

export interface StatusCommand {
  readonly kind: 'Status';
  readonly cmdId: string;
  readonly msgRef: string;
  readonly cmdRef: string;
  /** The name of the command this answers ("SyncHdr" for the header). */
  readonly cmd: string;
  readonly targetRefs?: readonly string[];
  readonly sourceRefs?: readonly string[];
  readonly cred?: Credential;
  readonly chal?: Challenge;
  readonly code: number;
  readonly items?: readonly Item[];
}

export interface ResultsCommand {
  readonly kind: 'Results';
  readonly cmdId: string;
  readonly msgRef?: string;
  readonly cmdRef: string;
  readonly meta?: Meta;
  readonly targetRef?: string;
  readonly sourceRef?: string;
  readonly items: readonly Item[];
}

export type ItemCommandKind = 'Add' | 'Copy' | 'Delete' | 'Exec' | 'Get' | 'Replace';

export interface ItemCommand {
  readonly kind: ItemCommandKind;
  readonly cmdId: string;
  readonly noResp?: boolean;
  readonly cred?: Credential;
  readonly meta?: Meta;
  /** Get only. */
  readonly lang?: string;
  /** Exec only: echoed in the Generic Alert that reports an asynchronous result. */
  readonly correlator?: string;
  readonly items: readonly Item[];
}

export interface AlertCommand {
  readonly kind: 'Alert';
  readonly cmdId: string;
  readonly noResp?: boolean;
  readonly cred?: Credential;
  readonly code?: number;
  readonly correlator?: string;
  readonly items?: readonly Item[];
}

export interface ContainerCommand {
  readonly kind: 'Atomic' | 'Sequence';
  readonly cmdId: string;
  readonly noResp?: boolean;
  readonly meta?: Meta;
  readonly commands: readonly Command[];
}

/**
 * A SyncML command DM does not use (Map, Put, Search, Sync, Move): kept, not refused, so a
 * session can answer it with a Status of its own (406 or 405) as the protocol asks.
 */
export interface UnsupportedCommand {
  readonly kind: 'Unsupported';
  readonly tag: string;
  readonly cmdId?: string;
}

export type Command = StatusCommand | ResultsCommand | ItemCommand | AlertCommand | ContainerCommand | UnsupportedCommand;

export interface SyncMLMessage {
  readonly header: SyncHdr;
  readonly commands: readonly Command[];
  /** <Final/>: the last message of a package. */
  readonly final: boolean;
}

// ---------------------------------------------------------------- reading

const ITEM_COMMANDS = new Set<string>(['Add', 'Copy', 'Delete', 'Exec', 'Get', 'Replace']);
const UNSUPPORTED_COMMANDS = new Set(['Map', 'Put', 'Search', 'Sync', 'Move']);
/** What Atomic and Sequence may hold (RepPro <Atomic>, <Sequence>), DM's commands and the unsupported ones. */
const CONTAINED_COMMANDS = new Set(['Add', 'Alert', 'Atomic', 'Copy', 'Delete', 'Exec', 'Get', 'Replace', 'Sequence', ...UNSUPPORTED_COMMANDS]);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The children of one element, taken by name: each reader method consumes the ones it asks
 * for, and done() refuses whatever is left, so every child is either understood or reported.
 */
class Children {
  private readonly byTag = new Map<string, Element[]>();

  constructor(
    readonly el: Element,
    readonly path: string,
    readonly clause: string,
  ) {
    for (const child of el.children) {
      if (!isElement(child)) {
        if (typeof child === 'string' && child.trim() === '') continue;
        throw new SyncMLFormatError(`<${el.tag}> has text where only elements belong`, clause, path);
      }
      const list = this.byTag.get(child.tag);
      if (list === undefined) this.byTag.set(child.tag, [child]);
      else list.push(child);
    }
  }

  childPath(tag: string, index?: number): string {
    return `${this.path}/${tag}${index === undefined ? '' : `[${index + 1}]`}`;
  }

  many(tag: string): Element[] {
    const list = this.byTag.get(tag) ?? [];
    this.byTag.delete(tag);
    return list;
  }

  optional(tag: string): Element | undefined {
    const list = this.many(tag);
    if (list.length > 1) throw new SyncMLFormatError(`<${tag}> appears ${list.length} times, at most once allowed`, this.clause, this.childPath(tag));
    return list[0];
  }

  one(tag: string): Element {
    const found = this.optional(tag);
    if (found === undefined) throw new SyncMLFormatError(`<${tag}> is missing`, this.clause, this.path);
    return found;
  }

  optionalText(tag: string): string | undefined {
    const found = this.optional(tag);
    return found === undefined ? undefined : leafText(found, this.childPath(tag), this.clause);
  }

  text(tag: string): string {
    return leafText(this.one(tag), this.childPath(tag), this.clause);
  }

  /** An empty marker element such as <NoResp/> or <Final/>. */
  flag(tag: string): boolean | undefined {
    const found = this.optional(tag);
    if (found === undefined) return undefined;
    if (found.children.length > 0) throw new SyncMLFormatError(`<${tag}> must be empty`, this.clause, this.childPath(tag));
    return true;
  }

  done(): void {
    for (const [tag] of this.byTag) throw new SyncMLFormatError(`<${tag}> is not allowed in <${this.el.tag}>`, this.clause, this.childPath(tag));
  }
}

function leafText(el: Element, path: string, clause: string): string {
  let text = '';
  for (const child of el.children) {
    if (typeof child === 'string') text += child;
    else if (child instanceof Uint8Array) {
      try {
        text += utf8.decode(child);
      } catch {
        throw new SyncMLFormatError(`<${el.tag}> has opaque data that is not UTF-8 text`, clause, path);
      }
    } else throw new SyncMLFormatError(`<${el.tag}> must hold text, not <${child.tag}>`, clause, path);
  }
  return text;
}

function integer(text: string, path: string, clause: string, what: string): number {
  const trimmed = text.trim();
  // Digits only and bounded: Number() would accept "0x10", "1e3" and " ".
  if (!/^[0-9]{1,10}$/.test(trimmed) || Number(trimmed) > 0xffffffff) throw new SyncMLFormatError(`${what} ${JSON.stringify(text.slice(0, 20))} is not a non-negative integer`, clause, path);
  return Number(trimmed);
}

function readMeta(el: Element, path: string): Meta {
  const c = new Children(el, path, `${METINF} §5`);
  const num = (tag: string): number | undefined => {
    const text = c.optionalText(tag);
    return text === undefined ? undefined : integer(text, c.childPath(tag), `${METINF} <${tag}>`, tag);
  };
  const meta: { -readonly [K in keyof Meta]: Meta[K] } = {};
  const format = c.optionalText('Format');
  if (format !== undefined) meta.format = format.trim();
  const type = c.optionalText('Type');
  if (type !== undefined) meta.type = type.trim();
  const mark = c.optionalText('Mark');
  if (mark !== undefined) meta.mark = mark;
  const size = num('Size');
  if (size !== undefined) meta.size = size;
  const nextNonce = c.optionalText('NextNonce');
  if (nextNonce !== undefined) meta.nextNonce = nextNonce.trim();
  const version = c.optionalText('Version');
  if (version !== undefined) meta.version = version;
  const maxMsgSize = num('MaxMsgSize');
  if (maxMsgSize !== undefined) meta.maxMsgSize = maxMsgSize;
  const maxObjSize = num('MaxObjSize');
  if (maxObjSize !== undefined) meta.maxObjSize = maxObjSize;
  const emi = c.many('EMI').map((e, i) => leafText(e, c.childPath('EMI', i), `${METINF} <EMI>`));
  if (emi.length > 0) meta.emi = emi;
  c.done();
  return meta;
}

function readLocation(el: Element, path: string): Location {
  const c = new Children(el, path, `${REPPRO} <${el.tag}>`);
  const locUri = c.text('LocURI');
  if (locUri === '') throw new SyncMLFormatError('<LocURI> is empty', `${REPPRO} <LocURI>`, c.childPath('LocURI'));
  const locName = c.optionalText('LocName');
  c.done();
  return locName === undefined ? { locUri } : { locUri, locName };
}

function readParent(el: Element, path: string): string {
  const c = new Children(el, path, `${REPPRO} <${el.tag}>`);
  const locUri = c.text('LocURI');
  c.done();
  return locUri;
}

function readCred(el: Element, path: string): Credential {
  const c = new Children(el, path, `${REPPRO} <Cred>`);
  const metaEl = c.optional('Meta');
  const data = c.text('Data');
  c.done();
  return metaEl === undefined ? { data } : { meta: readMeta(metaEl, c.childPath('Meta')), data };
}

function readItem(el: Element, path: string, commandFormat: string | undefined): Item {
  const c = new Children(el, path, `${REPPRO} <Item>`);
  const item: { -readonly [K in keyof Item]: Item[K] } = {};
  const target = c.optional('Target');
  if (target !== undefined) item.target = readLocation(target, c.childPath('Target'));
  const source = c.optional('Source');
  if (source !== undefined) item.source = readLocation(source, c.childPath('Source'));
  const sourceParent = c.optional('SourceParent');
  if (sourceParent !== undefined) item.sourceParent = readParent(sourceParent, c.childPath('SourceParent'));
  const targetParent = c.optional('TargetParent');
  if (targetParent !== undefined) item.targetParent = readParent(targetParent, c.childPath('TargetParent'));
  const meta = c.optional('Meta');
  if (meta !== undefined) item.meta = readMeta(meta, c.childPath('Meta'));
  const data = c.optional('Data');
  if (data !== undefined) {
    const only = data.children.length === 1 ? data.children[0] : undefined;
    const format = item.meta?.format ?? commandFormat;
    // WBXML encoders (libwbxml among them) write any Item Data as OPAQUE: it is text unless
    // the format says binary (Format bin) or the bytes are not UTF-8, as the model must not
    // depend on the encoding the device chose.
    if (only instanceof Uint8Array && (format === 'bin' || !isUtf8(only))) item.data = only;
    else item.data = leafText(data, c.childPath('Data'), `${REPPRO} <Data>`);
  }
  if (c.flag('MoreData') === true) item.moreData = true;
  c.done();
  return item;
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The command's Items; `meta` is the command's Meta, whose Format applies to items without one. */
function readItems(c: Children, min: number, max: number, meta?: Meta): Item[] {
  const items = c.many('Item').map((e, i) => readItem(e, c.childPath('Item', i), meta?.format));
  if (items.length < min || items.length > max) {
    const expected = max === Infinity ? `at least ${min}` : min === max ? `exactly ${min}` : `${min} to ${max}`;
    throw new SyncMLFormatError(`<${c.el.tag}> has ${items.length} <Item>, ${expected} required`, c.clause, c.path);
  }
  return items;
}

function cmdIdOf(c: Children): string {
  const cmdId = c.text('CmdID').trim();
  // RepPro <CmdID>: a non-empty reference, unique in the message; "0" is reserved for SyncHdr.
  if (cmdId === '' || cmdId === '0') throw new SyncMLFormatError(`<CmdID> ${JSON.stringify(cmdId)} is not a command identifier`, `${REPPRO} <CmdID>`, c.childPath('CmdID'));
  return cmdId;
}

function readCommand(el: Element, path: string, within: string): Command {
  const clause = `${REPPRO} <${el.tag}>`;
  if (UNSUPPORTED_COMMANDS.has(el.tag)) {
    const cmdIdEl = el.children.find((c): c is Element => isElement(c) && c.tag === 'CmdID');
    const cmdId = cmdIdEl === undefined ? undefined : leafText(cmdIdEl, `${path}/CmdID`, clause).trim();
    return cmdId === undefined ? { kind: 'Unsupported', tag: el.tag } : { kind: 'Unsupported', tag: el.tag, cmdId };
  }
  if (el.tag !== 'Status' && el.tag !== 'Results' && el.tag !== 'Alert' && el.tag !== 'Atomic' && el.tag !== 'Sequence' && !ITEM_COMMANDS.has(el.tag)) {
    throw new SyncMLFormatError(`<${el.tag}> is not a command`, `${REPPRO} <${within.split('/').pop() ?? 'SyncBody'}>`, path);
  }
  const c = new Children(el, path, clause);
  const optionalMeta = (): Meta | undefined => {
    const m = c.optional('Meta');
    return m === undefined ? undefined : readMeta(m, c.childPath('Meta'));
  };
  const optionalCred = (): Credential | undefined => {
    const m = c.optional('Cred');
    return m === undefined ? undefined : readCred(m, c.childPath('Cred'));
  };
  let command: Command;
  if (el.tag === 'Status') {
    const chalEl = c.optional('Chal');
    let chal: Challenge | undefined;
    if (chalEl !== undefined) {
      const cc = new Children(chalEl, c.childPath('Chal'), `${REPPRO} <Chal>`);
      const meta = readMeta(cc.one('Meta'), cc.childPath('Meta'));
      cc.done();
      chal = { meta };
    }
    const cmdId = cmdIdOf(c);
    const msgRef = c.text('MsgRef').trim();
    const cmdRef = c.text('CmdRef').trim();
    const cmd = c.text('Cmd').trim();
    const code = integer(c.text('Data'), c.childPath('Data'), `${REPPRO} <Status>`, 'status code');
    if (code < 100 || code > 599) throw new SyncMLFormatError(`status code ${code} is outside 100..599`, `${REPPRO} <Status>`, c.childPath('Data'));
    const status: { -readonly [K in keyof StatusCommand]: StatusCommand[K] } = { kind: 'Status', cmdId, msgRef, cmdRef, cmd, code };
    const targetRefs = c.many('TargetRef').map((e, i) => leafText(e, c.childPath('TargetRef', i), clause));
    if (targetRefs.length > 0) status.targetRefs = targetRefs;
    const sourceRefs = c.many('SourceRef').map((e, i) => leafText(e, c.childPath('SourceRef', i), clause));
    if (sourceRefs.length > 0) status.sourceRefs = sourceRefs;
    const cred = optionalCred();
    if (cred !== undefined) status.cred = cred;
    if (chal !== undefined) status.chal = chal;
    const items = readItems(c, 0, Infinity);
    if (items.length > 0) status.items = items;
    command = status;
  } else if (el.tag === 'Results') {
    const results: { -readonly [K in keyof ResultsCommand]: ResultsCommand[K] } = { kind: 'Results', cmdId: cmdIdOf(c), cmdRef: c.text('CmdRef').trim(), items: [] };
    const msgRef = c.optionalText('MsgRef');
    if (msgRef !== undefined) results.msgRef = msgRef.trim();
    const meta = optionalMeta();
    if (meta !== undefined) results.meta = meta;
    const targetRef = c.optionalText('TargetRef');
    if (targetRef !== undefined) results.targetRef = targetRef;
    const sourceRef = c.optionalText('SourceRef');
    if (sourceRef !== undefined) results.sourceRef = sourceRef;
    results.items = readItems(c, 1, Infinity, meta);
    command = results;
  } else if (ITEM_COMMANDS.has(el.tag)) {
    const kind = el.tag as ItemCommandKind;
    const cmd: { -readonly [K in keyof ItemCommand]: ItemCommand[K] } = { kind, cmdId: cmdIdOf(c), items: [] };
    if (c.flag('NoResp') === true) cmd.noResp = true;
    const cred = optionalCred();
    if (cred !== undefined) cmd.cred = cred;
    const meta = optionalMeta();
    if (meta !== undefined) cmd.meta = meta;
    if (kind === 'Get') {
      const lang = c.optionalText('Lang');
      if (lang !== undefined) cmd.lang = lang;
    }
    if (kind === 'Exec') {
      const correlator = c.optionalText('Correlator');
      if (correlator !== undefined) cmd.correlator = correlator;
    }
    // RepPro <Exec>: exactly one Item; the others: one or more.
    cmd.items = readItems(c, 1, kind === 'Exec' ? 1 : Infinity, meta);
    command = cmd;
  } else if (el.tag === 'Alert') {
    const alert: { -readonly [K in keyof AlertCommand]: AlertCommand[K] } = { kind: 'Alert', cmdId: cmdIdOf(c) };
    if (c.flag('NoResp') === true) alert.noResp = true;
    const cred = optionalCred();
    if (cred !== undefined) alert.cred = cred;
    const data = c.optionalText('Data');
    if (data !== undefined) alert.code = integer(data, c.childPath('Data'), clause, 'alert code');
    const correlator = c.optionalText('Correlator');
    if (correlator !== undefined) alert.correlator = correlator;
    const items = readItems(c, 0, Infinity);
    if (items.length > 0) alert.items = items;
    command = alert;
  } else if (el.tag === 'Atomic' || el.tag === 'Sequence') {
    // DM_Protocol: an Atomic may not contain another Atomic, however deep (nor a Sequence inside it one).
    if (el.tag === 'Atomic' && within.includes('Atomic')) throw new SyncMLFormatError('<Atomic> nested in <Atomic>', clause, path);
    const container: { -readonly [K in keyof ContainerCommand]: ContainerCommand[K] } = { kind: el.tag, cmdId: cmdIdOf(c), commands: [] };
    if (c.flag('NoResp') === true) container.noResp = true;
    const meta = optionalMeta();
    if (meta !== undefined) container.meta = meta;
    const commands: Command[] = [];
    for (const tag of CONTAINED_COMMANDS) c.many(tag); // taken here, read below in document order (execution order)
    const position = positions();
    for (const child of el.children) {
      if (isElement(child) && CONTAINED_COMMANDS.has(child.tag)) commands.push(readCommand(child, `${path}/${position(child.tag)}`, `${within}/${el.tag}`));
    }
    if (commands.length === 0) throw new SyncMLFormatError(`<${el.tag}> holds no command`, clause, path);
    container.commands = commands;
    command = container;
  } else throw new Error(`unreachable: <${el.tag}>`);
  c.done();
  return command;
}

/** Path steps as XPath writes them: Replace[2] is the parent's second <Replace>. */
function positions(): (tag: string) => string {
  const seen = new Map<string, number>();
  return (tag) => {
    const n = (seen.get(tag) ?? 0) + 1;
    seen.set(tag, n);
    return `${tag}[${n}]`;
  };
}

/** Reads a SyncML DM 1.2 message from its element tree. Throws SyncMLFormatError. */
export function readSyncML(root: Element): SyncMLMessage {
  if (root.tag !== 'SyncML') throw new SyncMLFormatError(`the root element is <${root.tag}>, not <SyncML>`, `${REPPRO} <SyncML>`, root.tag);
  const c = new Children(root, 'SyncML', `${REPPRO} <SyncML>`);
  const hdrEl = c.one('SyncHdr');
  const bodyEl = c.one('SyncBody');
  c.done();

  const h = new Children(hdrEl, 'SyncML/SyncHdr', `${REPPRO} <SyncHdr>`);
  const verDTD = h.text('VerDTD').trim();
  if (verDTD !== '1.2') throw new SyncMLFormatError(`VerDTD ${JSON.stringify(verDTD.slice(0, 20))} is not 1.2`, `${REPPRO} <VerDTD>`, h.childPath('VerDTD'));
  const verProto = h.text('VerProto').trim();
  if (verProto !== 'DM/1.2') throw new SyncMLFormatError(`VerProto ${JSON.stringify(verProto.slice(0, 20))} is not DM/1.2`, `${REPPRO} <VerProto>`, h.childPath('VerProto'));
  const header: { -readonly [K in keyof SyncHdr]: SyncHdr[K] } = {
    verDTD: '1.2',
    verProto: 'DM/1.2',
    sessionId: h.text('SessionID').trim(),
    msgId: h.text('MsgID').trim(),
    target: readLocation(h.one('Target'), h.childPath('Target')),
    source: readLocation(h.one('Source'), h.childPath('Source')),
  };
  if (header.sessionId === '') throw new SyncMLFormatError('<SessionID> is empty', `${REPPRO} <SessionID>`, h.childPath('SessionID'));
  if (header.msgId === '') throw new SyncMLFormatError('<MsgID> is empty', `${REPPRO} <MsgID>`, h.childPath('MsgID'));
  const respUri = h.optionalText('RespURI');
  if (respUri !== undefined) header.respUri = respUri.trim();
  if (h.flag('NoResp') === true) header.noResp = true;
  const cred = h.optional('Cred');
  if (cred !== undefined) header.cred = readCred(cred, h.childPath('Cred'));
  const meta = h.optional('Meta');
  if (meta !== undefined) header.meta = readMeta(meta, h.childPath('Meta'));
  h.done();

  const commands: Command[] = [];
  let final = false;
  const position = positions();
  for (const child of bodyEl.children) {
    if (!isElement(child)) {
      if (typeof child === 'string' && child.trim() === '') continue;
      throw new SyncMLFormatError('<SyncBody> has text where only commands belong', `${REPPRO} <SyncBody>`, 'SyncML/SyncBody');
    }
    const path = `SyncML/SyncBody/${position(child.tag)}`;
    if (final) throw new SyncMLFormatError(`<${child.tag}> after <Final/>`, `${REPPRO} <SyncBody>`, path);
    if (child.tag === 'Final') {
      if (child.children.length > 0) throw new SyncMLFormatError('<Final> must be empty', `${REPPRO} <Final>`, path);
      final = true;
      continue;
    }
    commands.push(readCommand(child, path, 'SyncBody'));
  }
  return { header, commands, final };
}

// ---------------------------------------------------------------- writing

function text(tag: string, value: string | undefined): Element | undefined {
  return value === undefined ? undefined : element(tag, value);
}

function flag(tag: string, value: boolean | undefined): Element | undefined {
  return value === true ? element(tag) : undefined;
}

function metaElement(meta: Meta | undefined): Element | undefined {
  if (meta === undefined) return undefined;
  return element(
    'Meta',
    text('Format', meta.format),
    text('Type', meta.type),
    text('Mark', meta.mark),
    text('Size', meta.size?.toString()),
    text('NextNonce', meta.nextNonce),
    text('Version', meta.version),
    text('MaxMsgSize', meta.maxMsgSize?.toString()),
    text('MaxObjSize', meta.maxObjSize?.toString()),
    ...(meta.emi ?? []).map((e) => element('EMI', e)),
  );
}

function locationElement(tag: string, location: Location | undefined): Element | undefined {
  return location === undefined ? undefined : element(tag, element('LocURI', location.locUri), text('LocName', location.locName));
}

function credElement(cred: Credential | undefined): Element | undefined {
  return cred === undefined ? undefined : element('Cred', metaElement(cred.meta), element('Data', cred.data));
}

function itemElement(item: Item): Element {
  const data: Node | undefined = item.data;
  return element(
    'Item',
    locationElement('Target', item.target),
    locationElement('Source', item.source),
    item.sourceParent === undefined ? undefined : element('SourceParent', element('LocURI', item.sourceParent)),
    item.targetParent === undefined ? undefined : element('TargetParent', element('LocURI', item.targetParent)),
    metaElement(item.meta),
    data === undefined ? undefined : element('Data', data),
    flag('MoreData', item.moreData),
  );
}

function commandElement(command: Command): Element {
  switch (command.kind) {
    case 'Status':
      return element(
        'Status',
        element('CmdID', command.cmdId),
        element('MsgRef', command.msgRef),
        element('CmdRef', command.cmdRef),
        element('Cmd', command.cmd),
        ...(command.targetRefs ?? []).map((r) => element('TargetRef', r)),
        ...(command.sourceRefs ?? []).map((r) => element('SourceRef', r)),
        credElement(command.cred),
        command.chal === undefined ? undefined : element('Chal', metaElement(command.chal.meta)),
        element('Data', String(command.code)),
        ...(command.items ?? []).map(itemElement),
      );
    case 'Results':
      return element(
        'Results',
        element('CmdID', command.cmdId),
        text('MsgRef', command.msgRef),
        element('CmdRef', command.cmdRef),
        metaElement(command.meta),
        text('TargetRef', command.targetRef),
        text('SourceRef', command.sourceRef),
        ...command.items.map(itemElement),
      );
    case 'Alert':
      return element(
        'Alert',
        element('CmdID', command.cmdId),
        flag('NoResp', command.noResp),
        credElement(command.cred),
        text('Data', command.code?.toString()),
        text('Correlator', command.correlator),
        ...(command.items ?? []).map(itemElement),
      );
    case 'Atomic':
    case 'Sequence':
      return element(command.kind, element('CmdID', command.cmdId), flag('NoResp', command.noResp), metaElement(command.meta), ...command.commands.map(commandElement));
    case 'Unsupported':
      throw new RangeError(`<${command.tag}> is not a DM command Depot writes`);
    default:
      return element(
        command.kind,
        element('CmdID', command.cmdId),
        flag('NoResp', command.noResp),
        text('Lang', command.kind === 'Get' ? command.lang : undefined),
        credElement(command.cred),
        metaElement(command.meta),
        text('Correlator', command.kind === 'Exec' ? command.correlator : undefined),
        ...command.items.map(itemElement),
      );
  }
}

/** The element tree of a message, children in the DTD's order. */
export function syncMLElement(message: SyncMLMessage): Element {
  const h = message.header;
  const header = element(
    'SyncHdr',
    element('VerDTD', h.verDTD),
    element('VerProto', h.verProto),
    element('SessionID', h.sessionId),
    element('MsgID', h.msgId),
    locationElement('Target', h.target),
    locationElement('Source', h.source),
    text('RespURI', h.respUri),
    flag('NoResp', h.noResp),
    credElement(h.cred),
    metaElement(h.meta),
  );
  return element('SyncML', header, element('SyncBody', ...message.commands.map(commandElement), flag('Final', message.final)));
}

// ---------------------------------------------------------------- bytes

export interface SyncMLDecodeOptions {
  readonly limits?: Partial<DecodeLimits>;
}

/**
 * Decodes a message body of the given encoding (from the HTTP Content-Type). Throws an
 * OmaDmFormatError (WbxmlFormatError, XmlFormatError or SyncMLFormatError) and nothing else.
 */
export function decodeSyncML(body: Uint8Array, encoding: SyncMLEncoding, options: SyncMLDecodeOptions = {}): SyncMLMessage {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  try {
    const root = encoding === 'wbxml' ? decodeWbxml(body, { limits }).root : parseXml(body, { limits });
    return readSyncML(root);
  } catch (error) {
    if (error instanceof OmaDmFormatError) throw error;
    // A decoder bug must still reach the session as a format error it can answer, not a crash.
    throw new SyncMLFormatError(`unexpected decoder failure: ${String(error)}`, REPPRO, 'SyncML');
  }
}

export function encodeSyncML(message: SyncMLMessage, encoding: SyncMLEncoding, options: WbxmlEncodeOptions = {}): Uint8Array {
  const root = syncMLElement(message);
  return encoding === 'wbxml' ? encodeWbxml(root, options) : Buffer.from(writeXml(root), 'utf8');
}

/** The encoding a Content-Type names, or undefined if it is not SyncML DM. */
export function encodingOfContentType(contentType: string): SyncMLEncoding | undefined {
  const mediaType = contentType.split(';')[0]!.trim().toLowerCase();
  return mediaType === SYNCML_DM_XML ? 'xml' : mediaType === SYNCML_DM_WBXML ? 'wbxml' : undefined;
}
