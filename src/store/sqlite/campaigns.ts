import { StoreError } from '../errors.js';
import type { Page, PageRequest, TimeInput } from '../types.js';
import type { Campaign, CampaignMember, CampaignPatch, CampaignRepository, CampaignState, CampaignWave, CountRow, MemberState, NewMember, WaveState } from '../../fleet/campaign-types.js';
import { CAMPAIGN_STATES } from '../../fleet/campaign-types.js';
import type { PackageTargetRepository } from '../../fleet/packages.js';
import type { PackageTargets } from '../../fleet/selection.js';
import { type Statements, invalid, limitOf, pageOf, requireText, run, toMs } from './common.js';

interface CampaignRow {
  id: string;
  name: string;
  spec: string;
  state: CampaignState;
  current_wave: number;
  pause_reason: string | null;
  paused_models: string;
  accepted: string;
  retry_of: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

interface MemberRow {
  campaign_id: string;
  device_id: string;
  position: number;
  wave: number;
  endpoint: string;
  model_key: string;
  package_sha256: string | null;
  state: MemberState;
  job_id: string | null;
  method: string | null;
  message: string | null;
  started_at: number | null;
  ended_at: number | null;
}

const CAMPAIGN_COLUMNS = 'id, name, spec, state, current_wave, pause_reason, paused_models, accepted, retry_of, created_at, updated_at, finished_at';
const MEMBER_COLUMNS = 'campaign_id, device_id, position, wave, endpoint, model_key, package_sha256, state, job_id, method, message, started_at, ended_at';

const SQL = {
  insert: `INSERT INTO campaigns (${CAMPAIGN_COLUMNS}) VALUES (@id, @name, @spec, @state, 0, NULL, '{}', '{"overall":{"failed":0,"ended":0},"models":{}}', @retryOf, @now, @now, NULL)`,
  get: `SELECT ${CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?`,
  list: `SELECT ${CAMPAIGN_COLUMNS} FROM campaigns WHERE (@after = '' OR id < @after) ORDER BY id DESC LIMIT @limit`,
  active: `SELECT ${CAMPAIGN_COLUMNS} FROM campaigns WHERE state IN ('running', 'paused', 'awaiting-approval') ORDER BY created_at, id`,
  insertWave: "INSERT INTO campaign_waves (campaign_id, wave, size, state) VALUES (?, ?, ?, 'pending')",
  waves: 'SELECT campaign_id, wave, size, state, approved_at, started_at, ended_at FROM campaign_waves WHERE campaign_id = ? ORDER BY wave',
  insertMember: `INSERT INTO campaign_members (${MEMBER_COLUMNS}) VALUES (@campaignId, @deviceId, @position, @wave, @endpoint, @modelKey, @packageSha256, @state, NULL, NULL, @message, NULL, NULL)`,
  starting: "UPDATE campaign_members SET state = 'starting', started_at = @now WHERE campaign_id = @id AND device_id = @deviceId AND state = 'pending'",
  started: "UPDATE campaign_members SET state = 'started', job_id = @jobId WHERE campaign_id = @id AND device_id = @deviceId AND state = 'starting'",
  notStarted: "UPDATE campaign_members SET state = 'failed', message = @message, ended_at = @now WHERE campaign_id = @id AND device_id = @deviceId AND state = 'starting'",
  ended: "UPDATE campaign_members SET state = @state, method = @method, message = @message, ended_at = @now WHERE campaign_id = @id AND device_id = @deviceId AND state = 'started'",
  revert: "UPDATE campaign_members SET state = 'pending', started_at = NULL WHERE campaign_id = @id AND device_id = @deviceId AND state = 'starting'",
  cancelPending: "UPDATE campaign_members SET state = 'cancelled', message = @message, ended_at = @now WHERE campaign_id = @id AND state = 'pending'",
  counts: 'SELECT wave, model_key AS modelKey, state, method, COUNT(*) AS n FROM campaign_members WHERE campaign_id = ? GROUP BY wave, model_key, state, method',
  inUseMember: "SELECT campaign_id FROM campaign_members WHERE package_sha256 = ? AND state IN ('pending', 'starting', 'started') LIMIT 1",
  inUseChain: "SELECT id FROM install_chain_jobs WHERE package_sha256 = ? AND state = 'running' LIMIT 1",
  inUseInstall: "SELECT id FROM install_jobs WHERE package_sha256 = ? AND state NOT IN ('succeeded', 'failed', 'cancelled') LIMIT 1",
  memberInstalling: "SELECT campaign_id, wave FROM campaign_members WHERE endpoint = ? AND package_sha256 = ? AND state IN ('starting', 'started') ORDER BY started_at DESC LIMIT 1",
  chainJobSince: 'SELECT id FROM install_chain_jobs WHERE endpoint = ? AND package_sha256 = ? AND created_at >= ? ORDER BY created_at LIMIT 1',
  getTargets: 'SELECT targets FROM package_targets WHERE sha256 = ?',
  setTargets: 'INSERT INTO package_targets (sha256, targets, set_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING',
} as const;

function campaignOf(r: CampaignRow): Campaign {
  return {
    id: r.id,
    name: r.name,
    spec: JSON.parse(r.spec) as Campaign['spec'],
    state: r.state,
    currentWave: r.current_wave,
    pauseReason: r.pause_reason,
    pausedModels: JSON.parse(r.paused_models) as Record<string, string>,
    accepted: JSON.parse(r.accepted) as Campaign['accepted'],
    retryOf: r.retry_of,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

function memberOf(r: MemberRow): CampaignMember {
  return {
    campaignId: r.campaign_id,
    deviceId: r.device_id,
    position: r.position,
    wave: r.wave,
    endpoint: r.endpoint,
    modelKey: r.model_key,
    packageSha256: r.package_sha256,
    state: r.state,
    jobId: r.job_id,
    method: r.method,
    message: r.message,
    startedAt: r.started_at,
    endedAt: r.ended_at,
  };
}

/**
 * Campaigns, their waves and members (fleet's CampaignRepository). Every write is durable and
 * one transaction: a member is `starting` in the store before its job is made, so a restart
 * knows which devices may already have a job.
 */
export class SqliteCampaignRepository implements CampaignRepository {
  constructor(private readonly s: Statements) {}

  create(campaign: { id: string; name: string; spec: Campaign['spec']; retryOf: string | null; state: CampaignState }, waves: readonly { wave: number; size: number }[], members: readonly NewMember[], now: TimeInput): Promise<Campaign> {
    return run('create campaign', () =>
      this.s.transaction(() => {
        const t = toMs(now, 'now');
        this.s.get(SQL.insert).run({ id: requireText(campaign.id, 'id'), name: requireText(campaign.name, 'name'), spec: JSON.stringify(campaign.spec), state: campaign.state, retryOf: campaign.retryOf, now: t });
        for (const w of waves) this.s.get(SQL.insertWave).run(campaign.id, w.wave, w.size);
        const insert = this.s.get(SQL.insertMember);
        for (const m of members) insert.run({ campaignId: campaign.id, deviceId: m.deviceId, position: m.position, wave: m.wave, endpoint: m.endpoint, modelKey: m.modelKey, packageSha256: m.packageSha256, state: m.state, message: m.message });
        return campaignOf(this.s.get(SQL.get).get(campaign.id) as CampaignRow);
      }),
    );
  }

  get(id: string): Promise<Campaign | null> {
    return run('get campaign', () => {
      const row = this.s.get(SQL.get).get(id) as CampaignRow | undefined;
      return row ? campaignOf(row) : null;
    });
  }

  list(page?: PageRequest): Promise<Page<Campaign>> {
    return run('list campaigns', () => {
      const limit = limitOf(page);
      const rows = this.s.get(SQL.list).all({ after: page?.after ?? '', limit: limit + 1 }) as CampaignRow[];
      return pageOf(rows, limit, campaignOf, (r) => r.id);
    });
  }

  listActive(): Promise<Campaign[]> {
    return run('list active campaigns', () => (this.s.get(SQL.active).all() as CampaignRow[]).map(campaignOf));
  }

  update(id: string, patch: CampaignPatch, now: TimeInput): Promise<Campaign> {
    return run('update campaign', () =>
      this.s.transaction(() => {
        const row = this.s.get(SQL.get).get(id) as CampaignRow | undefined;
        if (!row) throw new StoreError('NOT_FOUND', `campaign ${id} does not exist`);
        const t = toMs(now, 'now');
        if (patch.state !== undefined) {
          if (!CAMPAIGN_STATES.includes(patch.state)) throw invalid(`state must be one of ${CAMPAIGN_STATES.join(', ')}`);
          if (row.state === 'completed' || row.state === 'cancelled') throw new StoreError('INVALID_TRANSITION', `campaign ${id} already ended (${row.state})`);
          row.state = patch.state;
          if (patch.state === 'completed' || patch.state === 'cancelled') row.finished_at = t;
        }
        if (patch.currentWave !== undefined) row.current_wave = patch.currentWave;
        if (patch.pauseReason !== undefined) row.pause_reason = patch.pauseReason;
        if (patch.pausedModels !== undefined) row.paused_models = JSON.stringify(patch.pausedModels);
        if (patch.accepted !== undefined) row.accepted = JSON.stringify(patch.accepted);
        row.updated_at = t;
        this.s
          .get('UPDATE campaigns SET state = @state, current_wave = @current_wave, pause_reason = @pause_reason, paused_models = @paused_models, accepted = @accepted, updated_at = @updated_at, finished_at = @finished_at WHERE id = @id')
          .run(row);
        return campaignOf(row);
      }),
    );
  }

  setWave(id: string, wave: number, state: WaveState, now: TimeInput): Promise<void> {
    return run('set campaign wave', () =>
      this.s.transaction(() => {
        const t = toMs(now, 'now');
        const column = state === 'running' ? 'started_at' : state === 'done' ? 'ended_at' : null;
        const approved = state === 'running' ? ', approved_at = COALESCE(approved_at, @t)' : '';
        const sql = `UPDATE campaign_waves SET state = @state${column ? `, ${column} = COALESCE(${column}, @t)` : ''}${approved} WHERE campaign_id = @id AND wave = @wave`;
        if (this.s.get(sql).run({ id, wave, state, t }).changes === 0) throw new StoreError('NOT_FOUND', `campaign ${id} has no wave ${wave + 1}`);
      }),
    );
  }

  waves(id: string): Promise<CampaignWave[]> {
    return run('campaign waves', () =>
      (this.s.get(SQL.waves).all(id) as { campaign_id: string; wave: number; size: number; state: WaveState; approved_at: number | null; started_at: number | null; ended_at: number | null }[]).map((r) => ({
        campaignId: r.campaign_id,
        wave: r.wave,
        size: r.size,
        state: r.state,
        approvedAt: r.approved_at,
        startedAt: r.started_at,
        endedAt: r.ended_at,
      })),
    );
  }

  members(id: string, filter: { states?: readonly MemberState[]; maxWave?: number; limit?: number; afterPosition?: number } = {}): Promise<CampaignMember[]> {
    return run('campaign members', () => {
      const states = filter.states ?? [];
      const where = states.length > 0 ? ` AND state IN (${states.map(() => '?').join(', ')})` : '';
      const wave = filter.maxWave !== undefined ? ' AND wave <= ?' : '';
      // Waves are consecutive runs of positions: the (wave, position) order is the position order, a cursor.
      const after = filter.afterPosition !== undefined ? ' AND position > ?' : '';
      const limit = filter.limit !== undefined ? ' LIMIT ?' : '';
      const params: unknown[] = [id, ...states, ...(filter.maxWave !== undefined ? [filter.maxWave] : []), ...(filter.afterPosition !== undefined ? [filter.afterPosition] : []), ...(filter.limit !== undefined ? [filter.limit] : [])];
      return (this.s.get(`SELECT ${MEMBER_COLUMNS} FROM campaign_members WHERE campaign_id = ?${where}${wave}${after} ORDER BY wave, position${limit}`).all(...params) as MemberRow[]).map(memberOf);
    });
  }

  markStarting(id: string, deviceIds: readonly string[], now: TimeInput): Promise<void> {
    return run('mark campaign members starting', () =>
      this.s.transaction(() => {
        const t = toMs(now, 'now');
        for (const deviceId of deviceIds) this.s.get(SQL.starting).run({ id, deviceId, now: t });
      }),
    );
  }

  recordStarted(id: string, results: readonly { deviceId: string; jobId?: string; error?: string }[], now: TimeInput): Promise<void> {
    return run('record campaign jobs', () =>
      this.s.transaction(() => {
        const t = toMs(now, 'now');
        for (const r of results) {
          if (r.jobId !== undefined) this.s.get(SQL.started).run({ id, deviceId: r.deviceId, jobId: r.jobId });
          else this.s.get(SQL.notStarted).run({ id, deviceId: r.deviceId, message: `not started: ${r.error ?? 'unknown error'}`, now: t });
        }
      }),
    );
  }

  recordEnded(id: string, results: readonly { deviceId: string; state: 'succeeded' | 'failed' | 'cancelled'; method: string | null; message: string | null }[], now: TimeInput): Promise<void> {
    return run('record campaign results', () =>
      this.s.transaction(() => {
        const t = toMs(now, 'now');
        for (const r of results) this.s.get(SQL.ended).run({ id, deviceId: r.deviceId, state: r.state, method: r.method, message: r.message, now: t });
      }),
    );
  }

  revertStarting(id: string, deviceIds: readonly string[], now: TimeInput): Promise<void> {
    toMs(now, 'now');
    return run('revert campaign members', () =>
      this.s.transaction(() => {
        for (const deviceId of deviceIds) this.s.get(SQL.revert).run({ id, deviceId });
      }),
    );
  }

  cancelPending(id: string, message: string, now: TimeInput): Promise<number> {
    return run('cancel pending campaign members', () => this.s.transaction(() => this.s.get(SQL.cancelPending).run({ id, message, now: toMs(now, 'now') }).changes));
  }

  counts(id: string): Promise<CountRow[]> {
    return run('campaign counts', () => this.s.get(SQL.counts).all(id) as CountRow[]);
  }

  /** The install chain job made for a device and package at or after `since` (a campaign's restart adopts it). */
  chainJobSince(endpoint: string, packageSha256: string, since: number): Promise<string | null> {
    return run('find install chain job', () => (this.s.get(SQL.chainJobSince).pluck().get(endpoint, packageSha256, since) as string | undefined) ?? null);
  }

  memberInstalling(endpoint: string, packageSha256: string): Promise<{ campaignId: string; wave: number } | null> {
    return run('find campaign member', () => {
      const row = this.s.get(SQL.memberInstalling).get(endpoint, packageSha256) as { campaign_id: string; wave: number } | undefined;
      return row ? { campaignId: row.campaign_id, wave: row.wave } : null;
    });
  }

  packageInUse(sha256: string): Promise<string | undefined> {
    return run('package in use', () => {
      const member = this.s.get(SQL.inUseMember).pluck().get(sha256) as string | undefined;
      if (member !== undefined) return `campaign ${member} still has devices to install it on`;
      const chain = this.s.get(SQL.inUseChain).pluck().get(sha256) as string | undefined;
      if (chain !== undefined) return `install job ${chain} is running`;
      const job = this.s.get(SQL.inUseInstall).pluck().get(sha256) as string | undefined;
      if (job !== undefined) return `Object 9 job ${job} is open`;
      return undefined;
    });
  }
}

/** Package targets (selection), set once per package. */
export class SqlitePackageTargetRepository implements PackageTargetRepository {
  constructor(private readonly s: Statements) {}

  get(sha256: string): Promise<PackageTargets | null> {
    return run('get package targets', () => {
      const json = this.s.get(SQL.getTargets).pluck().get(sha256) as string | undefined;
      return json === undefined ? null : (JSON.parse(json) as PackageTargets);
    });
  }

  setOnce(sha256: string, targets: PackageTargets, now: number): Promise<boolean> {
    return run('set package targets', () => this.s.transaction(() => this.s.get(SQL.setTargets).run(sha256, JSON.stringify(targets), toMs(now, 'now')).changes > 0));
  }
}
