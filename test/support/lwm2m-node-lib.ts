/**
 * Typed access to Telefonica's lwm2m-node-lib (npm, CommonJS, no types), an independent
 * LwM2M 1.0 client and server on node-coap 0.22, for the interop tests. Only the parts the
 * tests use are declared; every callback API is wrapped in a promise.
 *
 * The library is a set of module-level singletons (one client registry, one server), so one
 * test file drives at most one foreign client and one foreign server.
 */
import { createRequire } from 'node:module';

/** The library's errors: plain objects with a name, a message and (mostly) a CoAP code. */
export interface ForeignError {
  name: string;
  message: string;
  code?: string;
}

type Callback<T> = (error: ForeignError | null | undefined, result: T) => void;

/** An object instance in the client's registry; resource values are strings keyed by id. */
export interface ForeignObject {
  objectType: string;
  objectId: string;
  objectUri: string;
  attributes: Record<string, string>;
}

export interface ForeignCoapServer {
  close(done?: () => void): void;
}

/** The client's registration state, as register() returns it. */
export interface ForeignDeviceInformation {
  currentHost: string;
  currentPort: number;
  /** Location-Path options joined with '/', e.g. "rd/Xy12". */
  location: string;
  /** The port the registration was sent from, where the client's listener then binds. */
  localPort: number;
  serverInfo: { server: ForeignCoapServer };
}

/** A user handler for read, write or execute on the client: gets the value (or arguments), answers through the callback. */
export type ForeignClientHandler = (objectType: string, objectId: string, resourceId: string, value: string, callback: (error?: ForeignError | null, result?: string) => void) => void;

export interface ForeignFormat {
  name: string;
  value: number;
}

export interface ForeignClientConfig {
  logLevel?: string;
  client: {
    lifetime: string;
    version: string;
    logLevel?: string;
    ipProtocol: 'udp4' | 'udp6';
    serverProtocol: 'udp4' | 'udp6';
    formats?: ForeignFormat[];
  };
}

interface ClientModule {
  init(config: ForeignClientConfig, callback?: () => void): void;
  registry: {
    create(uri: string, callback: Callback<ForeignObject>): void;
    get(uri: string, callback: Callback<ForeignObject>): void;
    setResource(uri: string, resourceId: string, value: string, callback: Callback<ForeignObject>): void;
    reset(callback?: () => void): void;
  };
  register(host: string, port: number, url: string | null, endpoint: string, callback: Callback<ForeignDeviceInformation>): void;
  update(info: ForeignDeviceInformation, callback: Callback<ForeignDeviceInformation>): void;
  unregister(info: ForeignDeviceInformation, callback: Callback<unknown>): void;
  setHandler(serverInfo: ForeignDeviceInformation['serverInfo'], type: 'read' | 'write' | 'execute', handler: ForeignClientHandler): void;
  cancellAllObservers(callback: Callback<unknown>): void;
}

export interface ForeignServerConfig {
  port: number;
  logLevel?: string;
  lifetimeCheckInterval: number;
  udpWindow?: number;
  defaultType: string;
  ipProtocol: 'udp4' | 'udp6';
  serverProtocol: 'udp4' | 'udp6';
  formats?: ForeignFormat[];
  /** Content-Format name for Write and Execute requests (default "lightweightm2m/text", 1541). */
  writeFormat?: string;
  /** Accept option for Read (absent by default). */
  defaultAcceptFormat?: string;
}

/** A device in the server's in-memory registry. */
export interface ForeignDevice {
  id: number;
  name: string;
  lifetime: string;
  address: string;
  port: number;
  path: string;
  type: string;
}

export interface ForeignServerInfo {
  server: ForeignCoapServer;
}

export type ForeignRegistrationHandler = (endpoint: string, lifetime: string, version: string, binding: string, payload: string, callback: (error?: ForeignError | null) => void) => void;
export type ForeignDeviceHandler = (device: ForeignDevice, callback: (error?: ForeignError | null) => void) => void;
export type ForeignUpdateHandler = (device: ForeignDevice, payload: string, callback: (error?: ForeignError | null) => void) => void;

interface ServerModule {
  start(config: ForeignServerConfig, callback: Callback<ForeignServerInfo>): void;
  stop(serverInfo: ForeignServerInfo, callback: Callback<unknown>): void;
  setHandler(serverInfo: ForeignServerInfo, type: 'registration', handler: ForeignRegistrationHandler): void;
  setHandler(serverInfo: ForeignServerInfo, type: 'unregistration', handler: ForeignDeviceHandler): void;
  setHandler(serverInfo: ForeignServerInfo, type: 'updateRegistration', handler: ForeignUpdateHandler): void;
  read(deviceId: number, objectType: number, objectId: number, resourceId: number, callback: Callback<string>): void;
  write(deviceId: number, objectType: number, objectId: number, resourceId: number, value: string, callback: Callback<string>): void;
  execute(deviceId: number, objectType: number, objectId: number, resourceId: number, args: string, callback: Callback<string>): void;
  /** Discover of an Object Instance (the three-id form; the callback takes the resource id's place). */
  discover(deviceId: number, objectType: number, objectId: number, callback: Callback<string>): void;
  /** Observe: resolves with the first value; later ones go to `handler`. */
  observe(deviceId: number, objectType: number, objectId: number, resourceId: number, handler: (value: string, objectType: string, objectId: string, resourceId: string, deviceId: number) => void, callback: Callback<string>): void;
  cancelObserver(deviceId: number, objectType: number, objectId: number, resourceId: number, callback: Callback<unknown>): void;
  listDevices(callback: Callback<ForeignDevice[]>): void;
  getDevice(name: string, callback: Callback<ForeignDevice>): void;
  getRegistry(): { stopLifetimeCheck(): void };
}

export interface Lwm2mNodeLib {
  client: ClientModule;
  server: ServerModule;
}

/** Loads the CommonJS package (its mongoose/mongodb dependencies are loaded too, never connected). */
export function loadLwm2mNodeLib(): Lwm2mNodeLib {
  const require = createRequire(import.meta.url);
  return require('lwm2m-node-lib') as Lwm2mNodeLib;
}

/** Calls a callback-style function and resolves with its result (rejects with the library's error). */
export function call<T>(fn: (callback: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    fn((error, result) => {
      if (error) reject(Object.assign(new Error(`${error.name}: ${error.message}`), { code: error.code, foreign: error }));
      else resolve(result);
    });
  });
}

/**
 * The LwM2M content formats by their IANA numbers (TS Core 1.1 §7.1), to register with the
 * library's node-coap: node-coap 0.22 drops any request whose Accept or Content-Format it has
 * no name for (no answer at all, not 4.06), and it knows none of these by default.
 */
export const LWM2M_FORMATS: ForeignFormat[] = [
  { name: 'application/vnd.oma.lwm2m+tlv', value: 11542 },
  { name: 'application/vnd.oma.lwm2m+json', value: 11543 },
  { name: 'application/vnd.oma.lwm2m+cbor', value: 11544 },
  { name: 'application/senml+json', value: 110 },
  { name: 'application/senml+cbor', value: 112 },
  // The library's own default write format, a pre-registration number (LwM2M 1.0 drafts).
  { name: 'lightweightm2m/text', value: 1541 },
];
