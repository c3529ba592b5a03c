/**
 * The DM endpoint's hooks with SCOMO beside the operator command queue: a session takes the
 * device's queued commands and its SCOMO jobs, every effect goes to both (each ignores the
 * other's job ids), and package downloads resolve SCOMO tokens.
 */
import type { OmaDmServerOptions } from '../http.js';
import type { ServerJob, SessionEffect } from '../session.js';
import type { ScomoService } from './service.js';

export function endpointHooks(
  commands: { jobsFor(deviceId: string): Promise<ServerJob[]>; onEffect(effect: SessionEffect): Promise<void> },
  scomo: ScomoService,
): Pick<OmaDmServerOptions, 'jobsFor' | 'onEffect' | 'downloads'> {
  return {
    jobsFor: async (deviceId) => [...(await commands.jobsFor(deviceId)), ...(await scomo.jobsFor(deviceId))],
    onEffect: async (effect) => {
      await commands.onEffect(effect);
      await scomo.onEffect(effect);
    },
    downloads: { resolve: (token) => scomo.resolveDownload(token), served: (jobId, end) => scomo.served(jobId, end) },
  };
}
