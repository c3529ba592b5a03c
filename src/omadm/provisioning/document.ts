/**
 * The OMA DM account as a Client Provisioning document: the APPLICATION characteristic with
 * APPID w7 (the OMNA registration of OMA DM for OMA-WAP-ProvCont, as OMA-TS-DM_Bootstrap-V1_2
 * "Bootstrap via Client Provisioning" maps it onto the DMAcc tree):
 *
 *   APPID        w7
 *   PROVIDER-ID  the ServerID (what the notification names and the session's Target is)
 *   NAME         a name shown to the user
 *   ADDR         the server's URI (APPADDR/ADDR with PORT/PORTNBR when a profile wants the port apart)
 *   INIT         present: open a session right after the bootstrap (DM Bootstrap)
 *   APPAUTH      AAUTHLEVEL APPSRV: how the server proves itself (AAUTHNAME ServerID, AAUTHSECRET,
 *                AAUTHDATA the nonce, base64), also the notification digest's credentials
 *   APPAUTH      AAUTHLEVEL CLIENT: what the client proves (AAUTHNAME, AAUTHSECRET, AAUTHDATA)
 *   AAUTHTYPE    DIGEST (syncml:auth-md5), HMAC (x-syncml-hmac), BASIC
 *
 * Depot's root certificate, for clients that must be given it (a model profile says so), goes in a
 * VENDORCONFIG characteristic (NAME DepotRootCA, CERT base64 DER): no OMA characteristic carries
 * one, and devices that take it read their vendor's block.
 */
import { type ProvNode, ProvisioningFormatError, PROV_CLAUSE } from './wbxml.js';

export type DmAuthKind = 'DIGEST' | 'HMAC' | 'BASIC';

export interface DmCredentials {
  readonly name: string;
  readonly secret: string;
  readonly nonce: Uint8Array;
}

export interface DmAccountBootstrap {
  readonly serverId: string;
  readonly name: string;
  /** The server URI, e.g. https://dm.example.com:8443/dm. */
  readonly address: string;
  /** When set, the address goes under APPADDR with PORT/PORTNBR (some clients need the port apart). */
  readonly port?: number;
  readonly authType: DmAuthKind;
  readonly server: DmCredentials;
  readonly client: DmCredentials;
  /** Ask the client to open a session as soon as it has the account. */
  readonly init?: boolean;
  /** Depot's root certificate (DER) for clients that must be given it. */
  readonly rootCertificate?: Uint8Array;
}

const parm = (name: string, value?: string): ProvNode => ({ tag: 'parm', attributes: value === undefined ? [['name', name]] : [['name', name], ['value', value]], children: [] });
const characteristic = (type: string, children: ProvNode[]): ProvNode => ({ tag: 'characteristic', attributes: [['type', type]], children });

function appAuth(level: 'APPSRV' | 'CLIENT', type: DmAuthKind, c: DmCredentials): ProvNode {
  return characteristic('APPAUTH', [
    parm('AAUTHLEVEL', level),
    parm('AAUTHTYPE', type),
    parm('AAUTHNAME', c.name),
    parm('AAUTHSECRET', c.secret),
    parm('AAUTHDATA', Buffer.from(c.nonce).toString('base64')),
  ]);
}

/** The provisioning document (version 1.0) for one DM account. */
export function dmAccountDocument(a: DmAccountBootstrap): ProvNode {
  const app: ProvNode[] = [parm('APPID', 'w7'), parm('PROVIDER-ID', a.serverId), parm('NAME', a.name)];
  if (a.port === undefined) app.push(parm('ADDR', a.address));
  else app.push(characteristic('APPADDR', [parm('ADDR', a.address), characteristic('PORT', [parm('PORTNBR', String(a.port))])]));
  if (a.init === true) app.push(parm('INIT'));
  app.push(appAuth('APPSRV', a.authType, a.server), appAuth('CLIENT', a.authType, a.client));
  const children: ProvNode[] = [characteristic('APPLICATION', app)];
  if (a.rootCertificate !== undefined) {
    children.push(characteristic('VENDORCONFIG', [parm('NAME', 'DepotRootCA'), parm('CERT', Buffer.from(a.rootCertificate).toString('base64'))]));
  }
  return { tag: 'wap-provisioningdoc', attributes: [['version', '1.0']], children };
}

