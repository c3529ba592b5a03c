/**
 * CampaignJobPort over the install chain driver's public API (install, view, cancel). Today each
 * job is its own transaction (ChainDriver.install); when the driver offers a batch `createMany`
 * (one transaction per wave), createJobs here is the one place to change.
 */
import type { ChainAttempt, ChainJob } from './domain.js';
import type { CampaignJobPort, CampaignJobResult, CampaignJobSpec, CampaignJobStatus } from './campaigns.js';

/** The part of ChainDriver the adapter uses (structural: tests can hand it a driver over a fake method). */
export interface ChainDriverLike {
  install(endpoint: string, packageSha256: string, options?: { activate?: boolean; methods?: readonly string[] }): Promise<ChainJob>;
  view(id: string): Promise<{ job: ChainJob; attempts: ChainAttempt[] } | null>;
  cancel(id: string): Promise<unknown>;
}

/** Finds a chain job by device, package and creation time (the store answers; see SqliteCampaignRepository.chainJobSince). */
export type ChainJobFinder = (endpoint: string, packageSha256: string, since: number) => Promise<string | null>;

export function chainJobPort(driver: ChainDriverLike, findJob: ChainJobFinder): CampaignJobPort {
  return {
    async createJobs(specs: readonly CampaignJobSpec[]): Promise<CampaignJobResult[]> {
      const out: CampaignJobResult[] = [];
      for (const spec of specs) {
        try {
          const job = await driver.install(spec.endpoint, spec.packageSha256, { activate: spec.activate, ...(spec.methods ? { methods: spec.methods } : {}) });
          out.push({ jobId: job.id });
        } catch (error) {
          out.push({ error: error instanceof Error ? error.message : String(error) });
        }
      }
      return out;
    },
    async jobStates(ids: readonly string[]): Promise<Map<string, CampaignJobStatus>> {
      const out = new Map<string, CampaignJobStatus>();
      for (const id of ids) {
        const view = await driver.view(id);
        if (!view) continue;
        const ran = view.attempts.filter((a) => a.outcome !== 'skipped');
        out.set(id, { state: view.job.state, method: ran[ran.length - 1]?.method ?? null, message: view.job.message });
      }
      return out;
    },
    async cancel(id: string): Promise<void> {
      await driver.cancel(id);
    },
    findJob,
  };
}
