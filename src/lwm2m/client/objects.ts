/**
 * The client's standard objects: 0 Security, 1 Server, 3 Device, 4 Connectivity Monitoring,
 * built on BasicObject from the generated definitions (src/lwm2m/objects/definitions.ts).
 */
import { ConnectivityMonitoringObject, DeviceObject, SecurityObject, ServerObject } from '../objects/definitions.js';
import { Value } from '../values.js';
import type { Lwm2mValue } from '../values.js';
import { BasicObject } from './basic-object.js';

/** Security Mode (/0/x/2, TS Core 1.1 Appendix E.1). */
export const SecurityMode = { PSK: 0, RPK: 1, Certificate: 2, NoSec: 3, CertificateEst: 4 } as const;

export interface SecurityAccount {
  /** LwM2M Server URI (/0/x/0), e.g. coaps://depot.example:5684. */
  uri: string;
  /** Whether this is the Bootstrap-Server account (/0/x/1). */
  bootstrap: boolean;
  /** Short Server ID (/0/x/10); not used for the Bootstrap-Server. */
  shortServerId?: number;
  /** PSK identity and key (Security Mode 0); none: NoSec (3). */
  psk?: { identity: string; key: Uint8Array };
  /**
   * Certificate mode (2): the device's certificate (/0/x/3, DER), its PKCS#8 private key
   * (/0/x/5, DER) and the server's certificate or, with Certificate Usage 2 ("trust anchor
   * assertion", /0/x/15), the CA its chain must lead to (/0/x/4, DER).
   */
  certificate?: { certificateDer: Uint8Array; privateKeyDer: Uint8Array; serverTrustDer: Uint8Array; usage: number };
  /** Client Hold Off Time (/0/x/11), seconds. */
  holdOffTime?: number;
}

export function securityValues(a: SecurityAccount): [number, Lwm2mValue][] {
  const c = a.certificate;
  const out: [number, Lwm2mValue][] = [
    [0, Value.string(a.uri)],
    [1, Value.boolean(a.bootstrap)],
    [2, Value.integer(c ? SecurityMode.Certificate : a.psk ? SecurityMode.PSK : SecurityMode.NoSec)],
    [3, Value.opaque(c ? Uint8Array.from(c.certificateDer) : a.psk ? new TextEncoder().encode(a.psk.identity) : new Uint8Array(0))],
    [4, Value.opaque(c ? Uint8Array.from(c.serverTrustDer) : new Uint8Array(0))],
    [5, Value.opaque(c ? Uint8Array.from(c.privateKeyDer) : a.psk ? Uint8Array.from(a.psk.key) : new Uint8Array(0))],
  ];
  if (c) out.push([15, Value.unsignedInteger(c.usage)]);
  if (a.shortServerId !== undefined && !a.bootstrap) out.push([10, Value.integer(a.shortServerId)]);
  if (a.holdOffTime !== undefined) out.push([11, Value.integer(a.holdOffTime)]);
  return out;
}

/** Reads a Security instance back into an account (undefined when the URI is missing). */
export function accountOf(obj: BasicObject, iid: number): SecurityAccount | undefined {
  const uri = obj.get(iid, 0);
  if (!uri || uri instanceof Map || uri.type !== 'string') return undefined;
  const flag = obj.get(iid, 1);
  const mode = obj.get(iid, 2);
  const identity = obj.get(iid, 3);
  const key = obj.get(iid, 5);
  const ssid = obj.get(iid, 10);
  const account: SecurityAccount = { uri: uri.value, bootstrap: !!flag && !(flag instanceof Map) && flag.type === 'boolean' && flag.value };
  const opaque = (v: typeof identity): Uint8Array | undefined => (v && !(v instanceof Map) && v.type === 'opaque' ? v.value : undefined);
  const modeValue = mode && !(mode instanceof Map) ? Number(mode.value) : undefined;
  const idBytes = opaque(identity);
  const keyBytes = opaque(key);
  if (modeValue === SecurityMode.PSK && idBytes && keyBytes) {
    account.psk = { identity: new TextDecoder().decode(idBytes), key: keyBytes };
  }
  const serverTrust = opaque(obj.get(iid, 4));
  if (modeValue === SecurityMode.Certificate && idBytes?.length && keyBytes?.length && serverTrust?.length) {
    const usage = obj.get(iid, 15);
    // Default Certificate Usage is 3 (domain-issued certificate), TS Core 1.1 Appendix E.1.
    account.certificate = { certificateDer: idBytes, privateKeyDer: keyBytes, serverTrustDer: serverTrust, usage: usage && !(usage instanceof Map) ? Number(usage.value) : 3 };
  }
  if (ssid && !(ssid instanceof Map) && (ssid.type === 'integer' || ssid.type === 'unsignedInteger')) account.shortServerId = Number(ssid.value);
  return account;
}

export function createSecurityObject(accounts: readonly SecurityAccount[] = []): BasicObject {
  return new BasicObject({
    definition: SecurityObject,
    instances: accounts.map((a, i) => [i, securityValues(a)] as const),
    version: '1.1',
  });
}

export interface ServerAccount {
  shortServerId: number;
  /** Registration lifetime, seconds (/1/x/1). */
  lifetime: number;
  /** Binding (/1/x/7), "U" by default. */
  binding?: string;
  /** Default pmin / pmax for observations (/1/x/2, /1/x/3), seconds. */
  defaultMinPeriod?: number;
  defaultMaxPeriod?: number;
}

