/**
 * Per-model client quirks and per-group bootstrap options, as data. DM clients differ in what
 * they expect of a notification (the version field, how they compute the digest) and of a
 * provisioning document (the port apart from the address, INIT, Depot's root certificate, which
 * security method they implement); the seed says as much ("the level at which devices comply
 * with the OMA standard is not uniform"). A profile is plain JSON kept in the store under
 * `model:<name>`; anything it does not say comes from DEFAULT_PROFILE.
 */
import type { DigestVariant, UiMode } from '../notification.js';
import type { PushSecurity } from '../push-port.js';
import type { DmAuthKind } from '../provisioning/document.js';

export interface ModelProfile {
  readonly notification: {
    /** The version field's value (10 bits): 12 for DM 1.2; some clients want 11. */
    readonly version: number;
    readonly digest: DigestVariant;
    readonly uiMode: UiMode;
  };
  readonly provisioning: {
    /** The method this model implements; a group's choice wins when the model supports several. */
    readonly security: PushSecurity;
    /** The address under APPADDR with PORT/PORTNBR instead of one ADDR with the port in it. */
    readonly separatePort: boolean;
    /** INIT: open a session as soon as the account is installed. */
    readonly init: boolean;
    /** Put Depot's root certificate in the document (clients that do not know Depot's CA). */
    readonly rootCertificate: boolean;
    readonly authType: DmAuthKind;
  };
}

export const DEFAULT_PROFILE: ModelProfile = {
  notification: { version: 12, digest: 'standard', uiMode: 0 },
  provisioning: { security: 'USERPIN', separatePort: false, init: true, rootCertificate: false, authType: 'DIGEST' },
};

/** Group options: the PIN is kept apart (sealed), these are plain. */
export interface GroupOptions {
  readonly security?: PushSecurity;
  /** Bootstraps sent to one number without acceptance before Depot stops and tells the operator. */
  readonly maxSends?: number;
}

export class ProfileError extends Error {}

function pick<T>(value: unknown, allowed: readonly T[], what: string): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new ProfileError(`${what} must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
  return value as T;
}

function bool(value: unknown, what: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new ProfileError(`${what} must be true or false`);
  return value;
}

const SECURITY: readonly PushSecurity[] = ['USERPIN', 'NETWPIN', 'USERNETWPIN'];

/** A profile from stored or operator JSON over the defaults; ProfileError naming the first bad field. */
export function profileFrom(data: unknown, base: ModelProfile = DEFAULT_PROFILE): ModelProfile {
  if (data === undefined || data === null) return base;
  if (typeof data !== 'object' || Array.isArray(data)) throw new ProfileError('a model profile is an object');
  const d = data as { notification?: Record<string, unknown>; provisioning?: Record<string, unknown> };
  for (const k of Object.keys(d)) if (k !== 'notification' && k !== 'provisioning') throw new ProfileError(`unknown profile field ${JSON.stringify(k.slice(0, 40))}`);
  const n = d.notification ?? {};
  const p = d.provisioning ?? {};
  for (const k of Object.keys(n)) if (!['version', 'digest', 'uiMode'].includes(k)) throw new ProfileError(`unknown notification field ${JSON.stringify(k.slice(0, 40))}`);
  for (const k of Object.keys(p)) if (!['security', 'separatePort', 'init', 'rootCertificate', 'authType'].includes(k)) throw new ProfileError(`unknown provisioning field ${JSON.stringify(k.slice(0, 40))}`);
  const version = n.version;
  if (version !== undefined && (typeof version !== 'number' || !Number.isInteger(version) || version < 10 || version > 0x3ff)) throw new ProfileError('notification.version must be an integer 10 to 1023');
  return {
    notification: {
      version: version ?? base.notification.version,
      digest: pick(n.digest, ['standard', 'nonce-as-base64-text', 'zero'] as const, 'notification.digest') ?? base.notification.digest,
      uiMode: pick(n.uiMode, [0, 1, 2, 3] as const, 'notification.uiMode') ?? base.notification.uiMode,
    },
    provisioning: {
      security: pick(p.security, SECURITY, 'provisioning.security') ?? base.provisioning.security,
      separatePort: bool(p.separatePort, 'provisioning.separatePort') ?? base.provisioning.separatePort,
      init: bool(p.init, 'provisioning.init') ?? base.provisioning.init,
      rootCertificate: bool(p.rootCertificate, 'provisioning.rootCertificate') ?? base.provisioning.rootCertificate,
      authType: pick(p.authType, ['DIGEST', 'HMAC'] as const, 'provisioning.authType') ?? base.provisioning.authType,
    },
  };
}

/** Group options from JSON; ProfileError naming the bad field. */
export function groupOptionsFrom(data: unknown): GroupOptions {
  if (data === undefined || data === null) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new ProfileError('group options are an object');
  const d = data as Record<string, unknown>;
  for (const k of Object.keys(d)) if (k !== 'security' && k !== 'maxSends') throw new ProfileError(`unknown group option ${JSON.stringify(k.slice(0, 40))}`);
  const security = pick(d.security, SECURITY, 'security');
  if (d.maxSends !== undefined && (typeof d.maxSends !== 'number' || !Number.isInteger(d.maxSends) || d.maxSends < 1 || d.maxSends > 20)) throw new ProfileError('maxSends must be an integer 1 to 20');
  return { ...(security === undefined ? {} : { security }), ...(d.maxSends === undefined ? {} : { maxSends: d.maxSends }) };
}
