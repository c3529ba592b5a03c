/**
 * CampaignJobPort over the install chain driver's public API: a wave's jobs are created with
 * installMany (one transaction per wave), falling back to one job at a time when the driver
 * refuses the batch as a whole.
 */
import type { ChainAttempt, ChainJob } from './domain.js';
import type { CampaignJobPort, CampaignJobResult, CampaignJobSpec, CampaignJobStatus } from './campaigns.js';

/** The part of ChainDriver the adapter uses (structural: tests can hand it a driver over a fake method). */
export interface ChainDriverLike {
  install(endpoint: string, packageSha256: string, options?: { activate?: boolean; methods?: readonly string[] }): Promise<ChainJob>;
  /** All jobs in one transaction, all or none. */
  installMany(requests: readonly { endpoint: string; packageSha256: string; activate?: boolean; methods?: readonly string[] }[]): Promise<ChainJob[]>;
  view(id: string): Promise<{ job: ChainJob; attempts: ChainAttempt[] } | null>;
  cancel(id: string): Promise<unknown>;
}

/** Finds a chain job by device, package and creation time (the store answers; see SqliteCampaignRepository.chainJobSince). */
export type ChainJobFinder = (endpoint: string, packageSha256: string, since: number) => Promise<string | null>;

export function chainJobPort(driver: ChainDriverLike, findJob: ChainJobFinder): CampaignJobPort {
  return {
    async createJobs(specs: readonly CampaignJobSpec[]): Promise<CampaignJobResult[]> {
      const requestOf = (spec: CampaignJobSpec) => ({ endpoint: spec.endpoint, packageSha256: spec.packageSha256, activate: spec.activate, ...(spec.methods ? { methods: spec.methods } : {}) });
      // The wave in one transaction; a batch the driver refuses as a whole (one device with an
      // open job, say) is created job by job so that each device gets its own answer.
      if (specs.length > 1) {
        try {
          const jobs = await driver.installMany(specs.map(requestOf));
          return jobs.map((job) => ({ jobId: job.id }));
        } catch {
          // fall through
        }
      }
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
