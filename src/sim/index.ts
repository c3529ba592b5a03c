/** The device simulator. See docs/lwm2m-client.md. */
export * from './profile.js';
export * from './simulator.js';
export * from './vendor-format.js';
