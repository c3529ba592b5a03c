/** Every `depot` command answers --help (also after a subcommand) with its usage and exit code 0 (issue 17). */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { runDepot } from '../support/cli.js';


const depot = (args: string[]) => runDepot(args);

test('every command and subcommand answers --help with its usage (exit 0)', async () => {
  const commands = ['serve', 'sim', 'coap', 'ca', 'credentials', 'install', 'package', 'client', 'login', 'users', 'tokens', 'devices', 'chain', 'sms', 'inventory', 'campaign', 'bootstrap', 'lwm2m', 'packages', 'fleet', 'audit', 'api', 'certificates'];
  // One process each (a CLI start costs a second or two on a loaded machine): --help, -h, and after a subcommand.
  const runs = [...commands.map((c) => [c, '--help']), ['users', 'add', '-h'], ['tokens', 'create', 'x', '--help'], ['ca', 'issue', '--help'], ['lwm2m', 'write', 'ep', '/3/0/1', '--help'], ['packages', 'upload', '-h'], ['api', 'get', '/x', '--help']];
  for (const args of runs) {
    const r = await depot(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /usage: depot/i, args.join(' '));
  }
  const top = await depot(['--help']);
  assert.match(top.stdout, /login {5}sign in/);
});

