#!/usr/bin/env node
import { runCaCommand } from './ca.js';
import { runClientCommand } from './client.js';
import { runCoapCommand } from './coap.js';
import { runCredentialsCommand } from './credentials.js';
import { runDevicesCommand } from './devices.js';
import { runInstallCommand } from './install.js';
import { runChainCommand } from './chain.js';
import { runPackageCommand } from './package.js';
import { runServeCommand } from './serve.js';
import { runSimCommand } from './sim.js';
import { runSmsCommand } from './sms.js';
import { runInventoryCommand } from './inventory.js';
import { runCampaignCommand } from './campaign.js';
import { runLoginCommand } from './login.js';
import { runUsersCommand } from './users.js';
import { runTokensCommand } from './tokens.js';
import { runApiCommand, runOperatorCommand } from './operator.js';

const USAGE = `usage: depot <command> [options]
commands:
  serve     run the Depot server
  sim       run simulated LwM2M devices against a server
  coap      a CoAP debugging client (get, put, post, delete, observe, ping)
  ca        Depot's certificate authority (init, issue, export)
  credentials  bind device credentials (DTLS PSK, certificate, raw public key) to endpoints
  install   install a package on a device through a running server (Object 9), with progress
  package   make signing keys, build and inspect signed Depot packages
  client    Depot's LwM2M device client for a real machine (registers, installs software)
  devices   OMA DM devices by SMS: bootstrap (PIN-secured), start-dm (notification), list, pin
  chain     install chain jobs (Object 9 → … → Mark) and the learned method table per model
  sms       Kannel configuration for Depot (kannel-config) and the SMS outbox
  inventory devices across protocols: list, show, history, tags, groups, CSV import, explain selection
  campaign  staged installs across the fleet: create, show, watch, pause, resume, cancel, approve, retry
  login     sign in to a running Depot; saves its URL and an API token (config file, 0600)
  users     users and roles on a running Depot (admin)
  tokens    API tokens on a running Depot (admin)
  bootstrap the LwM2M bootstrap queue and bootstrap credentials on a running Depot
  lwm2m     LwM2M devices on a running Depot: read, write, execute, discover, operations, Object 9
  packages  the package catalog on a running Depot: upload (progress bar), list, targets, who gets it
  fleet     fleet summary, device table, roles, whoami, result codes
  audit     the audit log (admin)
  certificates  send Depot's root certificate to devices and follow each push
  api       any API route by method and path (depot api routes lists them)
Run "depot <command> --help" for a command's options.`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  serve: runServeCommand,
  sim: runSimCommand,
  coap: runCoapCommand,
  ca: (argv) => runCaCommand(argv),
  credentials: runCredentialsCommand,
  install: runInstallCommand,
  package: runPackageCommand,
  client: runClientCommand,
  devices: runDevicesCommand,
  chain: runChainCommand,
  sms: (argv) => runSmsCommand(argv),
  inventory: runInventoryCommand,
  campaign: runCampaignCommand,
  login: runLoginCommand,
  users: runUsersCommand,
  tokens: runTokensCommand,
  bootstrap: (argv) => runOperatorCommand('bootstrap', argv),
  lwm2m: (argv) => runOperatorCommand('lwm2m', argv),
  packages: (argv) => runOperatorCommand('packages', argv),
  fleet: (argv) => runOperatorCommand('fleet', argv),
  audit: (argv) => runOperatorCommand('audit', argv),
  certificates: (argv) => runOperatorCommand('certificates', argv),
  api: runApiCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE + '\n');
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`depot: unknown command "${name}"\n${USAGE}\n`);
    return 2;
  }
  // `depot <command> [sub] … --help`: the command's usage, before any parsing can complain.
  const end = rest.indexOf('--');
  const options = end < 0 ? rest : rest.slice(0, end);
  if (options.includes('--help') || options.includes('-h')) return command(['--help']);
  return command(rest);
}

// `depot coap get … | head`: a reader that goes away is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`depot: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
