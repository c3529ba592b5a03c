/** Property tests: any sequence of events keeps Object 9 in a state the spec allows, and never throws. */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DOWNLOAD_ERRORS,
  INITIAL_MACHINE_STATE,
  INSTALL_ERRORS,
  SimulatedInstaller,
  decodeUpdateResult,
  decodeUpdateState,
  encodeSnapshot,
  findRow,
  isAllowedCombination,
  step,
  type MachineEvent,
  type MachineState,
} from '../../../src/lwm2m/objects/software-management/index.js';
import { harness, makePackage, otherKeys, withTempDir } from './object9-support.js';

const eventArb: fc.Arbitrary<MachineEvent> = fc.oneof(
  fc.constantFrom<MachineEvent>(
    { type: 'write', via: 'package' },
    { type: 'write', via: 'uri' },
    { type: 'packageWritten' },
    { type: 'integrityOk' },
    { type: 'integrityKo' },
    { type: 'install' },
    { type: 'installSucceeded' },
    { type: 'installFailed' },
    { type: 'uninstall' },
    { type: 'uninstall', forUpdate: true },
    { type: 'activate' },
    { type: 'deactivate' },
  ),
  fc.constantFrom(...DOWNLOAD_ERRORS).map((cause): MachineEvent => ({ type: 'downloadFailed', cause })),
  fc.constantFrom(...INSTALL_ERRORS).map((cause): MachineEvent => ({ type: 'installFailed', cause })),
);

function checkInvariants(s: MachineState): void {
  assert.ok(isAllowedCombination(s), `not allowed: ${JSON.stringify(s)}`);
  // §5.2: the activation machine is alive exactly in INSTALLED.
  assert.equal(s.activation !== null, s.pkg === 'INSTALLED');
  for (const enc of ['seed', 'registry'] as const) {
    const w = encodeSnapshot(enc, s);
    assert.equal(decodeUpdateState(enc, w.updateState), s.pkg);
    assert.equal(decodeUpdateResult(enc, w.updateResult), s.result);
    assert.equal(w.activationState, s.activation === 'ACTIVE');
    if (enc === 'seed') {
      assert.ok(w.updateState >= 1 && w.updateState <= 5);
      assert.ok(w.updateResult >= 0 && w.updateResult <= 10);
    } else {
      assert.ok(w.updateState >= 0 && w.updateState <= 4);
      assert.ok([0, 1, 2, 3, 50, 51, 52, 53, 54, 56, 57, 58, 59].includes(w.updateResult));
    }
  }
}

/** The event that moves `s` forward on the happy path (so random runs reach the deep states). */
function progress(s: MachineState): MachineEvent {
  switch (s.pkg) {
    case 'INITIAL':
      return { type: 'write', via: 'package' };
    case 'DOWNLOAD_STARTED':
      return { type: 'packageWritten' };
    case 'DOWNLOADED':
      return { type: 'integrityOk' };
    case 'DELIVERED':
      return s.installing ? { type: 'installSucceeded' } : { type: 'install' };
    case 'INSTALLED':
      return s.activation === 'ACTIVE' ? { type: 'deactivate' } : { type: 'activate' };
  }
}

void describe('object9 property: the pure machine', () => {
  void test('any event sequence: never throws, always an allowed state, rejections change nothing', () => {
    const stepArb = fc.oneof({ arbitrary: eventArb, weight: 1 }, { arbitrary: fc.constant('progress' as const), weight: 1 });
    const visited = new Set<string>();
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
        let s = INITIAL_MACHINE_STATE;
        checkInvariants(s);
        for (const x of steps) {
          const e = x === 'progress' ? progress(s) : x;
          const o = step(s, e);
          if (o.accepted) {
            assert.equal(findRow(s, e)?.id, o.row.id);
            assert.equal(o.after.pkg, o.row.to);
          } else {
            assert.equal(o.after, s);
            assert.equal(o.coap, '4.05');
            assert.equal(findRow(s, e), undefined);
          }
          if (o.accepted) visited.add(o.row.id);
          s = o.after;
          checkInvariants(s);
        }
      }),
      // A fixed seed: the coverage check below must not depend on luck (random seeds
      // missed a row about one run in twenty).
      { numRuns: 2000, seed: 20261124 },
    );
    // The runs did reach every row of both tables.
    assert.equal(visited.size, 14);
  });
});

