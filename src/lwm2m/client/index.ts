/** LwM2M client engine (device side). See docs/lwm2m-client.md. */
export * from './object-api.js';
export * from './basic-object.js';
export * from './objects.js';
export * from './object9-adapter.js';
export * from './engine.js';
export { QueueModeTransport } from './queue-mode.js';
export { loadClientState, saveClientState } from './state.js';
export type { PersistedClientState } from './state.js';
export { DefaultPackageFetcher } from './package-fetcher.js';
