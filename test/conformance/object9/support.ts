/**
 * Shared helpers for the Object 9 conformance tests. The wire integers below are typed in
 * here again on purpose (not imported from encoding.ts) so that an encoding bug fails tests.
 */
import * as assert from 'node:assert/strict';
import type { MachineEvent, MachineState, PkgState, UpdateResult } from '../../../src/lwm2m/objects/software-management/model.js';
import { INITIAL_MACHINE_STATE } from '../../../src/lwm2m/objects/software-management/model.js';
import { run, step, type StepOutcome } from '../../../src/lwm2m/objects/software-management/machine.js';
import { encodeSnapshot, type ProfileName } from '../../../src/lwm2m/objects/software-management/encoding.js';

export const ENCODINGS: readonly ProfileName[] = ['seed', 'registry'];

/** Expected wire integers: seed = spec file §6; registry = OMA registry 9.xml (1.0 / 1.1). */
export const WIRE = {
  seed: {
    state: { INITIAL: 1, DOWNLOAD_STARTED: 2, DOWNLOADED: 3, DELIVERED: 4, INSTALLED: 5 },
    result: {
      INITIAL: 0,
      DOWNLOADING: 1,
      INSTALLED: 2,
      NOT_ENOUGH_STORAGE: 3,
      OUT_OF_MEMORY: 4,
      CONNECTION_LOST: 5,
      INTEGRITY_FAILURE: 6,
      UNSUPPORTED_PACKAGE_TYPE: 7,
      INVALID_URI: 8,
      DEVICE_ERROR: 9,
      INSTALL_FAILURE: 10,
    },
  },
  registry: {
    state: { INITIAL: 0, DOWNLOAD_STARTED: 1, DOWNLOADED: 2, DELIVERED: 3, INSTALLED: 4 },
    result: {
      INITIAL: 0,
      DOWNLOADING: 1,
      INSTALLED: 2,
      NOT_ENOUGH_STORAGE: 50,
      OUT_OF_MEMORY: 51,
      CONNECTION_LOST: 52,
      INTEGRITY_FAILURE: 53,
      UNSUPPORTED_PACKAGE_TYPE: 54,
      INVALID_URI: 56,
      DEVICE_ERROR: 57,
      INSTALL_FAILURE: 58,
    },
  },
} as const;

export type SpecResult = keyof (typeof WIRE)['seed']['result'];

export const E = {
  writePackage: { type: 'write', via: 'package' },
  writeUri: { type: 'write', via: 'uri' },
  packageWritten: { type: 'packageWritten' },
  integrityOk: { type: 'integrityOk' },
  integrityKo: { type: 'integrityKo' },
  install: { type: 'install' },
  installSucceeded: { type: 'installSucceeded' },
  installFailed: { type: 'installFailed' },
  uninstall: { type: 'uninstall' },
  activate: { type: 'activate' },
  deactivate: { type: 'deactivate' },
} as const satisfies Record<string, MachineEvent>;

export type Situation =
  | 'INITIAL'
  | 'INITIAL_AFTER_ERROR'
  | 'DOWNLOAD_STARTED'
  | 'DOWNLOADED'
  | 'DELIVERED'
  | 'DELIVERED_INSTALLING'
  | 'DELIVERED_AFTER_FAILED_INSTALL'
  | 'INSTALLED_INACTIVE'
  | 'INSTALLED_ACTIVE';

/** Event paths from a fresh instance to each situation, through the machine itself. */
export const PATHS: Readonly<Record<Situation, readonly MachineEvent[]>> = {
  INITIAL: [],
  INITIAL_AFTER_ERROR: [E.writeUri, { type: 'downloadFailed', cause: 'CONNECTION_LOST' }],
  DOWNLOAD_STARTED: [E.writePackage],
  DOWNLOADED: [E.writePackage, E.packageWritten],
  DELIVERED: [E.writePackage, E.packageWritten, E.integrityOk],
  DELIVERED_INSTALLING: [E.writePackage, E.packageWritten, E.integrityOk, E.install],
  DELIVERED_AFTER_FAILED_INSTALL: [E.writePackage, E.packageWritten, E.integrityOk, E.install, E.installFailed],
  INSTALLED_INACTIVE: [E.writePackage, E.packageWritten, E.integrityOk, E.install, E.installSucceeded],
  INSTALLED_ACTIVE: [E.writePackage, E.packageWritten, E.integrityOk, E.install, E.installSucceeded, E.activate],
};

export const SITUATIONS = Object.keys(PATHS) as Situation[];

export function reach(situation: Situation): MachineState {
  const { state, outcomes } = run(INITIAL_MACHINE_STATE, PATHS[situation]);
  for (const o of outcomes) assert.equal(o.accepted, true, `path to ${situation}: ${o.accepted ? '' : o.reason}`);
  return state;
}

/** Asserts the exact wire values of rid 7, 9 and 12 for `s` under `encoding`. */
export function assertWire(
  encoding: ProfileName,
  s: MachineState,
  expected: { state: PkgState; result: SpecResult; enabled: boolean },
): void {
  const wire = encodeSnapshot(encoding, s);
  assert.deepEqual(wire, {
    updateState: WIRE[encoding].state[expected.state],
    updateResult: WIRE[encoding].result[expected.result],
    activationState: expected.enabled,
  });
}

/**
 * Asserts that `event` in `s` is rejected and has no effect at all (§5.1.3.1, §5.1.3.2, §5.2:
 * "no effect"). That the rejection is answered 4.05 Method Not Allowed is Depot's choice: the
 * spec says only that it has no effect.
 */
export function assertNoEffect(encoding: ProfileName, s: MachineState, event: MachineEvent): StepOutcome {
  const before = encodeSnapshot(encoding, s);
  const o = step(s, event);
  assert.equal(o.accepted, false, `${event.type} in ${s.pkg} should be rejected`);
  if (!o.accepted) assert.equal(o.coap, '4.05');
  assert.deepEqual(o.after, s);
  assert.deepEqual(encodeSnapshot(encoding, o.after), before);
  return o;
}

export function accept(s: MachineState, event: MachineEvent): StepOutcome & { accepted: true } {
  const o = step(s, event);
  assert.equal(o.accepted, true, o.accepted ? '' : o.reason);
  return o;
}

export type { UpdateResult };
