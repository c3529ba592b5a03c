/**
 * The OMA DM command queue in SQLite (src/store/sqlite/omadm-commands.ts): each command moves
 * queued → sent → succeeded | failed | unknown once; only a sent command goes back to queued;
 * an answer for a command not sent is ignored; bad commands are refused before anything is written.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../../src/store/sqlite.js';
import { StoreError } from '../../../src/store/errors.js';

test('queued → sent → succeeded/failed/unknown, once; unsend only from sent; a second session takes nothing already taken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-omadm-commands-'));
  const store = openSqliteStore({ dataDir: dir, secretKey: randomBytes(32) });
  try {
    const q = store.omadmCommands;
    const a = await q.enqueue({ deviceId: 'D', kind: 'Get', uri: './DevDetail/FwV' }, 1);
    const b = await q.enqueue({ deviceId: 'D', kind: 'Exec', uri: './Vendor/Reboot' }, 2);
    const c = await q.enqueue({ deviceId: 'D', kind: 'Replace', uri: './Vendor/Color', data: 'red' }, 3);
    await q.enqueue({ deviceId: 'E', kind: 'Get', uri: './DevInfo/Man' }, 4);
    const taken = await q.takeQueued('D', 10);
    assert.deepEqual(taken.map((t) => [t.id, t.status]), [[a.id, 'sent'], [b.id, 'sent'], [c.id, 'sent']]);
    assert.deepEqual(await q.takeQueued('D', 11), [], 'held by the first session');
    assert.equal((await q.finish(a.id, 200, 'fw-1', 12))?.status, 'succeeded');
    assert.equal((await q.finish(b.id, null, null, 12))?.status, 'unknown');
    assert.equal(await q.finish(a.id, 500, null, 13), null, 'a finished command does not change again');
    assert.equal(await q.unsend(b.id, 13), false, 'an Exec of unknown outcome is never queued again by itself');
    assert.equal(await q.unsend(c.id, 13), true);
    assert.deepEqual((await q.takeQueued('D', 14)).map((t) => t.id), [c.id]);
    assert.equal((await q.finish(c.id, 404, null, 15))?.status, 'failed');
    const listed = await q.listByDevice('D');
    assert.deepEqual(listed.map((l) => [l.id, l.status, l.resultCode, l.resultData]), [[c.id, 'failed', 404, null], [b.id, 'unknown', null, null], [a.id, 'succeeded', 200, 'fw-1']]);
    for (const bad of [
      { deviceId: 'D', kind: 'Delete' as 'Get', uri: './X' },
      { deviceId: 'D', kind: 'Get' as const, uri: 'DevInfo/Man' },
      { deviceId: 'D', kind: 'Get' as const, uri: './X\n' },
      { deviceId: 'D', kind: 'Replace' as const, uri: './X', data: 'x'.repeat(16 * 1024 + 1) },
    ]) await assert.rejects(q.enqueue(bad, 20), StoreError);
    assert.equal((await q.listByDevice('D')).length, 3);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('expiry: a queued command past its expiresAt is failed as expired, never sent; a past expiresAt is refused; sent ones of a stopped server become unknown', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-omadm-commands-'));
  const store = openSqliteStore({ dataDir: dir, secretKey: randomBytes(32) });
  try {
    const q = store.omadmCommands;
    const soon = await q.enqueue({ deviceId: 'D', kind: 'Exec', uri: './Vendor/Reboot', expiresAt: 1_000 }, 100);
    const later = await q.enqueue({ deviceId: 'D', kind: 'Get', uri: './DevDetail/FwV', expiresAt: new Date(5_000) }, 100);
    const never = await q.enqueue({ deviceId: 'D', kind: 'Get', uri: './DevInfo/Man' }, 100);
    const other = await q.enqueue({ deviceId: 'E', kind: 'Get', uri: './DevInfo/Man', expiresAt: 1_000 }, 100);
    assert.equal(soon.expiresAt, 1_000);
    assert.equal(never.expiresAt, null);
    await assert.rejects(q.enqueue({ deviceId: 'D', kind: 'Get', uri: './X', expiresAt: 100 }, 100), /expiresAt must be in the future/);
    // At 1,000 ms the first has expired (expiresAt is the first instant it may no longer be sent).
    const taken = await q.takeQueued('D', 1_000);
    assert.deepEqual(taken.map((t) => t.id), [later.id, never.id]);
    const listed = await q.listByDevice('D');
    const expired = listed.find((l) => l.id === soon.id)!;
    assert.equal(expired.status, 'failed');
    assert.equal(expired.resultCode, null, 'no device answered it');
    assert.match(expired.resultData ?? '', /^expired: not sent before 1970-01-01T00:00:01\.000Z$/);
    assert.equal(await q.finish(soon.id, 200, null, 1_001), null, 'an expired command takes no answer');
    // Another device's command expires by expireDue (the API list does it per device).
    assert.equal((await q.listByDevice('E'))[0]!.status, 'queued');
    assert.equal(await q.expireDue(999, 'E'), 0);
    assert.equal(await q.expireDue(1_000, 'E'), 1);
    assert.equal((await q.listByDevice('E'))[0]!.id, other.id);
    assert.equal((await q.listByDevice('E'))[0]!.status, 'failed');
    // The server stops while a session holds `later` and `never`: after the restart they are unknown, not queued again.
    assert.equal(await q.abandonSent(2_000), 2);
    const after = await q.listByDevice('D');
    assert.deepEqual(after.map((l) => [l.id, l.status]), [[never.id, 'unknown'], [later.id, 'unknown'], [soon.id, 'failed']]);
    assert.match(after[0]!.resultData ?? '', /server stopped/);
    assert.deepEqual(await q.takeQueued('D', 2_001), []);
    assert.equal(await q.abandonSent(2_002), 0);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
