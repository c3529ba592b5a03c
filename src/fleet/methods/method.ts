/**
 * The install-method seam: one way of getting a package onto a device (LwM2M Object 9, Mark
 * for Installation, OMA DM SCOMO, SMS link; Send certificate has the same shape but runs as the
 * chain's trust step, see ../chain-driver.ts). The chain driver
 * (../chain-driver.ts) runs a job's methods in order until one succeeds; a method knows its
 * protocol, the driver knows the order, the attempts, the store, timeouts and retries.
 *
 * Contract (docs/install.md, "Writing an install method"):
 * - preflight answers quickly from what Depot knows (no device traffic); a reason skips the method.
 * - begin starts the protocol work and answers at once: `running` with the attempt's protocol
 *   state (JSON), or an end. The driver stores the attempt as running before begin, and the state
 *   after it, so after a kill advance() is called with the last stored state and a `resumed` event:
 *   the method must be idempotent there (find its own protocol job again, never start a second one).
 * - advance is called on events: a device contact on any protocol, a `completed` push from the
 *   method itself, the driver's safety-net timer, `resumed` once after a restart.
 * - cancel stops what the method started (best effort); the driver records the cancellation.
 * - Steps of one job are serialised: a method never sees two calls of the same attempt at once.
 */
import type { ChainAttempt, ChainJob, JsonState } from '../domain.js';

/** What a method is asked to install, and where. */
export interface InstallTarget {
  readonly jobId: string;
  readonly endpoint: string;
  readonly packageSha256: string;
  readonly activate: boolean;
}

/** The protocols a device can contact Depot over. */
export type ContactProtocol = 'lwm2m' | 'omadm' | 'sms';

/**
 * What moves an attempt on:
 * - `contact`: the device reached Depot over `protocol` (an LwM2M registration or update, an OMA
 *   DM session, an SMS from it): anything waiting for the device may go on;
 * - `completed`: a method's own protocol job ended (pushed through MethodHost.completed, e.g. the
 *   Object 9 job reached a final state); `ref` is the reference the method gave (see refOf);
 * - `timer`: the driver's periodic safety-net tick (timeouts, and polling for methods that need it);
 * - `resumed`: once, after a server restart found the attempt running.
 */
export type MethodEvent =
  | { readonly kind: 'contact'; readonly protocol: ContactProtocol }
  | { readonly kind: 'completed'; readonly ref: string }
  | { readonly kind: 'timer' }
  | { readonly kind: 'resumed' };

/**
 * Where an attempt stands after begin or advance. `running` carries the attempt's protocol
 * state (stored before the next event, so a restart hands it back); `failed` lets the chain
 * fall through to the next method (or retry this one, see RetryPolicy), with the protocol's own
 * result when there is one. `bytes`: package bytes delivered to the device so far, when known.
 */
export type MethodStep =
  | { readonly status: 'running'; readonly state: JsonState; readonly message: string; readonly bytes?: number }
  | { readonly status: 'succeeded'; readonly message: string; readonly result?: string; readonly bytes?: number }
  | {
      readonly status: 'failed';
      readonly message: string;
      readonly result?: string;
      readonly bytes?: number;
      /** Worth another try of this method (e.g. a transient network failure), under the method's retryPolicy. */
      readonly retryable?: boolean;
      /**
       * The device lacks (or is not known to hold) Depot's root certificate and that is why the
       * method cannot work (its TLS connection is refused): the driver runs its trust step (Send
       * certificate, ChainDriverOptions.trust) and then tries this method once more.
       */
      readonly needsTrust?: boolean;
    };

/** One attempt of one method, as the method sees it. */
export interface AttemptContext {
  readonly target: InstallTarget;
  readonly job: ChainJob;
  /** The state the last step returned (the initial `{}` at begin). */
  readonly attempt: ChainAttempt;
}

/** How the chain retries a method whose failed step says `retryable`. */
export interface RetryPolicy {
  /** Tries after the first, at most (bounded). */
  readonly maxRetries: number;
  /** Delay before retry n (1, 2, …), ms. */
  backoffMs(retry: number): number;
}

/** What the driver hands a method at construction: the way to wake the chain. */
export interface MethodHost {
  /** The method's protocol job `ref` ended: the attempt holding it is advanced with a `completed` event. */
  completed(ref: string): void;
}

export interface InstallMethod {
  /** Stable: stored in jobs and attempts. */
  readonly name: string;
  /** Undefined when the method can try this device now; else why not (the attempt is skipped with it). */
  preflight(target: InstallTarget): Promise<string | undefined>;
  begin(context: AttemptContext): Promise<MethodStep>;
  advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep>;
  /** The operator cancelled the job (or the step timed out): stop what the method started (best effort). */
  cancel(context: AttemptContext): Promise<void>;

  // ---- optional additions (a method without them behaves as before)

  /**
   * Longest time an attempt may go without progress (no change of its stored state or message),
   * ms; past it the driver cancels it and fails it with a timeout reason. Undefined: no limit
   * (e.g. Mark for Installation waits for the device as long as it takes).
   */
  readonly stepTimeoutMs?: number;
  /** Retries of `retryable` failures; without it a failure always falls through. */
  readonly retryPolicy?: RetryPolicy;
  /** Called once by the driver: keep `host` to push `completed` events. */
  connect?(host: MethodHost): void;
  /** The reference of the protocol job in an attempt's state (what `completed` names), if any. */
  refOf?(state: JsonState): string | undefined;
  /**
   * True when advance() finds what begin() started without the state begin answered (the
   * protocol's own job is durable and can be looked up, as Object 9's is): the driver then
   * stores the state, and a success, without an fsync (a crash of the process keeps them; after
   * a power cut advance looks the job up again and answers the same). The attempt itself is
   * always durable before begin, and a failure always durable.
   */
  readonly stateRecoverable?: boolean;
}
