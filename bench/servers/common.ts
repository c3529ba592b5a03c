/** Shared by the benchmark's server processes. */

/** The body every compared server answers GET /hello with (12 bytes). */
export const BENCH_PAYLOAD = Uint8Array.from(Buffer.from('Hello, world'));

/**
 * Announces readiness on stdout ("ready PORT") and serves until the driver closes our stdin
 * (or kills us): a server never outlives the benchmark that started it.
 */
export function serveUntilStdinCloses(port: number, close: () => Promise<void>): void {
  process.stdout.write(`ready ${port}\n`);
  const stop = (): void => {
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
}
