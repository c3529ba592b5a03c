/**
 * The durable operator command queue (store `omadm_commands`) as the endpoint's hooks: a session
 * takes the device's queued commands when it opens, and its effects record each outcome.
 */
import type { ServerJob, SessionEffect } from './session.js';
import type { OmaDmCommand } from '../store/sqlite/omadm-commands.js';

export interface OmaDmCommandQueue {
  takeQueued(deviceId: string, now: number): Promise<OmaDmCommand[]>;
  finish(id: number, code: number | null, data: string | null, now: number): Promise<unknown>;
  unsend(id: number, now: number): Promise<boolean>;
}

export function commandQueueHooks(queue: OmaDmCommandQueue, now: () => number = Date.now) {
  return {
    jobsFor: async (deviceId: string): Promise<ServerJob[]> =>
      (await queue.takeQueued(deviceId, now())).map((c) => ({
        id: String(c.id),
        kind: c.kind,
        uri: c.uri,
        ...(c.data === null ? {} : { data: c.data }),
        ...(c.format === null ? {} : { format: c.format }),
      })),
    onEffect: async (effect: SessionEffect): Promise<void> => {
      // Only this queue's jobs (numeric ids); SCOMO's and the facts' have their own.
      if ((effect.kind === 'job-result' || effect.kind === 'job-unsent') && !/^[0-9]{1,15}$/.test(effect.jobId)) return;
      if (effect.kind === 'job-result') {
        const first = effect.items[0]?.data;
        await queue.finish(Number(effect.jobId), effect.code, typeof first === 'string' ? first : first === undefined ? null : Buffer.from(first).toString('base64'), now());
      } else if (effect.kind === 'job-unsent') {
        await queue.unsend(Number(effect.jobId), now());
      }
    },
  };
}
