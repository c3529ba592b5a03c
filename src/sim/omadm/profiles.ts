/**
 * Per-model compliance profiles of simulated OMA DM phones: real phones vary (the seed
 * specification says so), and the fleet's method chain is tested against each kind.
 */
import { DmPhone, httpTransport, phoneTree } from './phone.js';
import type { DmPhoneProfile, DmTransport } from './phone.js';
import { ScomoClient } from './scomo-client.js';
import type { SyncMLEncoding } from '../../omadm/syncml.js';

export const COMPLIANCE_PROFILES = {
  /** DM 1.2 and SCOMO 1.0, both encodings, MD5 or HMAC. */
  full: { description: 'OMA DM 1.2 with SCOMO 1.0', dm: true, scomo: true },
  'no-scomo': { description: 'OMA DM 1.2 without SCOMO (facts and commands only)', dm: true, scomo: false },
  'xml-only': { description: 'DM + SCOMO, XML only (no WBXML)', dm: true, scomo: true, encoding: 'xml' },
  'wbxml-only': { description: 'DM + SCOMO, WBXML only', dm: true, scomo: true, encoding: 'wbxml' },
  'md5-only': { description: 'DM + SCOMO, syncml:auth-md5 only (no HMAC)', dm: true, scomo: true, auth: 'md5' },
  untrusting: { description: 'DM + SCOMO, refuses Depot\'s certificate until its root is pushed', dm: true, scomo: true, untrusting: true },
  confirm: { description: 'DM + SCOMO, installs only after the user confirmed (Alert 1101)', dm: true, scomo: true, confirm: true },
  flaky: { description: 'DM + SCOMO, fails a third of its installs (seeded)', dm: true, scomo: true, failureRate: 1 / 3 },
  'no-dm': { description: 'no OMA DM client at all', dm: false, scomo: false },
} as const satisfies Record<string, { description: string; dm: boolean; scomo: boolean; encoding?: SyncMLEncoding; auth?: 'md5' | 'hmac'; untrusting?: boolean; confirm?: boolean; failureRate?: number }>;

export type ComplianceProfileName = keyof typeof COMPLIANCE_PROFILES;
export const COMPLIANCE_PROFILE_NAMES = Object.keys(COMPLIANCE_PROFILES) as ComplianceProfileName[];

/** The models the profiles stand for (make/model/OS as DevInfo/DevDetail report them). */
const MODELS: Readonly<Record<ComplianceProfileName, { man: string; mod: string; swv: string }>> = {
  full: { man: 'Acme', mod: 'A1 Pro', swv: 'Android 4.4' },
  'no-scomo': { man: 'Globex', mod: 'G2', swv: 'Android 4.1' },
  'xml-only': { man: 'Initech', mod: 'Feature 300', swv: 'S40 6.1' },
  'wbxml-only': { man: 'Umbrella', mod: 'U5', swv: 'Symbian 9.4' },
  'md5-only': { man: 'Hooli', mod: 'H-Phone', swv: 'Windows Phone 8' },
  untrusting: { man: 'Acme', mod: 'A1 Lite', swv: 'Android 4.2' },
  confirm: { man: 'Stark', mod: 'S-Talk', swv: 'Android 5.0' },
  flaky: { man: 'Wayne', mod: 'W-Mobile', swv: 'Tizen 2.3' },
  'no-dm': { man: 'Cyberdyne', mod: 'T-800 basic', swv: 'RTOS 1' },
};

/** Trust that changes at run time: the untrusting phone gets Depot's root only when it is pushed. */
export class PhoneTrust {
  private roots: string[];

  constructor(initial: readonly string[]) {
    this.roots = [...initial];
  }

  push(rootPem: string): void {
    if (!this.roots.includes(rootPem)) this.roots.push(rootPem);
  }

  get current(): readonly string[] {
    return this.roots;
  }
}

/** A transport whose trusted roots are read at each request. */
export function trustingTransport(trust: PhoneTrust): DmTransport {
  // No roots (an empty list, not Node's defaults) until one is pushed: Depot's certificate is refused.
  return { post: (url, body, headers) => httpTransport([...trust.current]).post(url, body, headers) };
}

export interface SimPhone {
  readonly profile: ComplianceProfileName;
  readonly deviceId: string;
  /** Undefined for a phone without OMA DM. */
  readonly phone: DmPhone | undefined;
  readonly scomo: ScomoClient | undefined;
  readonly trust: PhoneTrust;
}

export interface MakePhoneOptions {
  readonly deviceId: string;
  readonly password: string;
  readonly index: number;
  /** Depot's root (PEM): trusted from the start except by the untrusting profile. */
  readonly caPem?: string;
  readonly encoding?: SyncMLEncoding;
  readonly auth?: 'md5' | 'hmac';
  readonly seed?: number;
  /** What the simulated user answers to Alert 1101 (default yes). */
  readonly userConfirms?: () => boolean;
  /**
   * Any profile with OMA DM: the phone authenticates the server with these (its DM account's
   * server ID, password and first nonce), refusing a server that cannot prove them. Default: it does not.
   */
  readonly server?: { readonly serverId: string; readonly password: string; readonly nonce?: Uint8Array };
}

export function makeSimPhone(name: ComplianceProfileName, options: MakePhoneOptions): SimPhone {
  const p: { dm: boolean; scomo: boolean; encoding?: SyncMLEncoding; auth?: 'md5' | 'hmac'; untrusting?: boolean; confirm?: boolean; failureRate?: number } = COMPLIANCE_PROFILES[name];
  const trust = new PhoneTrust(p.untrusting === true || options.caPem === undefined ? [] : [options.caPem]);
  if (!p.dm) return { profile: name, deviceId: options.deviceId, phone: undefined, scomo: undefined, trust };
  const model = MODELS[name];
  const tree = { ...phoneTree(options.deviceId, options.index), './DevInfo/Man': model.man, './DevInfo/Mod': model.mod, './DevDetail/SwV': model.swv };
  const profile: DmPhoneProfile = {
    deviceId: options.deviceId, username: options.deviceId, password: options.password,
    encoding: p.encoding ?? options.encoding ?? (options.index % 2 === 0 ? 'xml' : 'wbxml'),
    auth: p.auth ?? options.auth ?? 'md5',
    tree,
    ...(options.userConfirms === undefined ? {} : { userConfirms: options.userConfirms }),
    ...(options.server === undefined ? {} : { server: options.server }),
  };
  const phone = new DmPhone(profile, p.untrusting === true ? trustingTransport(trust) : httpTransport(options.caPem));
  const scomo = p.scomo
    ? new ScomoClient(phone, {
        ...(options.caPem === undefined ? {} : { ca: p.untrusting === true ? trust.current : options.caPem }),
        requiresConfirmation: p.confirm === true,
        failureRate: p.failureRate ?? 0,
        seed: options.seed ?? options.index + 1,
      })
    : undefined;
  return { profile: name, deviceId: options.deviceId, phone, scomo, trust };
}