type Op =
  | { op: 'push'; kind: 'good' | 'corrupt' | 'untrusted' | 'foreign' | 'huge'; blocks: boolean }
  | { op: 'uri'; uri: string }
  | { op: 'exec'; rid: 4 | 6 | 10 | 11; arg?: string }
  | { op: 'behaviour'; b: 'succeed' | 'fail' | 'hang' }
  | { op: 'settle' };

type Step = Op & { settle: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('push' as const),
      kind: fc.constantFrom('good' as const, 'good' as const, 'good' as const, 'corrupt' as const, 'untrusted' as const, 'foreign' as const, 'huge' as const),
      blocks: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('uri' as const), uri: fc.constantFrom('coap://repo/good', 'coap://repo/missing', 'bogus', 'coap://repo/cut') }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('exec' as const), rid: fc.constantFrom(4 as const, 4 as const, 6 as const, 10 as const, 11 as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('behaviour' as const), b: fc.constantFrom('succeed' as const, 'succeed' as const, 'fail' as const, 'hang' as const) }),
  },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'settle' }) },
);

void describe('object9 property: the instance', () => {
  void test('any sequence of writes/executes/installer behaviours: never throws, state always allowed, codes well-formed', async () => {
    const good = makePackage({ name: 'p', version: '1' });
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length - 2] = (corrupt[corrupt.length - 2] ?? 0) ^ 1;
    const untrusted = makePackage({ keys: otherKeys() });
    const huge = makePackage({ files: [{ path: 'big', data: 'b'.repeat(3000) }] });
    const bodies = { good, corrupt, untrusted, huge, foreign: Buffer.from('#!/bin/sh\necho not a package\n') };
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(opArb, fc.boolean()).map(([o, settle]): Step => ({ ...o, settle })), { maxLength: 25 }), fc.constantFrom('seed' as const, 'registry' as const), async (ops, profile) => {
        await withTempDir(async (dir) => {
          const sim = new SimulatedInstaller();
          const h = harness(dir, { profile, installer: sim, quotaBytes: 2048 });
          h.fetcher.files.set('coap://repo/good', good);
          h.fetcher.files.set('coap://repo/cut', good);
          const i = await h.obj.create();
          for (const op of ops) {
            let code: string | undefined;
            switch (op.op) {
              case 'push': {
                const body = bodies[op.kind];
                if (!op.blocks) code = (await i.write(2, body)).code;
                else {
                  for (let n = 0; n * 128 < body.length; n++) {
                    const r = await i.writePackage(body.subarray(n * 128, (n + 1) * 128), { num: n, size: 128, more: (n + 1) * 128 < body.length });
                    code = r.code;
                    if (!r.ok) break;
                  }
                }
                break;
              }
              case 'uri':
                if (op.uri === 'coap://repo/cut') h.fetcher.failAt = 200;
                code = (await i.writePackageUri(op.uri)).code;
                break;
              case 'exec':
                code = (await i.execute(op.rid)).code;
                break;
              case 'behaviour':
                sim.setBehaviour(op.b === 'fail' ? { kind: 'fail', result: 'INSTALL_FAILURE' } : { kind: op.b });
                break;
              case 'settle':
                if (!i.state.installing) await i.settled();
                break;
            }
            if (code !== undefined) assert.match(code, /^(2\.0[45]|2\.31|4\.0[0458]|4\.13|5\.00)$/);
            checkInvariants(i.state);
            if (op.settle && !i.state.installing) await i.settled();
            checkInvariants(i.state);
            seen.add(i.state.pkg);
          }
          await i.dispose();
          checkInvariants(i.state);
        });
      }),
      { numRuns: 60 },
    );
    for (const st of ['INITIAL', 'DOWNLOAD_STARTED', 'DELIVERED', 'INSTALLED']) assert.ok(seen.has(st), `runs never reached ${st}`);
  });
});
