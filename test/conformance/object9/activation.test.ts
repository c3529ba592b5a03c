/**
 * §5.2 Software Activation State Machine, run in both encodings.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { step } from '../../../src/lwm2m/objects/software-management/machine.js';
import { ACTIVATION_TRANSITIONS } from '../../../src/lwm2m/objects/software-management/transitions.js';
import type { PkgState } from '../../../src/lwm2m/objects/software-management/model.js';
import { E, ENCODINGS, SITUATIONS, accept, assertNoEffect, assertWire, reach } from './support.js';

const notAlive = SITUATIONS.filter((s) => !s.startsWith('INSTALLED'));

for (const enc of ENCODINGS) {
  void describe(`Object 9 §5.2 software activation [${enc}]`, () => {
    for (const sit of notAlive) {
      void test(`§5.2 not alive outside INSTALLED (${sit}): Activate has no effect (answered 4.05: Depot's choice) [${enc}]`, () => {
        assertNoEffect(enc, reach(sit), E.activate);
      });
      void test(`§5.2 not alive outside INSTALLED (${sit}): Deactivate has no effect (answered 4.05: Depot's choice) [${enc}]`, () => {
        assertNoEffect(enc, reach(sit), E.deactivate);
      });
      void test(`§5.2 / §6 rid 12: Activation State is DISABLED when the machine is not alive (${sit}) [${enc}]`, () => {
        const s = reach(sit);
        assert.equal(s.activation, null);
        assertWire(enc, s, { state: stateOf(sit), result: resultOf(sit), enabled: false });
      });
    }

    void test(`§5.2 entering INSTALLED sets the Activation machine to INACTIVE [${enc}]`, () => {
      const o = accept(reach('DELIVERED_INSTALLING'), E.installSucceeded);
      assert.equal(o.after.activation, 'INACTIVE');
      assertWire(enc, o.after, { state: 'INSTALLED', result: 'INSTALLED', enabled: false });
    });

    void test(`§5.2 entering INSTALLED again after an ACTIVE life starts INACTIVE [${enc}]`, () => {
      let s = reach('INSTALLED_ACTIVE');
      for (const e of [E.uninstall, E.writeUri, E.packageWritten, E.integrityOk, E.install, E.installSucceeded]) s = accept(s, e).after;
      assert.equal(s.activation, 'INACTIVE');
      assertWire(enc, s, { state: 'INSTALLED', result: 'INSTALLED', enabled: false });
    });

    void test(`§5.2 Activate: INACTIVE -> ACTIVE, Activation State ENABLED [${enc}]`, () => {
      const o = accept(reach('INSTALLED_INACTIVE'), E.activate);
      assert.equal(o.row.id, 'activate');
      assert.deepEqual([o.row.section, o.row.transition], ['5.2', 'Activate']);
      assert.deepEqual(o.effects, [], 'only the Activation State changes');
      assert.equal(o.after.activation, 'ACTIVE');
      assertWire(enc, o.after, { state: 'INSTALLED', result: 'INSTALLED', enabled: true });
      assert.deepEqual(o.changes, [{ rid: 12, from: false, to: true }]);
    });

    void test(`§5.2 Deactivate: ACTIVE -> INACTIVE, Activation State DISABLED [${enc}]`, () => {
      const o = accept(reach('INSTALLED_ACTIVE'), E.deactivate);
      assert.equal(o.row.id, 'deactivate');
      assert.deepEqual([o.row.section, o.row.transition], ['5.2', 'Deactivate']);
      assert.deepEqual(o.effects, [], 'only the Activation State changes');
      assert.equal(o.after.activation, 'INACTIVE');
      assertWire(enc, o.after, { state: 'INSTALLED', result: 'INSTALLED', enabled: false });
      assert.deepEqual(o.changes, [{ rid: 12, from: true, to: false }]);
    });

    void test(`§5.2 Activate when already ACTIVE / Deactivate when INACTIVE change nothing (idempotent, Depot decision) [${enc}]`, () => {
      const a = accept(reach('INSTALLED_ACTIVE'), E.activate);
      assert.deepEqual(a.after, reach('INSTALLED_ACTIVE'));
      assert.deepEqual(a.changes, []);
      assert.deepEqual([a.row.id, a.row.section, a.row.transition, a.effects], ['activate-again', '5.2', 'Activate', []]);
      const d = accept(reach('INSTALLED_INACTIVE'), E.deactivate);
      assert.deepEqual(d.after, reach('INSTALLED_INACTIVE'));
      assert.deepEqual(d.changes, []);
      assert.deepEqual([d.row.id, d.row.section, d.row.transition, d.effects], ['deactivate-again', '5.2', 'Deactivate', []]);
    });

    void test(`§5.2 / §6 rid 12: Activation State is ENABLED only in ACTIVE [${enc}]`, () => {
      for (const sit of SITUATIONS) {
        const s = reach(sit);
        assert.equal(s.activation, ACTIVATION_OF[sit], sit);
        assertWire(enc, s, { state: stateOf(sit), result: resultOf(sit), enabled: sit === 'INSTALLED_ACTIVE' });
      }
    });

    void test(`§5.2 activation transitions never touch Update State or Update Result [${enc}]`, () => {
      for (const row of ACTIVATION_TRANSITIONS) {
        assert.equal(row.from, 'INSTALLED');
        assert.equal(row.to, 'INSTALLED');
        assert.equal(row.result.kind, 'unchanged');
      }
      for (const sit of ['INSTALLED_INACTIVE', 'INSTALLED_ACTIVE'] as const) {
        for (const e of [E.activate, E.deactivate]) {
          const o = step(reach(sit), e);
          assert.ok(o.accepted);
          assert.equal(o.after.pkg, 'INSTALLED');
          assert.equal(o.after.result, 'INSTALLED');
        }
      }
    });
  });
}

/**
 * Update State after each situation's event path (support.ts PATHS), from the §5.1.1 table's
 * "Post Transition State" column, typed in here rather than read back from the machine.
 */