export interface ServerHooks {
  /** Registration Update Trigger (/1/x/8) was executed. */
  onUpdateTrigger?(iid: number): void;
  /** Bootstrap-Request Trigger (/1/x/9) was executed. */
  onBootstrapTrigger?(iid: number): void;
}

export function serverValues(s: ServerAccount): [number, Lwm2mValue][] {
  const out: [number, Lwm2mValue][] = [
    [0, Value.integer(s.shortServerId)],
    [1, Value.unsignedInteger(s.lifetime)],
    [6, Value.boolean(false)],
    [7, Value.string(s.binding ?? 'U')],
  ];
  if (s.defaultMinPeriod !== undefined) out.push([2, Value.unsignedInteger(s.defaultMinPeriod)]);
  if (s.defaultMaxPeriod !== undefined) out.push([3, Value.unsignedInteger(s.defaultMaxPeriod)]);
  return out;
}

export function createServerObject(servers: readonly ServerAccount[] = [], hooks: ServerHooks = {}): BasicObject {
  return new BasicObject({
    definition: ServerObject,
    instances: servers.map((s, i) => [i, serverValues(s)] as const),
    execute: {
      8: (iid) => hooks.onUpdateTrigger?.(iid),
      9: (iid) => hooks.onBootstrapTrigger?.(iid),
    },
    version: '1.1',
  });
}

/** Object 3 facts. The fleet logic selects packages by manufacturer, model and software version. */
export interface DeviceInfo {
  manufacturer: string;
  modelNumber: string;
  serialNumber: string;
  firmwareVersion: string;
  deviceType?: string;
  hardwareVersion?: string;
  /** Software Version (/3/0/19): the OS / platform version packages are selected by. */
  softwareVersion?: string;
  /** Memory in KiB (/3/0/10, /3/0/21). */
  memoryFree?: number;
  memoryTotal?: number;
  batteryLevel?: number;
  /** Supported Binding and Modes (/3/0/16), default "U". */
  supportedBindings?: string;
}

export interface DeviceHooks {
  /** Reboot (/3/0/4): a no-op unless hooked. */
  onReboot?(): void | Promise<void>;
  /** Factory Reset (/3/0/5): a no-op unless hooked. */
  onFactoryReset?(): void | Promise<void>;
  /** Wall-clock time for Current Time (/3/0/13), default Date.now. */
  now?(): number;
}

export function createDeviceObject(info: DeviceInfo, hooks: DeviceHooks = {}): BasicObject {
  const values: [number, Lwm2mValue | Lwm2mValue[]][] = [
    [0, Value.string(info.manufacturer)],
    [1, Value.string(info.modelNumber)],
    [2, Value.string(info.serialNumber)],
    [3, Value.string(info.firmwareVersion)],
    [11, [Value.integer(0)]],
    [14, Value.string('+00:00')],
    [15, Value.string('Etc/UTC')],
    [16, Value.string(info.supportedBindings ?? 'U')],
  ];
  if (info.deviceType !== undefined) values.push([17, Value.string(info.deviceType)]);
  if (info.hardwareVersion !== undefined) values.push([18, Value.string(info.hardwareVersion)]);
  if (info.softwareVersion !== undefined) values.push([19, Value.string(info.softwareVersion)]);
  if (info.memoryFree !== undefined) values.push([10, Value.integer(info.memoryFree)]);
  if (info.memoryTotal !== undefined) values.push([21, Value.integer(info.memoryTotal)]);
  if (info.batteryLevel !== undefined) values.push([9, Value.integer(info.batteryLevel)]);
  const now = (): number => (hooks.now ? hooks.now() : Date.now());
  let device: BasicObject | undefined = undefined;
  device = new BasicObject({
    definition: DeviceObject,
    instances: [[0, values]],
    execute: {
      4: () => hooks.onReboot?.(),
      5: () => hooks.onFactoryReset?.(),
      // Reset Error Code (/3/0/12): back to the single "no error" instance.
      12: () => device?.set(0, 11, [Value.integer(0)]),
    },
    dynamic: { 13: () => Value.time(Math.floor(now() / 1000)) },
    serverCreatable: false,
    version: '1.1',
  });
  return device;
}

export interface ConnectivityInfo {
  /** Network Bearer (/4/0/0), default 41 (Ethernet). */
  networkBearer?: number;
  availableBearers?: number[];
  /** dBm (/4/0/2). */
  radioSignalStrength?: number;
  linkQuality?: number;
  ipAddresses?: string[];
  routerIpAddresses?: string[];
  apn?: string[];
}

export function createConnectivityObject(info: ConnectivityInfo = {}): BasicObject {
  const values: [number, Lwm2mValue | Lwm2mValue[]][] = [
    [0, Value.integer(info.networkBearer ?? 41)],
    [1, (info.availableBearers ?? [info.networkBearer ?? 41]).map((b) => Value.integer(b))],
    [2, Value.integer(info.radioSignalStrength ?? -65)],
    [3, Value.integer(info.linkQuality ?? 100)],
    [4, (info.ipAddresses ?? ['127.0.0.1']).map((a) => Value.string(a))],
  ];
  if (info.routerIpAddresses) values.push([5, info.routerIpAddresses.map((a) => Value.string(a))]);
  if (info.apn) values.push([7, info.apn.map((a) => Value.string(a))]);
  return new BasicObject({ definition: ConnectivityMonitoringObject, instances: [[0, values]], serverCreatable: false, version: '1.3' });
}
