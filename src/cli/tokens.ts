/**
 * `depot tokens …`: API tokens on a running Depot (admin): list, create (shown once), revoke.
 */
import { parseArgs } from 'node:util';
import { UsageError, callApi, cliTarget, exitCodeOf } from './login.js';

const USAGE = `usage: depot tokens <list|create|revoke> [args] [options]
  depot tokens list                                 tokens (never their secrets): role, owner, expiry, state
  depot tokens create <name> --role <role> [--days <n>] [--user <username>]
                                                    a new token, printed once (for CI jobs, Prometheus:
                                                    a viewer token reads /metrics)
  depot tokens revoke <id>                          refused from now on
Options:
  --url <url>   --token <token>   (default: DEPOT_URL / DEPOT_API_TOKEN, else "depot login"'s config)
  --json   -h, --help
Needs an admin token. Exit codes: 0 done, 1 refused or failed, 2 usage error, 4 not signed in or not an admin.`;

interface TokenJson {
  id: string;
  name: string;
  role: string;
  username: string | null;
  expiresAt: string;
  lastUsedAt: string | null;
  state: string;
  token?: string;
}

export async function runTokensCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { url: { type: 'string' }, token: { type: 'string' }, role: { type: 'string' }, days: { type: 'string', default: '90' }, user: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    const [sub, arg] = positionals;
    const print = (body: unknown, text: string) => process.stdout.write(values.json ? JSON.stringify(body) + '\n' : text + '\n');
    switch (sub) {
      case 'list': {
        const body = await callApi<{ tokens: TokenJson[] }>(cliTarget(values), '/api/v1/tokens');
        print(body, body.tokens.map((t) => `${t.id}  ${t.name.padEnd(20)} ${t.role.padEnd(9)} ${(t.username ?? '-').padEnd(16)} ${t.state.padEnd(8)} expires ${t.expiresAt}`).join('\n') || '(no tokens)');
        return 0;
      }
      case 'create': {
        if (!arg) throw new UsageError('depot tokens create needs a name');
        if (!values.role || !['admin', 'operator', 'viewer'].includes(values.role)) throw new UsageError('--role is admin, operator or viewer');
        if (!/^[1-9]\d{0,3}$/.test(values.days) || Number(values.days) > 3650) throw new UsageError('--days takes 1 to 3650');
        const body = await callApi<TokenJson>(cliTarget(values), '/api/v1/tokens', { json: { name: arg, role: values.role, days: Number(values.days), ...(values.user ? { username: values.user } : {}) } });
        print(body, `${body.token!}\n(token "${body.name}", ${body.role}, id ${body.id}, expires ${body.expiresAt}: shown this once)`);
        return 0;
      }
      case 'revoke': {
        if (!arg) throw new UsageError('depot tokens revoke needs a token id (see depot tokens list)');
        const body = await callApi(cliTarget(values), `/api/v1/tokens/${encodeURIComponent(arg)}/revoke`, { method: 'POST' });
        print(body, `token ${arg} revoked`);
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is required');
    }
  } catch (error) {
    process.stderr.write(`depot tokens: ${(error as Error).message}${exitCodeOf(error) === 2 ? '\nRun "depot tokens --help" for usage.' : ''}\n`);
    return exitCodeOf(error);
  }
}