function stateOf(sit: (typeof SITUATIONS)[number]): PkgState {
  switch (sit) {
    case 'INITIAL':
    case 'INITIAL_AFTER_ERROR': // PKG Download Failed -> INITIAL
      return 'INITIAL';
    case 'DOWNLOAD_STARTED': // PKG/URI Write -> DOWNLOAD STARTED
      return 'DOWNLOAD_STARTED';
    case 'DOWNLOADED': // PKG Written -> DOWNLOADED
      return 'DOWNLOADED';
    case 'DELIVERED': // PKG Integrity OK -> DELIVERED
    case 'DELIVERED_INSTALLING': // §5.1.2.4: DELIVERED until the installation succeeds
    case 'DELIVERED_AFTER_FAILED_INSTALL': // Install execution / Installation failure -> DELIVERED
      return 'DELIVERED';
    case 'INSTALLED_INACTIVE':
    case 'INSTALLED_ACTIVE': // Install execution / SW successfully Installed -> INSTALLED
      return 'INSTALLED';
  }
}

/** §5.2: the activation machine is alive only in INSTALLED, entered INACTIVE; Activate makes it ACTIVE. */
const ACTIVATION_OF: Record<(typeof SITUATIONS)[number], 'ACTIVE' | 'INACTIVE' | null> = {
  INITIAL: null,
  INITIAL_AFTER_ERROR: null,
  DOWNLOAD_STARTED: null,
  DOWNLOADED: null,
  DELIVERED: null,
  DELIVERED_INSTALLING: null,
  DELIVERED_AFTER_FAILED_INSTALL: null,
  INSTALLED_INACTIVE: 'INACTIVE',
  INSTALLED_ACTIVE: 'ACTIVE',
};

function resultOf(sit: (typeof SITUATIONS)[number]): 'INITIAL' | 'CONNECTION_LOST' | 'DOWNLOADING' | 'INSTALL_FAILURE' | 'INSTALLED' {
  switch (sit) {
    case 'INITIAL_AFTER_ERROR':
      return 'CONNECTION_LOST';
    case 'DOWNLOAD_STARTED':
      return 'DOWNLOADING';
    case 'DELIVERED_AFTER_FAILED_INSTALL':
      return 'INSTALL_FAILURE';
    case 'INSTALLED_INACTIVE':
    case 'INSTALLED_ACTIVE':
      return 'INSTALLED';
    default:
      return 'INITIAL';
  }
}
