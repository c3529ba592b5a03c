/**
 * How long the fuzz tests run. In CI: a fixed seed and a small count, so a run takes seconds and
 * a failure reproduces. For a long run: DEPOT_FUZZ_RUNS=100000 (scripts/fuzz.sh), with a random
 * seed unless DEPOT_FUZZ_SEED fixes one; fast-check prints the seed and the shrunk input of a failure.
 */
import type { Parameters } from 'fast-check';

const CI_SEED = 0x5eed_1207;

function envInteger(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${text}"`);
  return value;
}

/** Whether this is a long run (DEPOT_FUZZ_RUNS set). */
export const longRun = envInteger('DEPOT_FUZZ_RUNS') !== undefined;

/** fast-check parameters: `ciRuns` runs with the CI seed, or DEPOT_FUZZ_RUNS runs × `weight` (a slow property runs fewer). */
export function fuzzParameters<T>(ciRuns: number, weight = 1): Parameters<T> {
  const runs = envInteger('DEPOT_FUZZ_RUNS');
  const seed = envInteger('DEPOT_FUZZ_SEED') ?? (runs === undefined ? CI_SEED : undefined);
  const numRuns = runs === undefined ? ciRuns : Math.max(1, Math.round(runs * weight));
  return seed === undefined ? { numRuns } : { numRuns, seed };
}
