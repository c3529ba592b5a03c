/**
 * What the fleet needs from the layers below it, declared here by the fleet (ports belong to
 * the layer that uses them). The LwM2M server satisfies Lwm2mDevicePort structurally; tests can
 * hand the fleet something smaller.
 */
import type { BlockSource } from '../coap/server.js';
import type { Lwm2mNode } from '../lwm2m/node.js';
import type { DeviceResponse, OperationOutcome } from '../lwm2m/server/server.js';
import type { DeviceFactsRepository, Registration, RegistrationRepository, SettingsRepository } from '../store/types.js';
import type { InstallJobRepository } from './domain.js';

/** A device's contact with Depot over LwM2M (registration or update): the queue-mode wake-up. */
export type ContactEvent = 'registered' | 'updated';

/**
 * The LwM2M operations the Object 9 method sends, and the registration events that tell it a
 * device is awake. Errors: Lwm2mServerError TRANSPORT when the device does not answer.
 */
export interface Lwm2mDevicePort {
  isReachable(registration: Registration): boolean;
  read(endpoint: string, path: string): Promise<OperationOutcome>;
  write(endpoint: string, path: string, node: Lwm2mNode): Promise<OperationOutcome>;
  /** Block1 write of a large body (push delivery); answers when the device has it all. */
  writeStream(endpoint: string, path: string, body: BlockSource, contentFormat: number): Promise<DeviceResponse>;
  execute(endpoint: string, path: string, args?: string): Promise<OperationOutcome>;
  create(endpoint: string, objectPath: string, instance: Lwm2mNode, contentFormat?: number): Promise<OperationOutcome>;
  observe(endpoint: string, path: string, onNotification: (response: DeviceResponse) => void): Promise<{ cancel: () => Promise<void> }>;
  on(event: ContactEvent, listener: (registration: Registration) => void): unknown;
  off(event: ContactEvent, listener: (registration: Registration) => void): unknown;
}

/** The repositories the install driver keeps its jobs and device knowledge in. */
export interface InstallStorePort {
  readonly installJobs: InstallJobRepository;
  readonly registrations: Pick<RegistrationRepository, 'getByEndpoint'>;
  readonly deviceFacts: Pick<DeviceFactsRepository, 'get' | 'upsert'>;
  readonly settings: SettingsRepository;
}
