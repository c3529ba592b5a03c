/**
 * The Depot package format, shared by the server (building, cataloguing) and the device
 * client (staging, verifying, installing). See manifest.ts for the container layout and
 * archive.ts for the payload archive.
 */
export * from './archive.js';
export * from './manifest.js';
export * from './stream.js';
export * from './verify.js';
