/**
 * §5.1 Package Installation State Machine: one test per row of the §5.1.1 table and per
 * MUST / "no effect" sentence of §5.1.2–5.1.3, each run in both encodings.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { DOWNLOAD_ERRORS, EVENT_TYPES, INITIAL_MACHINE_STATE, type MachineEvent, type PkgState } from '../../../src/lwm2m/objects/software-management/model.js';
import { step } from '../../../src/lwm2m/objects/software-management/machine.js';
import { E, ENCODINGS, SITUATIONS, WIRE, accept, assertNoEffect, assertWire, reach, type Situation, type SpecResult } from './support.js';

/**
 * The §5.1.1 table of transitions, transcribed from the spec (Transition / Description /
 * Applicable State / Post Transition State / Update Result), not imported from src. `drive` says
 * how Depot's machine is made to take the row (the events are Depot's split of the spec's
 * operations: "Install execution" is a request and an outcome).
 */
interface SpecRow {
  readonly transition: string;
  readonly description: string;
  readonly from: PkgState;
  readonly to: PkgState;
  readonly result: SpecResult | 'error' | 'unchanged';
  readonly drive: readonly (readonly [Situation, readonly MachineEvent[]])[];
}
const SPEC_TABLE: readonly SpecRow[] = [
  { transition: 'PKG/URI Write', description: 'Start of the PKG Download Process', from: 'INITIAL', to: 'DOWNLOAD_STARTED', result: 'DOWNLOADING', drive: [['INITIAL', [E.writePackage]], ['INITIAL', [E.writeUri]], ['INITIAL_AFTER_ERROR', [E.writeUri]]] },
  { transition: 'PKG Download Failed', description: 'Error during Download process', from: 'DOWNLOAD_STARTED', to: 'INITIAL', result: 'error', drive: [['DOWNLOAD_STARTED', [{ type: 'downloadFailed', cause: 'CONNECTION_LOST' }]], ['DOWNLOAD_STARTED', [{ type: 'downloadFailed', cause: 'NOT_ENOUGH_STORAGE' }]]] },
  { transition: 'PKG Written', description: 'PKG fully loaded', from: 'DOWNLOAD_STARTED', to: 'DOWNLOADED', result: 'INITIAL', drive: [['DOWNLOAD_STARTED', [E.packageWritten]]] },
  { transition: 'PKG Integrity OK', description: 'PKG successfully loaded', from: 'DOWNLOADED', to: 'DELIVERED', result: 'INITIAL', drive: [['DOWNLOADED', [E.integrityOk]]] },
  { transition: 'PKG Integrity KO', description: 'PKG with Integrity failure', from: 'DOWNLOADED', to: 'INITIAL', result: 'INTEGRITY_FAILURE', drive: [['DOWNLOADED', [E.integrityKo]]] },
  { transition: 'Install execution', description: 'SW successfully Installed', from: 'DELIVERED', to: 'INSTALLED', result: 'INSTALLED', drive: [['DELIVERED', [E.install, E.installSucceeded]], ['DELIVERED_AFTER_FAILED_INSTALL', [E.install, E.installSucceeded]]] },
  { transition: 'Install execution', description: 'Installation failure', from: 'DELIVERED', to: 'DELIVERED', result: 'INSTALL_FAILURE', drive: [['DELIVERED', [E.install, E.installFailed]]] },
  { transition: 'Uninstall execution', description: 'Software is de-installed', from: 'INSTALLED', to: 'INITIAL', result: 'INITIAL', drive: [['INSTALLED_INACTIVE', [E.uninstall]], ['INSTALLED_ACTIVE', [E.uninstall]]] },
  { transition: 'Uninstall execution', description: 'Software is de-installed', from: 'DELIVERED', to: 'INITIAL', result: 'unchanged', drive: [['DELIVERED', [E.uninstall]], ['DELIVERED_AFTER_FAILED_INSTALL', [E.uninstall]]] },
];

const sampleEvent: Record<MachineEvent['type'], MachineEvent> = {
  write: E.writeUri,
  downloadFailed: { type: 'downloadFailed', cause: 'OUT_OF_MEMORY' },
  packageWritten: E.packageWritten,
  integrityOk: E.integrityOk,
  integrityKo: E.integrityKo,
  install: E.install,
  installSucceeded: E.installSucceeded,
  installFailed: E.installFailed,
  uninstall: E.uninstall,
  activate: E.activate,
  deactivate: E.deactivate,
};

