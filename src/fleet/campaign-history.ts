/**
 * Keeps each campaign's progress over time (issue 17): every progress the engine publishes
 * (a change of state, wave or totals) becomes a sample in the store, which the console's
 * rollout chart reads (GET /api/v1/campaigns/:id/history) also after a restart or for a
 * campaign nobody watched live.
 */
import type { CampaignEngine, CampaignProgress } from './campaigns.js';
import type { ProgressSample } from '../store/sqlite/campaign-history.js';

export interface CampaignHistoryPort {
  record(campaignId: string, sample: Omit<ProgressSample, 'at'>, at: number): Promise<void>;
}

export function sampleOf(p: CampaignProgress): Omit<ProgressSample, 'at'> {
  const t = p.totals;
  return { succeeded: t.succeeded, failed: t.failed, running: t.starting + t.started, pending: t.pending, ended: t.succeeded + t.failed + t.cancelled + t['no-package'], total: t.total };
}

/** Records every published progress; returns the function that stops recording. */
export function recordCampaignHistory(engine: CampaignEngine, history: CampaignHistoryPort, now: () => number, onError: (error: Error) => void): () => void {
  const listener = (p: CampaignProgress): void => {
    history.record(p.campaign.id, sampleOf(p), now()).catch(onError);
  };
  engine.on('progress', listener);
  return () => engine.off('progress', listener);
}
