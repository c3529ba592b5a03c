/**
 * `depot serve --sim N --demo-campaign`: a campaign running on the simulated fleet, so a new
 * user watches one go through its waves and finish. Once the fleet has come up (its devices in
 * the inventory), a package signed with the demo key (which the simulated devices trust) is put
 * in the catalog and a campaign over every device is started in three waves (10 %, 50 %, 100 %);
 * each change of its progress is one line. It is an ordinary campaign: the console and
 * `depot campaign watch <id>` show it too.
 */
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { buildPackage } from '../pkg/index.js';
import type { Campaign, CampaignEngine, CampaignProgress } from '../fleet/campaigns.js';
import type { PackageCatalog } from '../fleet/packages.js';
import { demoSigningKey } from './demo-fleet.js';

export interface DemoCampaignOptions {
  readonly dataDir: string;
  readonly catalog: Pick<PackageCatalog, 'addBytes'>;
  readonly campaigns: Pick<CampaignEngine, 'create' | 'progress'>;
  readonly inventory: { ids(filter: object): Promise<string[]> };
  /** Devices expected in the inventory before the campaign starts (it starts anyway after `waitMs`). */
  readonly expected: number;
  readonly waitMs?: number;
  readonly pollMs?: number;
  readonly print: (line: string) => void;
}

export interface DemoCampaign {
  /** Resolves with the campaign once it is created (undefined when stopped first). */
  readonly started: Promise<Campaign | undefined>;
  /** Resolves when the campaign has finished (every device installed, failed or waiting marked) or the demo was stopped. */
  readonly finished: Promise<void>;
  stop(): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** One line of a campaign's progress. */
export function progressLine(p: CampaignProgress): string {
  const t = p.totals;
  const methods = p.methods.map((m) => `${m.method} ${m.succeeded}${m.failed ? `/${m.failed} failed` : ''}`).join(', ');
  return `campaign "${p.campaign.name}" ${p.campaign.state}, wave ${p.campaign.currentWave + 1} of ${p.waves.length}: ${t.succeeded} installed, ${t.starting + t.started} running, ${t.pending} pending, ${t.failed} failed${t['no-package'] ? `, ${t['no-package']} without a package` : ''}${methods ? ` (by ${methods})` : ''}`;
}

export function startDemoCampaign(options: DemoCampaignOptions): DemoCampaign {
  let stopped = false;
  const pollMs = options.pollMs ?? 1000;
  const started = (async (): Promise<Campaign | undefined> => {
    const deadline = Date.now() + (options.waitMs ?? 60_000);
    while (!stopped && Date.now() < deadline && (await options.inventory.ids({})).length < options.expected) await sleep(pollMs);
    if (stopped) return undefined;
    const key = await demoSigningKey(options.dataDir);
    const bytes = buildPackage({
      name: 'demo-agent',
      version: '1.0.0',
      files: [{ path: 'bin/demo-agent', data: '#!/bin/sh\necho "Depot demo agent 1.0.0"\n', mode: 0o755 }, { path: 'README', data: 'Installed by the Depot demo campaign.\n' }],
      signer: { keyId: key.keyId, privateKey: createPrivateKey(await readFile(key.privateKeyFile, 'utf8')) },
    });
    const pkg = await options.catalog.addBytes(bytes);
    const campaign = await options.campaigns.create({
      name: 'demo-agent 1.0.0 (demo)',
      target: { kind: 'filter', filter: {} },
      package: { kind: 'fixed', sha256: pkg.sha256 },
      waves: [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
      // The demo fleet has phones no method reaches yet (no SCOMO, untrusting): they wait marked.
      successThreshold: 0.5,
      failureLimit: 0.5,
      seed: 1,
      smsPerMinute: 60,
    });
    options.print(`demo campaign ${campaign.id} started over ${(await options.inventory.ids({})).length} devices (watch: depot campaign watch ${campaign.id}, or the console's Campaigns page)`);
    return campaign;
  })();
  const finished = (async (): Promise<void> => {
    const campaign = await started;
    if (!campaign) return;
    let last = '';
    let waitingSaid = false;
    let unchanged = 0;
    for (; !stopped; await sleep(pollMs)) {
      const p = await options.campaigns.progress(campaign.id);
      const line = progressLine(p);
      if (line !== last) {
        options.print(line);
        unchanged = 0;
      } else unchanged++;
      last = line;
      const open = p.totals.pending + p.totals.starting + p.totals.started;
      if (p.campaign.state === 'completed' || p.campaign.state === 'cancelled') {
        options.print(`demo campaign ${p.campaign.state}: ${p.totals.succeeded} of ${p.totals.total} devices installed${p.campaign.pauseReason ? ` (${p.campaign.pauseReason})` : ''}`);
        return;
      }
      // Nothing moved for a while in the last wave, and nothing is left to start: what is still open waits for its device.
      if (!waitingSaid && unchanged >= 15 && open === p.totals.started && p.campaign.currentWave === p.waves.length - 1) {
        waitingSaid = true;
        // What is left waits for devices to come back (Mark for Installation): the demo's part is done.
        options.print(`demo campaign: ${p.totals.succeeded} of ${p.totals.total} devices installed, ${p.totals.failed} failed; ${p.totals.started} still open: marked for installation, they install at their next contact (depot campaign members ${p.campaign.id} --state started)`);
      }
    }
  })();
  return {
    started,
    finished,
    stop: () => {
      stopped = true;
    },
  };
}
