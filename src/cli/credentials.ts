import { parseArgs } from 'node:util';
import { openSqliteStore } from '../store/index.js';
import type { CredentialKind } from '../store/types.js';

const USAGE = `usage: depot credentials <command> [options]
  add-psk <endpoint> --identity <id> (--key <text> | --key-hex <hex>)   bind a DTLS PSK to a device
  add <endpoint> --kind x509-subject|x509-sha256|rpk-sha256 --identity <value>
  list <endpoint>                                                      show a device's credentials (keys redacted)
  remove --kind <kind> --identity <id>
  add-bootstrap-psk (<endpoint> | --batch) --identity <id> (--key <text> | --key-hex <hex>)
                     a factory PSK for bootstrap over DTLS: for one endpoint name, or for a batch
                     of devices (each name is then bound to it on first use)
  add-bootstrap-cert (<endpoint> | --batch) --identity <certificate subject>
  list-bootstrap                                                       bootstrap credentials (keys redacted)
  remove-bootstrap --kind psk|x509-subject --identity <id>
options: --data-dir <dir> (default ./depot-data)
A credential identifies exactly one device: binding it to a second one is refused. Keys are
sealed at rest with DEPOT_SECRET_KEY, else <data-dir>/secrets.key (docs/store.md).`;

const KINDS: readonly CredentialKind[] = ['psk', 'x509-subject', 'x509-sha256', 'rpk-sha256'];

/** `depot credentials …`: manages the credential store (works while the server runs: SQLite WAL). */
export async function runCredentialsCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string', default: './depot-data' },
        identity: { type: 'string' },
        key: { type: 'string' },
        'key-hex': { type: 'string' },
        kind: { type: 'string' },
        batch: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`depot credentials: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, endpoint] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE + '\n');
    return values.help ? 0 : 2;
  }
  const fail = (message: string, code = 2): number => {
    process.stderr.write(`depot credentials: ${message}\n`);
    return code;
  };
  const keyOf = (): Buffer | string => {
    if ((values.key === undefined) === (values['key-hex'] === undefined)) return 'give one of --key or --key-hex';
    if (values['key-hex'] !== undefined && !/^([0-9a-fA-F]{2})+$/.test(values['key-hex'])) return '--key-hex must be an even number of hex digits';
    return values['key-hex'] !== undefined ? Buffer.from(values['key-hex'], 'hex') : Buffer.from(values.key!, 'utf8');
  };
  let store;
  try {
    store = openSqliteStore({ dataDir: values['data-dir'] });
  } catch (error) {
    return fail((error as Error).message, 1);
  }
  try {
    const now = Date.now();
    switch (command) {
      case 'add-psk': {
        if (!endpoint || !values.identity) return fail('add-psk needs <endpoint> and --identity');
        const key = keyOf();
        if (typeof key === 'string') return fail(key);
        await store.credentials.bind(endpoint, { kind: 'psk', identity: values.identity, key }, now);
        process.stdout.write(`PSK identity "${values.identity}" bound to ${endpoint}\n`);
        return 0;
      }
      case 'add': {
        const kind = values.kind as CredentialKind | undefined;
        if (!endpoint || !values.identity || !kind || kind === 'psk' || !KINDS.includes(kind)) return fail('add needs <endpoint>, --kind x509-subject|x509-sha256|rpk-sha256 and --identity');
        await store.credentials.bind(endpoint, { kind, identity: values.identity }, now);
        process.stdout.write(`${kind} "${values.identity}" bound to ${endpoint}\n`);
        return 0;
      }
      case 'list': {
        if (!endpoint) return fail('list needs <endpoint>');
        for (const c of await store.credentials.listByEndpoint(endpoint)) process.stdout.write(`${c.kind}\t${c.identity}\n`);
        return 0;
      }
      case 'remove': {
        const kind = values.kind as CredentialKind | undefined;
        if (!kind || !KINDS.includes(kind) || !values.identity) return fail('remove needs --kind and --identity');
        const removed = await store.credentials.remove(kind, values.identity);
        if (!removed) return fail(`no ${kind} credential "${values.identity}"`, 1);
        process.stdout.write('removed\n');
        return 0;
      }
      case 'add-bootstrap-psk':
      case 'add-bootstrap-cert': {
        if (!values.identity || (endpoint === undefined) === !values.batch) return fail(`${command} needs <endpoint> or --batch (not both), and --identity`);
        const scope = endpoint === undefined ? 'a batch (each endpoint name is bound on first use)' : `endpoint ${endpoint} only`;
        if (command === 'add-bootstrap-psk') {
          const key = keyOf();
          if (typeof key === 'string') return fail(key);
          await store.bootstrapCredentials.add({ kind: 'psk', identity: values.identity, key, endpoint: endpoint ?? null }, now);
          key.fill(0);
          process.stdout.write(`bootstrap PSK identity "${values.identity}" added for ${scope}\n`);
        } else {
          await store.bootstrapCredentials.add({ kind: 'x509-subject', identity: values.identity, endpoint: endpoint ?? null }, now);
          process.stdout.write(`bootstrap certificate subject "${values.identity}" added for ${scope}\n`);
        }
        return 0;
      }
      case 'list-bootstrap': {
        let after: string | undefined;
        do {
          const page = await store.bootstrapCredentials.list(after === undefined ? {} : { after });
          for (const c of page.items) process.stdout.write(`${c.kind}\t${c.identity}\t${c.scope === 'batch' ? '(batch)' : c.endpoint}\n`);
          after = page.next ?? undefined;
        } while (after !== undefined);
        return 0;
      }
      case 'remove-bootstrap': {
        const kind = values.kind;
        if ((kind !== 'psk' && kind !== 'x509-subject') || !values.identity) return fail('remove-bootstrap needs --kind psk|x509-subject and --identity');
        if (!(await store.bootstrapCredentials.remove(kind, values.identity))) return fail(`no bootstrap ${kind} credential "${values.identity}"`, 1);
        process.stdout.write('removed\n');
        return 0;
      }
      default:
        return fail(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (error) {
    // Store errors name the problem (e.g. CONFLICT: bound to another endpoint), never the key.
    return fail((error as Error).message, 1);
  } finally {
    store.close();
  }
}
