/**
 * The result codes install attempts report, with what each means and whether retrying helps
 * (issue 17: the device page shows "each result code and its meaning"). One list for both
 * protocols, from the same tables the drivers advise with: Object 9 Update Result
 * (src/fleet/results.ts; its number in the seed and registry encodings), OMA DM SCOMO result
 * codes (src/omadm/scomo/results.ts) and the SMS link method's own outcomes.
 */
import type { RouteSpec } from './server.js';
import { RESULT_ADVICE } from '../fleet/results.js';
import { REGISTRY_PROFILE, SEED_PROFILE } from '../lwm2m/objects/software-management/encoding.js';
import { UPDATE_RESULTS } from '../lwm2m/objects/software-management/model.js';
import { SCOMO_RESULT_CODES, scomoResultAdvice } from '../omadm/scomo/results.js';

export interface ResultCode {
  /** The name install jobs and attempts carry in `result`. */
  name: string;
  protocol: 'lwm2m' | 'omadm' | 'sms';
  /** Numbers on the wire: Object 9 rid 9 (seed and registry encodings) or the SCOMO code. */
  codes: Record<string, number>;
  meaning: string;
  /** retry, retry-resume, no-retry; null for results that are no failure. */
  retry: string | null;
}

export function resultCodes(): ResultCode[] {
  const object9 = UPDATE_RESULTS.map((name) => {
    const seed = SEED_PROFILE.updateResult[name];
    const registry = REGISTRY_PROFILE.updateResult[name];
    return { name, protocol: 'lwm2m' as const, codes: { ...(seed !== undefined ? { seed } : {}), ...(registry !== undefined ? { registry } : {}) }, meaning: RESULT_ADVICE[name].message, retry: RESULT_ADVICE[name].retry };
  });
  const scomo = SCOMO_RESULT_CODES.map((code) => {
    const advice = scomoResultAdvice(code);
    return { name: advice.name, protocol: 'omadm' as const, codes: { scomo: code }, meaning: advice.message, retry: advice.retry };
  });
  const sms: ResultCode[] = [
    { name: 'SMS_FAILED', protocol: 'sms', codes: {}, meaning: 'The SMS carrying the download link failed or was cancelled at the SMS centre (see the SMS outbox for why).', retry: 'retry' },
    { name: 'LINK_EXPIRED', protocol: 'sms', codes: {}, meaning: 'The one-time download link expired or was withdrawn before the device reported the package installed.', retry: 'retry' },
  ];
  return [...object9, ...scomo, ...sms];
}

export function resultCodeRoutes(): RouteSpec[] {
  const list = resultCodes();
  return [
    {
      method: 'GET',
      url: '/api/v1/result-codes',
      summary: 'Every result code an install attempt can report (Object 9 Update Result, OMA DM SCOMO, SMS link), with its numbers on the wire, what it means and whether retrying helps',
      handler: () => Promise.resolve({ results: list }),
    },
  ];
}
