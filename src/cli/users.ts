/**
 * `depot users …`: users and their roles on a running Depot (admin). URL and token from
 * --url/--token, DEPOT_URL/DEPOT_API_TOKEN, or the config file of `depot login`.
 */
import { parseArgs } from 'node:util';
import { UsageError, callApi, cliTarget, exitCodeOf, readPassword } from './login.js';

const USAGE = `usage: depot users <list|add|set-role|disable|enable|password|remove> [args] [options]
  depot users list                              users, roles and states
  depot users add <username> --role <role>      a new user (password from --password-stdin,
                                                DEPOT_PASSWORD or a prompt; 10 characters or more)
  depot users set-role <username> <role>        admin, operator or viewer (their sessions end)
  depot users disable|enable <username>         a disabled user cannot sign in; tokens stop working
  depot users password <username>               set a new password (from stdin, DEPOT_PASSWORD or a prompt)
  depot users remove <username>                 with their tokens and sessions (not the last admin)
Options:
  --url <url>   --token <token>   (default: DEPOT_URL / DEPOT_API_TOKEN, else "depot login"'s config)
  --password-stdin   --json   -h, --help
Needs an admin token. Exit codes: 0 done, 1 refused or failed, 2 usage error, 4 not signed in or not an admin.`;

const ROLES = ['admin', 'operator', 'viewer'];

export async function runUsersCommand(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { url: { type: 'string' }, token: { type: 'string' }, role: { type: 'string' }, 'password-stdin': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    const [sub, name, extra] = positionals;
    const needName = () => {
      if (!name) throw new UsageError(`depot users ${sub} needs a username`);
      return encodeURIComponent(name);
    };
    const role = (r: string | undefined) => {
      if (!r || !ROLES.includes(r)) throw new UsageError(`the role is admin, operator or viewer${r ? `, got "${r}"` : ''}`);
      return r;
    };
    const print = (body: unknown, text: string) => process.stdout.write(values.json ? JSON.stringify(body) + '\n' : text + '\n');
    switch (sub) {
      case 'list': {
        const body = await callApi<{ users: { username: string; role: string; disabled: boolean; createdAt: string }[] }>(cliTarget(values), '/api/v1/users');
        print(body, body.users.map((u) => `${u.username.padEnd(24)} ${u.role.padEnd(9)} ${u.disabled ? 'disabled' : 'active  '} since ${u.createdAt}`).join('\n') || '(no users)');
        return 0;
      }
      case 'add': {
        const target = cliTarget(values);
        const r = role(values.role);
        const username = name ?? '';
        if (!username) throw new UsageError('depot users add needs a username');
        const password = await readPassword(values['password-stdin'], `password for the new user ${username}: `);
        const body = await callApi(target, '/api/v1/users', { json: { username, role: r, password } });
        print(body, `user ${username} added (${r})`);
        return 0;
      }
      case 'set-role': {
        const body = await callApi(cliTarget(values), `/api/v1/users/${needName()}/update`, { json: { role: role(extra) } });
        print(body, `${name} is now ${extra}`);
        return 0;
      }
      case 'disable':
      case 'enable': {
        const body = await callApi(cliTarget(values), `/api/v1/users/${needName()}/update`, { json: { disabled: sub === 'disable' } });
        print(body, `${name} ${sub}d`);
        return 0;
      }
      case 'password': {
        const target = cliTarget(values);
        const path = `/api/v1/users/${needName()}/update`;
        const password = await readPassword(values['password-stdin'], `new password for ${name}: `);
        const body = await callApi(target, path, { json: { password } });
        print(body, `password of ${name} changed (their console sessions ended)`);
        return 0;
      }
      case 'remove': {
        const body = await callApi(cliTarget(values), `/api/v1/users/${needName()}/remove`, { method: 'POST' });
        print(body, `${name} removed`);
        return 0;
      }
      default:
        throw new UsageError(sub ? `unknown subcommand "${sub}"` : 'a subcommand is required');
    }
  } catch (error) {
    process.stderr.write(`depot users: ${(error as Error).message}${exitCodeOf(error) === 2 ? '\nRun "depot users --help" for usage.' : ''}\n`);
    return exitCodeOf(error);
  }
}
