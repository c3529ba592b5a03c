import { parseArgs } from 'node:util';
import { openSqliteStore } from '../store/index.js';
import type { CredentialKind } from '../store/types.js';

const USAGE = `usage: depot credentials <command> [options]
  add-psk <endpoint> --identity <id> (--key <text> | --key-hex <hex>)   bind a DTLS PSK to a device
  add <endpoint> --kind x509-subject|x509-sha256|rpk-sha256 --identity <value>
  list <endpoint>                                                      show a device's credentials (keys redacted)
  remove --kind <kind> --identity <id>
options: --data-dir <dir> (default ./depot-data)
A credential identifies exactly one device: binding it to a second one is refused.`;

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
  const store = openSqliteStore({ dataDir: values['data-dir'] });
  try {
    const now = Date.now();
    switch (command) {
      case 'add-psk': {
        if (!endpoint || !values.identity) return fail('add-psk needs <endpoint> and --identity');
        if ((values.key === undefined) === (values['key-hex'] === undefined)) return fail('give one of --key or --key-hex');
        if (values['key-hex'] !== undefined && !/^([0-9a-fA-F]{2})+$/.test(values['key-hex'])) return fail('--key-hex must be an even number of hex digits');
        const key = values['key-hex'] !== undefined ? Buffer.from(values['key-hex'], 'hex') : Buffer.from(values.key!, 'utf8');
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
