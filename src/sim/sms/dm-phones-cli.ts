/**
 * `depot sim --protocol omadm --smsc <host:port>`: N never-bootstrapped OMA DM phones that are
 * reached by SMS. One Kannel fakesmsc process (kannel-extras) connects to bearerbox's fake SMSC
 * port (the lab set-up of docs/sms.md) and stands for the radio network; each phone has a number
 * and an IMEI (consecutive from the given starts) and a user who enters a PIN (the list is given
 * to the phones in turn; "none": the user dismisses the prompt). The phones wait for their
 * Client Provisioning push (bootstrap it with POST /api/v1/omadm/bootstrap and the numbers and
 * IMEIs printed at start), open their first DM session when the PIN verifies, and open a
 * session on each valid DM notification (start-dm). One line per thing a phone does.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { SimulatedHandset, type HandsetEvent } from '../omadm/provisioning-client.js';
import { bridgeCertificateLinks, bridgeDmPhone, type CertificateLinkBridge, type DmPhoneBridge } from './dm-phone-bridge.js';
import { PhoneTrust, trustingTransport } from '../omadm/profiles.js';
import { FakeSmscNetwork } from './handsets.js';
import { FAKESMSC } from './kannel-lab.js';

export const SMS_PHONES_USAGE = `usage: depot sim --protocol omadm --smsc <host:port> --count N [options]   (phones reached by SMS)
  --smsc <host:port>       bearerbox's fake SMSC port (the lab Kannel: depot sms kannel-config)
  --count <n>              number of simulated phones (at most 1000)
  --msisdn-start <+number> the first phone's number; the others follow (default +4792000001)
  --imei-start <15 digits> the first phone's IMEI; the others follow (default 352000000000001)
  --pins <list>            what the users enter, given to the phones in turn (comma-separated
                           PINs or "none"; default 12345)
  --ca <file.pem>          root the phones trust for the DM server's certificate (depot ca export);
                           without it they trust no root until Send certificate's SMS link gives them one
  --pushes <n>             exit once every phone has handled n pushes (default: run until interrupted)
  --fakesmsc <path>        Kannel's fakesmsc (default ${FAKESMSC})`;

export interface SimIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: SimIo = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };

function describe(event: HandsetEvent): string {
  switch (event.kind) {
    case 'installed':
      return `installed the DM account of ${event.serverId}${event.session ? `; first session ${event.session.ended}` : ''}`;
    case 'session':
      return `DM session ${event.session.ended}`;
    default:
      return `${event.kind}: ${event.reason}`;
  }
}

/** Runs the phones; resolves with the exit code when --pushes is reached or `signal` aborts (SIGINT/SIGTERM from the CLI). */
export async function runSmsDmPhonesCommand(argv: string[], io: SimIo = processIo, signal?: AbortSignal): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        smsc: { type: 'string' },
        count: { type: 'string' },
        'msisdn-start': { type: 'string', default: '+4792000001' },
        'imei-start': { type: 'string', default: '352000000000001' },
        pins: { type: 'string', default: '12345' },
        ca: { type: 'string' },
        pushes: { type: 'string' },
        fakesmsc: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout(`${SMS_PHONES_USAGE}\n`);
      return 0;
    }
    const smsc = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(values.smsc ?? '');
    if (!smsc || Number(smsc[2]) < 1 || Number(smsc[2]) > 65535) throw new Error('--smsc is host:port of bearerbox\'s fake SMSC');
    if (!/^[1-9]\d{0,3}$/.test(values.count ?? '') || Number(values.count) > 1000) throw new Error('--count takes a number from 1 to 1000');
    const count = Number(values.count);
    const msisdn = /^\+([1-9]\d{7,14})$/.exec(values['msisdn-start']);
    if (!msisdn) throw new Error('--msisdn-start is an international number (+ and 8 to 15 digits)');
    if (!/^\d{15}$/.test(values['imei-start'])) throw new Error('--imei-start is 15 digits');
    const pins = values.pins.split(',').map((p) => p.trim());
    for (const p of pins) if (p !== 'none' && !/^\d{4,16}$/.test(p)) throw new Error(`--pins: "${p.slice(0, 20)}" is neither 4 to 16 digits nor "none"`);
    let pushes: number | undefined;
    if (values.pushes !== undefined) {
      if (!/^[1-9]\d{0,3}$/.test(values.pushes)) throw new Error('--pushes takes a positive number');
      pushes = Number(values.pushes);
    }
    const numbers = Array.from({ length: count }, (_, i) => `+${(BigInt(msisdn[1]!) + BigInt(i)).toString()}`);
    if (numbers.some((n) => n.length > 16)) throw new Error('--msisdn-start: the numbers run past 15 digits');
    const imeis = Array.from({ length: count }, (_, i) => (BigInt(values['imei-start']) + BigInt(i)).toString().padStart(15, '0'));
    if (imeis.some((n) => n.length > 15)) throw new Error('--imei-start: the IMEIs run past 15 digits');
    options = {
      host: smsc[1]!.replace(/^\[|\]$/g, ''),
      port: Number(smsc[2]),
      numbers,
      imeis,
      pins,
      pushes,
      ca: values.ca === undefined ? undefined : await readFile(values.ca, 'utf8'),
      fakesmsc: values.fakesmsc,
    };
  } catch (error) {
    io.stderr(`depot sim: ${(error as Error).message}\n${SMS_PHONES_USAGE}\n`);
    return 2;
  }
  let network: FakeSmscNetwork;
  try {
    network = await FakeSmscNetwork.connect({ host: options.host, port: options.port, ...(options.fakesmsc === undefined ? {} : { fakesmsc: options.fakesmsc }) });
  } catch (error) {
    io.stderr(`depot sim: cannot connect fakesmsc to ${options.host}:${options.port}: ${(error as Error).message.split('\n')[0]}\n`);
    return 1;
  }
  const bridges: DmPhoneBridge[] = [];
  const certificateBridges: CertificateLinkBridge[] = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const check = (): void => {
    if (options.pushes !== undefined && bridges.length === options.numbers.length && bridges.every((b) => b.events.length >= options.pushes!)) done();
  };
  options.numbers.forEach((number, i) => {
    const pin = options.pins[i % options.pins.length]!;
    // The phone's trust store: the --ca root, and any root a Send certificate link installs (docs/trust.md).
    const trust = new PhoneTrust(options.ca === undefined ? [] : [options.ca]);
    const phone = new SimulatedHandset({ msisdn: number, imei: options.imeis[i]!, userPin: pin === 'none' ? null : pin, index: i + 1, ...(options.ca === undefined ? {} : { ca: options.ca }) }, trustingTransport(trust));
    const bridge = bridgeDmPhone(network.handset(number), phone);
    const certificates = bridgeCertificateLinks(network.handset(number), trust, (e) =>
      io.stdout(`depot sim: ${number} ${e.kind === 'certificate-installed' ? `installed the root certificate ${e.fingerprint}` : `refused a certificate: ${e.reason}`}\n`),
    );
    certificateBridges.push(certificates);
    bridges.push(bridge);
    let reported = 0;
    // Each event once, as it happens (the bridge keeps them in order).
    network.handset(number).onMessage(() => void bridge.idle().then(() => {
      for (; reported < bridge.events.length; reported++) io.stdout(`depot sim: ${number} ${describe(bridge.events[reported]!)}\n`);
      check();
    }));
    // A user's PIN is not printed: only whether one is entered.
    io.stdout(`depot sim: phone ${number} IMEI:${options.imeis[i]} (user ${pin === 'none' ? 'enters no PIN' : 'enters a PIN'})\n`);
  });
  io.stdout(`depot sim: ${bridges.length} phone(s) listening on the fake SMSC ${options.host}:${options.port}\n`);
  const stop = (): void => done();
  signal?.addEventListener('abort', stop, { once: true });
  if (signal === undefined) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  await finished;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  await Promise.all(bridges.map((b) => b.idle()));
  for (const b of bridges) b.stop();
  for (const b of certificateBridges) b.stop();
  await network.close();
  const counts = new Map<string, number>();
  for (const b of bridges) for (const e of b.events) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
  io.stdout(`depot sim: ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ') || 'no pushes'}\n`);
  return 0;
}
