/**
 * §6 Update State / Update Result value encodings: seed (spec file) and registry
 * (OMA registry 9.xml, object versions 1.0 and 1.1), both directions, and the server-side
 * interpretation of a device speaking either.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PKG_STATES } from '../../../src/lwm2m/objects/software-management/model.js';
import {
  decodeUpdateResult,
  decodeUpdateState,
  encodeUpdateResult,
  encodeUpdateState,
  interpretDeviceReport,
} from '../../../src/lwm2m/objects/software-management/encoding.js';
import { ENCODINGS, WIRE } from './support.js';

for (const enc of ENCODINGS) {
  void describe(`Object 9 §6 encodings [${enc}]`, () => {
    void test(`§6 rid 7 Update State: every state encodes to the ${enc} integer and back [${enc}]`, () => {
      for (const s of PKG_STATES) {
        assert.equal(encodeUpdateState(enc, s), WIRE[enc].state[s]);
        assert.equal(decodeUpdateState(enc, WIRE[enc].state[s]), s);
      }
    });

    void test(`§6 rid 9 Update Result: every result encodes to the ${enc} integer and back [${enc}]`, () => {
      for (const [name, wire] of Object.entries(WIRE[enc].result)) {
        assert.equal(encodeUpdateResult(enc, name as keyof (typeof WIRE)['seed']['result']), wire);
        assert.equal(decodeUpdateResult(enc, wire), name);
      }
    });

    void test(`§6 rid 7 / rid 9: integers outside the ${enc} enumeration do not decode [${enc}]`, () => {
      const badState = enc === 'seed' ? [0, 6, -1] : [5, 6, -1];
      for (const w of badState) assert.equal(decodeUpdateState(enc, w), undefined);
      const badResult = enc === 'seed' ? [11, 50, 255] : [4, 10, 55, 60, 200];
      for (const w of badResult) assert.equal(decodeUpdateResult(enc, w), undefined);
    });
  });
}

void describe('Object 9 §6 registry-only values', () => {
  void test('§6 registry rid 9: 3 = downloaded and verified, 59 = uninstallation failure; 55 unassigned', () => {
    assert.equal(decodeUpdateResult('registry', 3), 'DOWNLOADED_VERIFIED');
    assert.equal(decodeUpdateResult('registry', 59), 'UNINSTALL_FAILURE');
    assert.equal(decodeUpdateResult('registry', 55), undefined);
    assert.equal(decodeUpdateResult('seed', 3), 'NOT_ENOUGH_STORAGE');
  });

  void test('§6 seed rid 9: registry-only values fall back when re-encoded in seed', () => {
    assert.equal(encodeUpdateResult('seed', 'DOWNLOADED_VERIFIED'), 0);
    assert.equal(encodeUpdateResult('seed', 'UNINSTALL_FAILURE'), 9);
  });
});

void describe('Object 9 server side: interpreting a device speaking either encoding', () => {
  void test('state 0 can only be registry INITIAL', () => {
    const i = interpretDeviceReport({ updateState: 0, updateResult: 0 });
    assert.deepEqual(i && [i.profile, i.pkg, i.result, i.basis], ['registry', 'INITIAL', 'INITIAL', 'only-decodable']);
  });

  void test('state 5 can only be seed INSTALLED', () => {
    const i = interpretDeviceReport({ updateState: 5, updateResult: 2, activationState: true });
    assert.deepEqual(i && [i.profile, i.pkg, i.result, i.activation], ['seed', 'INSTALLED', 'INSTALLED', 'ACTIVE']);
  });

  void test('result 53 is registry integrity failure; result 6 is seed integrity failure', () => {
    const r = interpretDeviceReport({ updateState: 0, updateResult: 53 });
    assert.deepEqual(r && [r.profile, r.pkg, r.result], ['registry', 'INITIAL', 'INTEGRITY_FAILURE']);
    const s = interpretDeviceReport({ updateState: 1, updateResult: 6 });
    assert.deepEqual(s && [s.profile, s.pkg, s.result], ['seed', 'INITIAL', 'INTEGRITY_FAILURE']);
  });

  void test('state 1 + result 1 is registry DOWNLOAD STARTED (seed INITIAL/Downloading is not allowed)', () => {
    const i = interpretDeviceReport({ updateState: 1, updateResult: 1 });
    assert.deepEqual(i && [i.profile, i.pkg, i.result, i.basis], ['registry', 'DOWNLOAD_STARTED', 'DOWNLOADING', 'consistent']);
  });

  void test('state 2 + result 1 is seed DOWNLOAD STARTED; state 4 + result 2 is registry INSTALLED', () => {
    const a = interpretDeviceReport({ updateState: 2, updateResult: 1 });
    assert.deepEqual(a && [a.profile, a.pkg], ['seed', 'DOWNLOAD_STARTED']);
    const b = interpretDeviceReport({ updateState: 4, updateResult: 2 });
    assert.deepEqual(b && [b.profile, b.pkg], ['registry', 'INSTALLED']);
  });

  void test('state 3 + result 0 is ambiguous (seed DOWNLOADED or registry DELIVERED): registry by default, hint wins', () => {
    const d = interpretDeviceReport({ updateState: 3, updateResult: 0 });
    assert.deepEqual(d && [d.profile, d.pkg, d.ambiguous, d.basis], ['registry', 'DELIVERED', true, 'default']);
    const h = interpretDeviceReport({ updateState: 3, updateResult: 0 }, { hint: 'seed' });
    assert.deepEqual(h && [h.profile, h.pkg, h.ambiguous, h.basis], ['seed', 'DOWNLOADED', true, 'hint']);
  });

  void test('registry DELIVERED with result 3 (downloaded and verified) is understood', () => {
    const i = interpretDeviceReport({ updateState: 3, updateResult: 3 });
    assert.deepEqual(i && [i.profile, i.pkg, i.result], ['registry', 'DELIVERED', 'DOWNLOADED_VERIFIED']);
  });

  void test('integers neither encoding defines are refused', () => {
    assert.equal(interpretDeviceReport({ updateState: 9, updateResult: 0 }), undefined);
    assert.equal(interpretDeviceReport({ updateState: 1, updateResult: 55 }), undefined);
  });
});
