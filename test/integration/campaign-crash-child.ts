/**
 * Child of campaign-crash.test.ts: a campaign engine and the real install chain driver over the
 * store in argv[2], with a quick fake install method (running at begin, succeeded at its next
 * timer event). `create` makes the devices and the campaign; `resume` picks up what the store
 * holds. Prints "campaign <id>" and "completed" when the campaign ends; the parent kills it
 * with SIGKILL at random points in between.
 */
import { ChainDriver } from '../../src/fleet/chain-driver.js';
import { CampaignEngine } from '../../src/fleet/campaigns.js';
import { chainJobPort } from '../../src/fleet/campaign-chain.js';
import { PackageCatalog } from '../../src/fleet/packages.js';
import type { InstallMethod, MethodStep } from '../../src/fleet/methods/method.js';
import { openSqliteStore } from '../../src/store/index.js';
import { SmsLinkMethod, StorePhoneDirectory } from '../../src/fleet/methods/sms-link.js';
import { KannelGateway } from '../../src/sms/kannel.js';
import { SmsOutbox } from '../../src/sms/outbox.js';

const [dataDir, mode, countText, network] = process.argv.slice(2) as [string, string, string, string | undefined];
const SHA = 'c'.repeat(64);

/** Quick: running at begin, succeeded at its next timer event (so jobs overlap the kills). */
const quick: InstallMethod = {
  name: 'quick',
  preflight: () => Promise.resolve(undefined),
  begin: (): Promise<MethodStep> => Promise.resolve({ status: 'running', state: { n: 0 }, message: 'Installing.' }),
  advance: (): Promise<MethodStep> => Promise.resolve({ status: 'succeeded', message: 'Installed.' }),
  cancel: () => Promise.resolve(),
};

const store = openSqliteStore({ dataDir });
const catalog = new PackageCatalog({ dataDir, repository: store.packages });
// With a network (the parent's stand-in for smsbox's sendsms, which also stands for the phones):
// the real SMS link method over the real outbox goes first; a phone installs once the network
// has its SMS. Links expire after 10 s: an SMS a kill left unknown (never resent) expires and
// the job goes on to the quick method.
let outbox: SmsOutbox | undefined;
const methods: InstallMethod[] = [quick];
if (network) {
  outbox = new SmsOutbox({ repository: store.sms.outbox, gateway: new KannelGateway({ sendsmsUrl: `${network}/cgi-bin/sendsms`, username: 'depot', password: 'crash-test-password' }), callbackBase: 'http://127.0.0.1:9', callbackSecret: 'crash-test-callback-secret-0123', ratePerSecond: 1000, log: () => undefined });
  const smsLink = new SmsLinkMethod({
    outbox,
    links: store.sms.links,
    catalog,
    directory: new StorePhoneDirectory({ numbers: store.sms.numbers, deviceFacts: store.deviceFacts }),
    installed: { reports: async (endpoint) => (await fetch(`${network}/installed?to=${encodeURIComponent((await store.sms.numbers.get(endpoint))!)}`)).status === 200 },
    publicBaseUrl: 'http://127.0.0.1:9',
    linkTtlMs: 10_000,
    // The wave's send rate, as depot serve wires it.
    pace: (target) => engine.smsPace(target.endpoint, target.packageSha256),
  });
  methods.unshift(smsLink);
}
const chain = new ChainDriver({ store, methods, tickMs: network ? 50 : 15, onError: (e) => process.stderr.write(`chain: ${e.message}\n`) });
const engine = new CampaignEngine({
  campaigns: store.campaigns,
  inventory: store.inventory,
  catalog,
  jobs: chainJobPort(chain, (endpoint, sha, since) => store.campaigns.chainJobSince(endpoint, sha, since)),
  tickMs: 10,
  onError: (e) => process.stderr.write(`campaigns: ${e.message}\n`),
});
await outbox?.start();
await chain.start();
let id: string;
if (mode === 'create') {
  await store.packages.add({ sha256: SHA, name: 'app', version: '1.0', size: 1, keyId: 'k', manifest: { format: 'opaque' }, addedAt: Date.now() });
  const items = Array.from({ length: Number(countText) }, (_, i) => ({ identities: { lwm2mEndpoint: `crash-${String(i).padStart(4, '0')}` }, patch: { make: i % 3 ? 'Acme' : 'Globex', model: 'M' }, options: { source: 'test', create: 'seen' as const, labels: { groups: ['all'] } } }));
  await store.inventory.upsertMany(items, Date.now());
  if (network) for (const item of items) await store.sms.numbers.put(item.identities.lwm2mEndpoint, `+4670${item.identities.lwm2mEndpoint.slice(-4).padStart(7, '0')}`, Date.now());
  const c = await engine.create({ name: 'crash', target: { kind: 'group', group: 'all' }, package: { kind: 'fixed', sha256: SHA }, waves: [{ percent: 10 }, { percent: 50 }, { percent: 100 }], concurrency: 12, seed: 1, failureLimit: 1, modelFailureLimit: 1, successThreshold: 0.5, ...(network ? { smsPerMinute: 6000 } : {}) });
  id = c.id;
} else {
  id = (await store.campaigns.listActive())[0]?.id ?? (await store.campaigns.list()).items[0]!.id;
}
process.stdout.write(`campaign ${id}\n`);
await engine.start();
for (;;) {
  const state = (await store.campaigns.get(id))!.state;
  if (state === 'completed') break;
  // The operator's part: a wave below its threshold (jobs the chain driver of this branch fails
  // when killed at the wrong point, see the test) is accepted.
  if (state === 'paused') await engine.resume(id);
  await new Promise((r) => setTimeout(r, 10));
}
process.stdout.write('completed\n');
await engine.close();
await chain.close();
await outbox?.stop();
store.close();