for (const enc of ENCODINGS) {
  void describe(`Object 9 §5.1 package installation [${enc}]`, () => {
    // ---- §5.1.1 table rows ---------------------------------------------------------
    void test(`§5.1.1 row "PKG/URI Write" (Package): INITIAL -> DOWNLOAD STARTED, Update Result = Downloading [${enc}]`, () => {
      const s0 = reach('INITIAL');
      assertWire(enc, s0, { state: 'INITIAL', result: 'INITIAL', enabled: false });
      const o = accept(s0, E.writePackage);
      assert.equal(o.row.id, 'pkg-uri-write');
      assertWire(enc, o.after, { state: 'DOWNLOAD_STARTED', result: 'DOWNLOADING', enabled: false });
      assert.deepEqual(o.effects, ['startDownload']);
    });

    void test(`§5.1.1 row "PKG/URI Write" (Package URI): INITIAL -> DOWNLOAD STARTED, Update Result = Downloading [${enc}]`, () => {
      const o = accept(reach('INITIAL'), E.writeUri);
      assertWire(enc, o.after, { state: 'DOWNLOAD_STARTED', result: 'DOWNLOADING', enabled: false });
      assert.deepEqual(
        o.changes.map((c) => c.rid),
        [7, 9],
      );
    });

    for (const cause of DOWNLOAD_ERRORS) {
      void test(`§5.1.1 row "PKG Download Failed" (${cause}): DOWNLOAD STARTED -> INITIAL, Update Result = error [${enc}]`, () => {
        const o = accept(reach('DOWNLOAD_STARTED'), { type: 'downloadFailed', cause });
        assert.equal(o.row.id, 'pkg-download-failed');
        assertWire(enc, o.after, { state: 'INITIAL', result: cause, enabled: false });
        const wire = WIRE[enc].result[cause];
        if (enc === 'seed') assert.ok(wire >= 3 && wire <= 9, `§5.1.2.2 range 3..9, got ${wire}`);
        else assert.ok(wire >= 50 && wire <= 57, `registry error range, got ${wire}`);
      });
    }

    void test(`§5.1.1 row "PKG Written": DOWNLOAD STARTED -> DOWNLOADED, Update Result = Initial [${enc}]`, () => {
      const o = accept(reach('DOWNLOAD_STARTED'), E.packageWritten);
      assert.equal(o.row.id, 'pkg-written');
      assertWire(enc, o.after, { state: 'DOWNLOADED', result: 'INITIAL', enabled: false });
    });

    void test(`§5.1.1 row "PKG Integrity OK": DOWNLOADED -> DELIVERED, Update Result = Initial [${enc}]`, () => {
      const o = accept(reach('DOWNLOADED'), E.integrityOk);
      assert.equal(o.row.id, 'pkg-integrity-ok');
      assertWire(enc, o.after, { state: 'DELIVERED', result: 'INITIAL', enabled: false });
      // §5.1.2.4: the package is now ready to be installed: nothing is removed, nothing started (installation waits for Install)
      assert.deepEqual(o.effects, []);
    });

    void test(`§5.1.1 row "PKG Integrity KO": DOWNLOADED -> INITIAL, Update Result = Integrity Failure [${enc}]`, () => {
      const o = accept(reach('DOWNLOADED'), E.integrityKo);
      assert.equal(o.row.id, 'pkg-integrity-ko');
      assertWire(enc, o.after, { state: 'INITIAL', result: 'INTEGRITY_FAILURE', enabled: false });
    });

    void test(`§5.1.1 row "Install execution / SW successfully Installed": DELIVERED -> INSTALLED, Update Result = SW successfully installed [${enc}]`, () => {
      const requested = accept(reach('DELIVERED'), E.install);
      assert.equal(requested.row.id, 'install-execute');
      assertWire(enc, requested.after, { state: 'DELIVERED', result: 'INITIAL', enabled: false });
      assert.deepEqual(requested.effects, ['runInstall']);
      const o = accept(requested.after, E.installSucceeded);
      assert.equal(o.row.id, 'install-succeeded');
      // Depot's choice: the row names no effect (the instance drops the staged copy itself once the install succeeded)
      assert.deepEqual(o.effects, []);
      assertWire(enc, o.after, { state: 'INSTALLED', result: 'INSTALLED', enabled: false });
    });

    void test(`§5.1.1 row "Install execution / Installation failure": DELIVERED -> DELIVERED, Update Result = Software Installation failure [${enc}]`, () => {
      const o = accept(reach('DELIVERED_INSTALLING'), E.installFailed);
      assert.equal(o.row.id, 'install-failed');
      assertWire(enc, o.after, { state: 'DELIVERED', result: 'INSTALL_FAILURE', enabled: false });
      assert.equal(o.after.installing, false);
      // §5.1.2.4: "remains in the DELIVERED State": the package stays (Install can be executed again), nothing else happens
      assert.deepEqual(o.effects, []);
    });

    void test(`§5.1.1 row "Uninstall execution" from INSTALLED: -> INITIAL, Update Result = Initial [${enc}]`, () => {
      for (const from of ['INSTALLED_INACTIVE', 'INSTALLED_ACTIVE'] as const) {
        const o = accept(reach(from), E.uninstall);
        assert.equal(o.row.id, 'uninstall-installed');
        assertWire(enc, o.after, { state: 'INITIAL', result: 'INITIAL', enabled: false });
        assert.equal(o.after.activation, null);
      }
    });

    void test(`§5.1.1 row "Uninstall execution" from DELIVERED: -> INITIAL, Update Result unchanged [${enc}]`, () => {
      const fresh = accept(reach('DELIVERED'), E.uninstall);
      assert.equal(fresh.row.id, 'uninstall-delivered');
      // §5.1.2.4: "the package is then removed from the LWM2M Device"; no installation runs, so none is cancelled
      assert.deepEqual(fresh.effects, ['deletePackage']);
      assertWire(enc, fresh.after, { state: 'INITIAL', result: 'INITIAL', enabled: false });
      const failed = accept(reach('DELIVERED_AFTER_FAILED_INSTALL'), E.uninstall);
      assertWire(enc, failed.after, { state: 'INITIAL', result: 'INSTALL_FAILURE', enabled: false });
      assert.ok(!failed.changes.some((c) => c.rid === 9), 'Update Result must not change');
    });

    void test(`§5.1.1 the table is complete: each of the spec's nine rows is a transition of the machine, with its Post Transition State and Update Result [${enc}]`, () => {
      const realised = new Set<string>();
      for (const row of SPEC_TABLE) {
        for (const [sit, events] of row.drive) {
          let s = reach(sit);
          assert.equal(s.pkg, row.from, `${row.transition}: ${sit} is in ${row.from}`);
          const before = s.result;
          let last: ReturnType<typeof accept> | undefined;
          for (const e of events) {
            const o = accept(s, e);
            s = o.after;
            last = o;
            // every step on the way (the Install request too) belongs to the spec's operation
            assert.equal(o.row.transition, row.transition, `${e.type} in ${sit}`);
          }
          // The row taken is labelled with the spec's Transition and Description columns (logs and notifications name it).
          assert.deepEqual([last?.row.section, last?.row.transition, last?.row.description], ['5.1.1', row.transition, row.description]);
          const result = row.result === 'unchanged' ? (before as SpecResult) : row.result === 'error' ? (events.at(-1) as { cause: SpecResult }).cause : row.result;
          assertWire(enc, s, { state: row.to, result, enabled: false });
          realised.add(`${row.transition}|${row.description}|${row.from}`);
        }
      }
      assert.equal(realised.size, 9);
    });

    void test(`§5.1.1 the table is complete the other way: every change of Update State the machine makes is a row of the spec's table [${enc}]`, () => {
      const allowed = new Set(SPEC_TABLE.map((r) => `${r.from}->${r.to}`));
      const seen = new Set<string>();
      for (const sit of SITUATIONS) {
        const s = reach(sit);
        for (const type of EVENT_TYPES) {
          const o = step(s, sampleEvent[type]);
          if (!o.accepted) continue;
          const move = `${s.pkg}->${o.after.pkg}`;
          if (s.pkg === o.after.pkg && o.after.result === s.result) continue; // no Update State / Result change (Install request, §5.2 rows)
          assert.ok(allowed.has(move), `${type} in ${sit}: ${move} is no row of §5.1.1`);
          seen.add(move);
        }
      }
      // DELIVERED -> DELIVERED (installation failure) is in both; the nine rows have 8 distinct (from, to) pairs.
      assert.deepEqual([...seen].sort(), [...allowed].sort());
    });

    // ---- §5.1.2 sentences ------------------------------------------------------------
    void test(`§5.1.2.1 INITIAL: an upload to "Package" or "Package URI" triggers INITIAL -> DOWNLOAD STARTED; after an error too [${enc}]`, () => {
      const o = accept(reach('INITIAL_AFTER_ERROR'), E.writePackage);
      assertWire(enc, o.after, { state: 'DOWNLOAD_STARTED', result: 'DOWNLOADING', enabled: false });
    });

    void test(`§6 rid 9: prior to downloading a new package the previous error is cleared [${enc}]`, () => {
      const s = reach('INITIAL_AFTER_ERROR');
      assertWire(enc, s, { state: 'INITIAL', result: 'CONNECTION_LOST', enabled: false });
      const o = accept(s, E.writeUri);
      // The reset value is 0 (Initial) and the same write is the §5.1.1 "PKG/URI Write" row,
      // "Update Result = Downloading": once the write is taken, Update Result is exactly 1.
      assertWire(enc, o.after, { state: 'DOWNLOAD_STARTED', result: 'DOWNLOADING', enabled: false });
      assert.equal(WIRE[enc].result[o.after.result as SpecResult], 1);
      // and when the new package is fully written it is the Initial value 0 again (§5.1.2.3), not the old error
      const written = accept(o.after, E.packageWritten);
      assert.equal(WIRE[enc].result[written.after.result as SpecResult], 0);
    });

    void test(`§5.1.2.2 DOWNLOAD STARTED: Update Result contains Downloading while the download is on-going [${enc}]`, () => {
      assertWire(enc, reach('DOWNLOAD_STARTED'), { state: 'DOWNLOAD_STARTED', result: 'DOWNLOADING', enabled: false });
      // A second write while the download runs is not a new download (no effect).
      assertNoEffect(enc, reach('DOWNLOAD_STARTED'), E.writeUri);
    });

    void test(`§5.1.2.2 DOWNLOAD STARTED: on error back to INITIAL and the faulty package is removed [${enc}]`, () => {
      const o = accept(reach('DOWNLOAD_STARTED'), { type: 'downloadFailed', cause: 'NOT_ENOUGH_STORAGE' });
      assert.deepEqual(o.effects, ['deletePackage']);
      assertWire(enc, o.after, { state: 'INITIAL', result: 'NOT_ENOUGH_STORAGE', enabled: false });
    });

    void test(`§5.1.2.3 DOWNLOADED: Update Result is reset to the Initial value 0 and integrity is verified automatically [${enc}]`, () => {
      const o = accept(reach('DOWNLOAD_STARTED'), E.packageWritten);
      assert.equal(encodeResult(enc, o.after.result), 0);
      assert.deepEqual(o.effects, ['verifyIntegrity']);
    });

    void test(`§5.1.2.3 DOWNLOADED: integrity failure returns to INITIAL, faulty package removed, Integrity check failure [${enc}]`, () => {
      const o = accept(reach('DOWNLOADED'), { type: 'integrityKo', reason: 'hash' });
      assert.deepEqual(o.effects, ['deletePackage']);
      assertWire(enc, o.after, { state: 'INITIAL', result: 'INTEGRITY_FAILURE', enabled: false });
    });

    void test(`§5.1.2.4 DELIVERED: the package MUST have been successfully loaded at DOWNLOADED (only Integrity OK enters DELIVERED) [${enc}]`, () => {
      for (const sit of SITUATIONS) {
        const s = reach(sit);
        for (const type of EVENT_TYPES) {
          const o = step(s, sampleEvent[type]);
          if (o.after.pkg === 'DELIVERED' && s.pkg !== 'DELIVERED') {
            assert.equal(s.pkg, 'DOWNLOADED');
            assert.equal(type, 'integrityOk');
          }
        }
      }
    });

    void test(`§5.1.2.4 DELIVERED: an installation error keeps DELIVERED with the error code (3..9 causes accepted) [${enc}]`, () => {
      for (const cause of ['DEVICE_ERROR', 'NOT_ENOUGH_STORAGE', 'OUT_OF_MEMORY'] as const) {
        const o = accept(reach('DELIVERED_INSTALLING'), { type: 'installFailed', cause });
        assertWire(enc, o.after, { state: 'DELIVERED', result: cause, enabled: false });
      }
    });

    void test(`§5.1.2.4 DELIVERED: Install can be executed again after a failed installation [${enc}]`, () => {
      const o = accept(reach('DELIVERED_AFTER_FAILED_INSTALL'), E.install);
      const done = accept(o.after, E.installSucceeded);
      assertWire(enc, done.after, { state: 'INSTALLED', result: 'INSTALLED', enabled: false });
    });

    void test(`§5.1.2.5 INSTALLED: Update Result holds "Software successfully installed" as long as the state remains [${enc}]`, () => {
      let s = reach('INSTALLED_INACTIVE');
      for (const e of [E.activate, E.deactivate, E.activate, E.activate, E.deactivate, E.install, E.writeUri, E.packageWritten]) {
        s = step(s, e).after;
        assertWire(enc, s, { state: 'INSTALLED', result: 'INSTALLED', enabled: s.activation === 'ACTIVE' });
      }
    });

    void test(`§5.1.2.5 INSTALLED: Uninstall returns to INITIAL, result 0, Software Activation devalidated [${enc}]`, () => {
      const o = accept(reach('INSTALLED_ACTIVE'), E.uninstall);
      assertWire(enc, o.after, { state: 'INITIAL', result: 'INITIAL', enabled: false });
      assert.equal(o.after.activation, null);
      assert.deepEqual(
        o.changes.map((c) => c.rid),
        [7, 9, 12],
      );
      assertNoEffect(enc, o.after, E.activate);
    });

    // ---- §5.1.3 operations -----------------------------------------------------------
    for (const sit of ['INITIAL', 'INITIAL_AFTER_ERROR', 'DOWNLOAD_STARTED', 'DOWNLOADED', 'INSTALLED_INACTIVE', 'INSTALLED_ACTIVE'] as const) {
      void test(`§5.1.3.1 Install executed when not in DELIVERED (${sit}) has no effect (4.05: Depot's choice) [${enc}]`, () => {
        assertNoEffect(enc, reach(sit), E.install);
      });
    }

    void test(`§5.1.3.1 Install executed while an installation is running has no effect (Depot's choice: the spec does not cover a second Install during one) [${enc}]`, () => {
      assertNoEffect(enc, reach('DELIVERED_INSTALLING'), E.install);
    });

    for (const sit of ['INITIAL', 'INITIAL_AFTER_ERROR', 'DOWNLOAD_STARTED', 'DOWNLOADED'] as const) {
      void test(`§5.1.3.2 Uninstall executed in neither INSTALLED nor DELIVERED (${sit}) produces no effect (4.05: Depot's choice) [${enc}]`, () => {
        assertNoEffect(enc, reach(sit), E.uninstall);
      });
    }

    void test(`§5.1.3.2 Uninstall in DELIVERED returns to INITIAL, also while an installation runs; that it cancels the running installation is Depot's choice (the spec does not say) [${enc}]`, () => {
      const o = accept(reach('DELIVERED_INSTALLING'), E.uninstall);
      assert.deepEqual(o.effects, ['cancelInstall', 'deletePackage']);
      assertWire(enc, o.after, { state: 'INITIAL', result: 'INITIAL', enabled: false });
      assert.equal(o.after.installing, false);
    });

    // ---- "no effect" for every event outside the table -------------------------------
    void test(`§5.1.3.1 / §5.1.3.2 / §5.2 every event not applicable in the current state has no effect (rejected with 4.05: Depot's choice, the spec says only "no effect") [${enc}]`, () => {
      let rejected = 0;
      for (const sit of SITUATIONS) {
        const s = reach(sit);
        for (const type of EVENT_TYPES) {
          const o = step(s, sampleEvent[type]);
          if (!o.accepted) {
            assertNoEffect(enc, s, sampleEvent[type]);
            rejected++;
          }
        }
      }
      // 9 situations x 11 event types = 99 pairs; 19 of them are in the tables.
      assert.equal(rejected, 99 - 19);
    });

    void test(`§5.1 the initial state of a new instance is INITIAL with result Initial [${enc}]`, () => {
      assertWire(enc, INITIAL_MACHINE_STATE, { state: 'INITIAL', result: 'INITIAL', enabled: false });
    });
  });
}

function encodeResult(enc: 'seed' | 'registry', r: string): number {
  return (WIRE[enc].result as Record<string, number>)[r] ?? -1;
}
