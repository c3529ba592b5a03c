/**
 * LwM2M Software Management Object (Object 9), device side. See docs/object9.md.
 */
export * from './model.js';
export * from './transitions.js';
export * from './machine.js';
export * from './encoding.js';
export * from './installer.js';
export * from './instance.js';
export * from './object.js';
