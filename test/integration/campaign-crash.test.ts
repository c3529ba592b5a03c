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
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { PeerProcess } from '../support/peer-process.js';

const CHILD = fileURLToPath(new URL('./campaign-crash-child.js', import.meta.url));
const DEVICES = 150;

/**
 * Stands for smsbox's sendsms and the radio network behind it (it outlives the killed Depot
 * processes): records every SMS submitted, and answers whether a phone has received its SMS
 * (the phone installs once it has).
 */
class SmsNetwork {
  readonly received: { to: string; text: string }[] = [];
  private readonly server: Server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/cgi-bin/sendsms') {
      this.received.push({ to: url.searchParams.get('to') ?? '', text: url.searchParams.get('text') ?? '' });
      res.writeHead(202).end('0: Accepted for delivery');
    } else if (url.pathname === '/installed') {
      const to = url.searchParams.get('to');
      res.writeHead(this.received.some((r) => r.to === to) ? 200 : 404).end();
    } else res.writeHead(404).end();
  });

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** Runs the child until the campaign completes, SIGKILLing it at random points the first six times; returns the kills' delays and what the network had received at each. */
async function crashCampaign(dataDir: string, devices: number, network?: { url: string; received: () => number }): Promise<{ kills: number[]; receivedAtKill: number[] }> {
  const kills: number[] = [];
  const receivedAtKill: number[] = [];
  {
    let mode = 'create';
    let completed = false;
    for (let run = 0; run < 12 && !completed; run++) {
      const child = new PeerProcess(process.execPath, [CHILD, dataDir, mode, String(devices), ...(network ? [network.url] : [])]);
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
      if (network) receivedAtKill.push(network.received());
    }
    assert.ok(completed, 'the campaign completed');
    assert.ok(kills.length >= 1, 'killed at least once');
  }
  return { kills, receivedAtKill };
}

void test('campaign durability: SIGKILL at random points, restarted over the same store: each device installed exactly once, nothing lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-campaign-crash-'));
  const dataDir = join(dir, 'data');
  try {
    await crashCampaign(dataDir, DEVICES);
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

void test('campaign durability with SMS: SIGKILL at random points while a campaign\'s SMS link texts are being sent (real outbox, paced per wave): no SMS sent twice, no device installed twice, no result lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'depot-campaign-crash-sms-'));
  const dataDir = join(dir, 'data');
  const network = new SmsNetwork();
  const devices = 60;
  try {
    const url = await network.listen();
    const { receivedAtKill } = await crashCampaign(dataDir, devices, { url, received: () => network.received.length });
    // Killed while SMS were going out (some sent, not all), at least once.
    assert.ok(receivedAtKill.some((n) => n > 0 && n < devices), `received at each kill: ${receivedAtKill.join(', ')}`);
    // No SMS sent twice: every phone got at most one text, and every text went to the network at most once.
    const perPhone = new Map<string, number>();
    for (const r of network.received) perPhone.set(r.to, (perPhone.get(r.to) ?? 0) + 1);
    assert.deepEqual([...perPhone].filter(([, n]) => n > 1), [], 'no phone got a second SMS');
    const db = new Database(join(dataDir, 'depot.sqlite'), { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT endpoint, COUNT(*) AS n FROM install_chain_jobs GROUP BY endpoint HAVING n > 1').all(), [], 'no device got a second install job');
      assert.equal(db.prepare('SELECT COUNT(*) FROM install_chain_jobs').pluck().get(), devices);
      const members = db.prepare('SELECT m.device_id AS device, m.state AS member, j.state AS job FROM campaign_members m LEFT JOIN install_chain_jobs j ON j.id = m.job_id').all() as { device: string; member: string; job: string | null }[];
      assert.deepEqual(members.filter((m) => m.member !== 'succeeded' || m.job !== 'succeeded'), [], 'every member succeeded with its job');
      assert.equal(db.prepare("SELECT COUNT(*) FROM install_chain_attempts WHERE outcome = 'succeeded'").pluck().get(), devices, 'one successful attempt per device');
      // One SMS per SMS link attempt that began; each phone's succeeded SMS-link install is one the network delivered.
      const smsAttempts = db.prepare("SELECT COUNT(*) FROM install_chain_attempts WHERE method = 'sms-link' AND outcome != 'skipped'").pluck().get() as number;
      assert.equal(db.prepare("SELECT COUNT(*) FROM sms_messages WHERE idem_key LIKE 'sms-link:%'").pluck().get(), smsAttempts);
      assert.ok(network.received.length <= smsAttempts);
      const bySms = db.prepare("SELECT COUNT(*) FROM install_chain_attempts WHERE method = 'sms-link' AND outcome = 'succeeded'").pluck().get() as number;
      assert.ok(bySms >= 1 && bySms <= new Set(network.received.map((r) => r.to)).size, `${bySms} installed by SMS link, ${network.received.length} texts received`);
      // A device not installed by its SMS link had that attempt end failed (its text lost to a kill, or its link expired while the process was down) before the next method installed it.
      const others = db.prepare("SELECT j.endpoint, GROUP_CONCAT(a.method || ':' || a.outcome, ' ') AS chain FROM install_chain_jobs j JOIN (SELECT * FROM install_chain_attempts ORDER BY job_id, seq) a ON a.job_id = j.id GROUP BY j.id HAVING SUM(a.method = 'sms-link' AND a.outcome = 'succeeded') = 0").all() as { endpoint: string; chain: string }[];
      assert.deepEqual(others.filter((o) => !/sms-link:failed.*quick:succeeded/.test(o.chain)), [], 'each went through a failed SMS link attempt to the quick method');
      // The per-wave send rate held across the kills: within each wave, scheduled slots one interval (10 ms) apart.
      const slots = db.prepare('SELECT pace_group AS g, scheduled_at AS at FROM sms_messages WHERE pace_group IS NOT NULL ORDER BY pace_group, scheduled_at').all() as { g: string; at: number }[];
      assert.equal(slots.length, smsAttempts);
      assert.equal(new Set(slots.map((x) => x.g)).size, 3, 'one pace group per wave');
      for (let i = 1; i < slots.length; i++) if (slots[i]!.g === slots[i - 1]!.g) assert.ok(slots[i]!.at - slots[i - 1]!.at >= 10, `slots ${slots[i - 1]!.at} and ${slots[i]!.at} of ${slots[i]!.g}`);
    } finally {
      db.close();
    }
  } finally {
    await network.close();
    if (process.env.DEPOT_KEEP_CRASH_DIR) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
});
