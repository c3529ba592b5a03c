/**
 * A campaign across `kill -9` (issue 16, durability): a process running the campaign engine and
 * the real install chain driver over one SQLite file is killed with SIGKILL at random points,
 * several times, and started again over the same file until the campaign completes. Every device
 * ends with exactly one install job (none twice, none lost), and every member's recorded job is
 * that job, succeeded.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { PeerProcess } from '../support/peer-process.js';

const CHILD = fileURLToPath(new URL('./campaign-crash-child.js', import.meta.url));
const DEVICES = 150;

void test('campaign durability: SIGKILL at random points, restarted over the same store: each device installed exactly once, nothing lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-campaign-crash-'));
  const dataDir = join(dir, 'data');
  const kills: number[] = [];
  try {
    let mode = 'create';
    let completed = false;
    for (let run = 0; run < 12 && !completed; run++) {
      const child = new PeerProcess(process.execPath, [CHILD, dataDir, mode, String(DEVICES)]);
      await child.waitForOutput(/campaign \S+/, 60_000);
      mode = 'resume';
      if (run >= 6) {
        // Enough kills: let it finish.
        await child.waitForOutput(/completed/, 120_000).catch((error: unknown) => {
          const db = new Database(join(dataDir, 'depot.sqlite'), { readonly: true });
          const state = {
            campaign: db.prepare('SELECT state, current_wave, pause_reason, paused_models FROM campaigns').all(),
            waves: db.prepare('SELECT wave, size, state FROM campaign_waves').all(),
            members: db.prepare('SELECT state, COUNT(*) AS n FROM campaign_members GROUP BY state').all(),
            jobs: db.prepare('SELECT state, COUNT(*) AS n FROM install_chain_jobs GROUP BY state').all(),
            stuck: db.prepare("SELECT m.device_id, m.state, m.job_id, m.started_at, j.state AS job, j.created_at FROM campaign_members m LEFT JOIN install_chain_jobs j ON j.endpoint = m.endpoint WHERE m.state IN ('starting', 'started', 'pending') LIMIT 5").all(),
          };
          db.close();
          throw new Error(`${(error as Error).message}\nstderr: ${child.stderr}\nstore: ${JSON.stringify(state)}`);
        });
        assert.equal((await child.waitForExit(30_000)).code, 0, child.stderr);
        completed = true;
        break;
      }
      const delay = 50 + Math.floor(Math.random() * 400);
      await new Promise((r) => setTimeout(r, delay));
      if (/completed/.test(child.stdout)) {
        await child.waitForExit(30_000);
        completed = true;
        break;
      }
      child.child.kill('SIGKILL');
      const exit = await child.waitForExit(30_000);
      assert.equal(exit.signal, 'SIGKILL');
      assert.doesNotMatch(child.stderr, /campaigns: |chain: /, 'no error reported before the kill');
      kills.push(delay);
    }
    assert.ok(completed, 'the campaign completed');
    assert.ok(kills.length >= 1, 'killed at least once');
    const db = new Database(join(dataDir, 'depot.sqlite'), { readonly: true });
    try {
      const twice = db.prepare('SELECT endpoint, COUNT(*) AS n FROM install_chain_jobs GROUP BY endpoint HAVING n > 1').all();
      assert.deepEqual(twice, [], 'no device got a second install job');
      assert.equal(db.prepare('SELECT COUNT(*) FROM install_chain_jobs').pluck().get(), DEVICES, 'every device got its job');
      const members = db.prepare('SELECT m.device_id AS device, m.state AS member, j.state AS job, j.message AS message FROM campaign_members m LEFT JOIN install_chain_jobs j ON j.id = m.job_id').all() as { device: string; member: string; job: string | null; message: string | null }[];
      assert.equal(members.length, DEVICES);
      // Nothing lost between the layers: every member recorded its job and that job's outcome.
      assert.deepEqual(members.filter((m) => m.job === null || m.member !== m.job), [], 'each member has its job, in the same end state');
      // Every install succeeded: a kill between a succeeded attempt and the end of its job ends
      // the job succeeded after the restart (it does not go on to the next method).
      assert.deepEqual(members.filter((m) => m.member !== 'succeeded'), [], 'every member succeeded');
      assert.equal(db.prepare("SELECT COUNT(*) FROM install_chain_attempts WHERE outcome = 'succeeded'").pluck().get(), DEVICES, 'one successful attempt per device: none installed twice, none lost');
    } finally {
      db.close();
    }
  } finally {
    if (process.env.DEPOT_KEEP_CRASH_DIR) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
});
