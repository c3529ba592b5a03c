/**
 * Mutated client messages against the session engine: whatever bytes a device sends, decoding
 * ends in an OmaDmFormatError (the edge's 400) or in a message the session answers with a
 * reply it can encode; the engine never throws, and a refused or aborted message changes no
 * stored state (no facts or job results from an unauthenticated session).
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { md5Credential } from '../../../src/omadm/auth.js';
import { OmaDmFormatError } from '../../../src/omadm/errors.js';
import { DmServerSession } from '../../../src/omadm/session.js';
import { decodeSyncML, encodeSyncML } from '../../../src/omadm/syncml.js';
import type { SyncMLMessage } from '../../../src/omadm/syncml.js';

const nonce = Buffer.from('nonce');
const account = { deviceId: 'D', clientUsername: 'u', clientPassword: 'p', clientNonce: nonce };

function package1(cred: string): SyncMLMessage {
  return {
    header: {
      verDTD: '1.2', verProto: 'DM/1.2', sessionId: '1', msgId: '1', target: { locUri: 'https://depot/dm' }, source: { locUri: 'D' },
      cred: { meta: { type: 'syncml:auth-md5', format: 'b64' }, data: cred }, meta: { maxMsgSize: 4096 },
    },
    commands: [
      { kind: 'Alert', cmdId: '1', code: 1201 },
      { kind: 'Replace', cmdId: '2', items: [{ source: { locUri: './DevInfo/Man' }, data: 'Acme' }, { source: { locUri: './DevInfo/Mod' }, data: 'M1' }] },
    ],
    final: true,
  };
}

for (const encoding of ['xml', 'wbxml'] as const) {
  test(`${encoding}: mutated Package 1 bytes end in a format error or an encodable reply, never a throw from the engine`, () => {
    const good = encodeSyncML(package1(md5Credential('u', 'p', nonce)), encoding);
    const wrong = encodeSyncML(package1(md5Credential('u', 'x', nonce)), encoding);
    let decoded = 0;
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), (useGood, flips, cut) => {
        const bytes = Buffer.from(useGood ? good : wrong);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        const body = cut % 4 === 0 ? bytes.subarray(0, cut % bytes.length) : bytes;
        let message: SyncMLMessage;
        try {
          message = decodeSyncML(body, encoding);
        } catch (error) {
          assert.ok(error instanceof OmaDmFormatError, String(error));
          return;
        }
        decoded++;
        const session = new DmServerSession(message.header.sessionId, message.header.source.locUri, [], { serverUri: 'https://depot/dm' }, 0);
        const out = session.receive({ message, encoding, account, now: 1 });
        encodeSyncML(out.reply, encoding);
        if (!session.isAuthenticated) {
          assert.equal(out.effects.some((e) => e.kind === 'facts' || e.kind === 'job-result'), false);
        }
      }),
      { numRuns: 1500 },
    );
    assert.ok(decoded > 0, 'some mutants still decode and reach the engine');
  });
}
