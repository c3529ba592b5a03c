/**
 * `depot serve` with SMS over the lab Kannel (bearerbox + smsbox + fakesmsc, config/kannel/lab.conf.in)
 * and Depot's CA, for interop tests: the SMS secrets are made in the store first so Kannel's
 * configuration and Depot agree; handsets read what fakesmsc delivers through `network`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSmsSecrets } from '../../src/app/sms.js';
import { startDepotServer, type DepotServerConfig, type RunningDepotServer } from '../../src/app/server.js';
import { CertificateAuthority } from '../../src/pki/ca.js';
import { FakeSmscNetwork } from '../../src/sim/sms/handsets.js';
import { KannelLab, freePort } from '../../src/sim/sms/kannel-lab.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

export interface KannelDepot {
  dir: string;
  lab: KannelLab;
  network: FakeSmscNetwork;
  depot: RunningDepotServer;
  /** The API's origin, http://127.0.0.1:<port>. */
  base: string;
  caPem: string;
  close(): Promise<void>;
}

/** `config`: what the test adds to the common configuration (OMA DM endpoint, chain timers, …). */
export async function startKannelDepot(prefix: string, apiToken: string, config: Partial<DepotServerConfig> = {}): Promise<KannelDepot> {
  const dir = mkdtempSync(join(tmpdir(), `depot-${prefix}-`));
  const ca = await CertificateAuthority.init(join(dir, 'data', 'ca'));
  const httpPort = await freePort();
  const base = `http://127.0.0.1:${httpPort}`;
  const store = openSqliteStore({ dataDir: join(dir, 'data') });
  const secrets = await ensureSmsSecrets(store);
  store.close();
  const lab = await KannelLab.start({ callbackBase: base, callbackSecret: secrets.callbackSecret, sendsmsPassword: secrets.sendsmsPassword, dir: join(dir, 'kannel') });
  const network = await FakeSmscNetwork.connect({ port: lab.ports.fakeSmsc, online: () => lab.smscOnline() });
  const depot = await startDepotServer({
    host: '127.0.0.1',
    coapPort: 0,
    coapsPort: null,
    httpPort,
    dataDir: join(dir, 'data'),
    allowUnsecured: true,
    apiToken,
    sms: { kannel: { sendsmsUrl: lab.sendsmsUrl }, callbackBase: base, from: '4242', backoff: { baseMs: 100, maxMs: 400 }, ratePerSecond: 100 },
    ...config,
  });
  return {
    dir,
    lab,
    network,
    depot,
    base,
    caPem: ca.exportRoot('pem'),
    close: async () => {
      await depot.close();
      await network.close();
      await lab.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
