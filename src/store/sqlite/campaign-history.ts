/**
 * Campaign progress over time (issue 17: the console's "rollout progress over time" chart):
 * the campaign's totals each time they change, at one-second resolution (changes within the
 * same second update that second's row), so a long campaign keeps a bounded history. Rows go
 * with their campaign (ON DELETE CASCADE).
 */
import type { Statements } from './common.js';
import type { TimeInput } from '../types.js';
import { run, toMs } from './common.js';

export interface ProgressSample {
  at: number;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
  /** Devices that will not change any more: succeeded, failed, cancelled, no package. */
  ended: number;
  total: number;
}

const RESOLUTION_MS = 1000;

export class SqliteCampaignHistoryRepository {
  constructor(private readonly s: Statements) {}

  record(campaignId: string, sample: Omit<ProgressSample, 'at'>, at: TimeInput): Promise<void> {
    return run('record campaign progress', () => {
      const t = Math.floor(toMs(at, 'at') / RESOLUTION_MS) * RESOLUTION_MS;
      this.s
        .get(
          `INSERT INTO campaign_progress_samples (campaign_id, at, succeeded, failed, running, pending, ended, total)
           VALUES (@campaignId, @at, @succeeded, @failed, @running, @pending, @ended, @total)
           ON CONFLICT (campaign_id, at) DO UPDATE SET succeeded = excluded.succeeded, failed = excluded.failed, running = excluded.running,
             pending = excluded.pending, ended = excluded.ended, total = excluded.total`,
        )
        .run({ campaignId, at: t, ...sample });
    });
  }

  /**
   * The samples, oldest first; at most `maxPoints` (default 1000): a longer history is thinned
   * evenly, always keeping the first and the last sample.
   */
  list(campaignId: string, maxPoints = 1000): Promise<ProgressSample[]> {
    return run('list campaign progress', () => {
      const rows = this.s.get('SELECT at, succeeded, failed, running, pending, ended, total FROM campaign_progress_samples WHERE campaign_id = ? ORDER BY at').all(campaignId) as ProgressSample[];
      if (rows.length <= maxPoints || maxPoints < 2) return rows;
      const step = (rows.length - 1) / (maxPoints - 1);
      return Array.from({ length: maxPoints }, (_, i) => rows[Math.round(i * step)]!);
    });
  }
}
