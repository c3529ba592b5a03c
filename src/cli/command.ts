/** What every `depot <command>` shares: usage errors (exit 2) and failures (exit 1) told on stderr. */

/** How the commands that call a running server find it: its API, a token, or the data directory's token file. */
export const SERVER_OPTIONS = {
  api: { type: 'string', default: 'http://127.0.0.1:8080' },
  token: { type: 'string' },
  'data-dir': { type: 'string', default: './depot-data' },
} as const;

/** The command line was wrong (exit code 2, with a pointer to --help). */
export class UsageError extends Error {}

/** Runs a command's body; a usage error (ours or parseArgs') exits 2, any other error 1, each said once. */
export async function runCommand(name: string, io: { stderr: (text: string) => void }, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(`depot ${name}: ${(err as Error).message}\nRun "depot ${name} --help" for usage.\n`);
      return 2;
    }
    io.stderr(`depot ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