function attr(n: ProvNode, name: string): string | undefined {
  return n.attributes.find(([k]) => k === name)?.[1];
}

function parms(n: ProvNode): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of n.children) if (c.tag === 'parm') {
    const name = attr(c, 'name');
    if (name !== undefined && !out.has(name)) out.set(name, attr(c, 'value') ?? '');
  }
  return out;
}

function fail(message: string): never {
  throw new ProvisioningFormatError(message, PROV_CLAUSE);
}

function nonceOf(text: string | undefined, what: string): Uint8Array {
  if (text === undefined || text === '') return new Uint8Array();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail(`${what} AAUTHDATA is not base64`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** Reads the w7 application of a provisioning document (the device's side); ProvisioningFormatError if it has none or it is incomplete. */
export function readDmAccount(doc: ProvNode): DmAccountBootstrap {
  const app = doc.children.find((c) => c.tag === 'characteristic' && attr(c, 'type') === 'APPLICATION' && parms(c).get('APPID') === 'w7');
  if (app === undefined) fail('no APPLICATION characteristic with APPID w7');
  const p = parms(app);
  const serverId = p.get('PROVIDER-ID');
  if (serverId === undefined || serverId === '') fail('the w7 application has no PROVIDER-ID');
  let address = p.get('ADDR');
  let port: number | undefined;
  const appAddr = app.children.find((c) => attr(c, 'type') === 'APPADDR');
  if (address === undefined && appAddr !== undefined) {
    address = parms(appAddr).get('ADDR');
    const portChar = appAddr.children.find((c) => attr(c, 'type') === 'PORT');
    const nbr = portChar === undefined ? undefined : parms(portChar).get('PORTNBR');
    if (nbr !== undefined) {
      if (!/^\d{1,5}$/.test(nbr) || Number(nbr) > 65535) fail(`PORTNBR ${JSON.stringify(nbr.slice(0, 10))} is not a port`);
      port = Number(nbr);
    }
  }
  if (address === undefined || address === '') fail('the w7 application has no ADDR');
  const auths = app.children.filter((c) => attr(c, 'type') === 'APPAUTH').map(parms);
  const creds = (level: string): { type: DmAuthKind; c: DmCredentials } => {
    const a = auths.find((m) => m.get('AAUTHLEVEL') === level);
    if (a === undefined) fail(`the w7 application has no APPAUTH of level ${level}`);
    const type = a.get('AAUTHTYPE') ?? 'DIGEST';
    if (type !== 'DIGEST' && type !== 'HMAC' && type !== 'BASIC') fail(`AAUTHTYPE ${JSON.stringify(type.slice(0, 20))} is not DIGEST, HMAC or BASIC`);
    return { type, c: { name: a.get('AAUTHNAME') ?? '', secret: a.get('AAUTHSECRET') ?? '', nonce: nonceOf(a.get('AAUTHDATA'), level) } };
  };
  const server = creds('APPSRV');
  const client = creds('CLIENT');
  if (client.c.name === '' || client.c.secret === '') fail('the CLIENT credentials have no AAUTHNAME or AAUTHSECRET');
  const vendor = doc.children.find((c) => attr(c, 'type') === 'VENDORCONFIG' && parms(c).get('NAME') === 'DepotRootCA');
  const cert = vendor === undefined ? undefined : parms(vendor).get('CERT');
  return {
    serverId,
    name: p.get('NAME') ?? serverId,
    address,
    ...(port === undefined ? {} : { port }),
    authType: client.type,
    server: server.c,
    client: client.c,
    ...(p.has('INIT') ? { init: true } : {}),
    ...(cert === undefined ? {} : { rootCertificate: new Uint8Array(Buffer.from(cert, 'base64')) }),
  };
}
