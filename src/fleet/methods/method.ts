/**
 * The install-method seam: one way of getting a package onto a device (LwM2M Object 9, Mark
 * for Installation; later OMA DM SCOMO, SMS link, Send certificate). The chain driver
 * (../chain-driver.ts) runs a job's methods in order until one succeeds; a method knows its
 * protocol, the driver knows the order, the attempts and the store.
 */
import type { ChainAttempt, ChainJob, JsonState } from '../domain.js';

/** What a method is asked to install, and where. */
export interface InstallTarget {
  readonly jobId: string;
  readonly endpoint: string;
  readonly packageSha256: string;
  readonly activate: boolean;
}

/**
 * What moves an attempt on: `contact` when the device reached Depot (today an LwM2M
 * registration or update), `timer` on the driver's periodic tick, `resumed` once after a
 * server restart found the attempt running.
 */
export type MethodEvent = { readonly kind: 'contact'; readonly protocol: 'lwm2m' } | { readonly kind: 'timer' } | { readonly kind: 'resumed' };

/**
 * Where an attempt stands after begin or advance. `running` carries the attempt's protocol
 * state (stored before the next event, so a restart hands it back); `failed` lets the chain
 * fall through to the next method, with the protocol's own result when there is one.
 */
export type MethodStep =
  | { readonly status: 'running'; readonly state: JsonState; readonly message: string }
  | { readonly status: 'succeeded'; readonly message: string; readonly result?: string }
  | { readonly status: 'failed'; readonly message: string; readonly result?: string };

/** One attempt of one method, as the method sees it. */
export interface AttemptContext {
  readonly target: InstallTarget;
  readonly job: ChainJob;
  /** The state the last step returned (the initial `{}` at begin). */
  readonly attempt: ChainAttempt;
}

export interface InstallMethod {
  /** Stable: stored in jobs and attempts. */
  readonly name: string;
  /** Undefined when the method can try this device now; else why not (the attempt is skipped with it). */
  preflight(target: InstallTarget): Promise<string | undefined>;
  begin(context: AttemptContext): Promise<MethodStep>;
  advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep>;
  /** The operator cancelled the job: stop what the method started (best effort). */
  cancel(context: AttemptContext): Promise<void>;
}
