/**
 * Mark for Installation: the device is flagged, and the install happens at its next contact.
 * For now "contact" is an LwM2M registration or update of the endpoint (the driver delivers it
 * as a `contact` event); at that contact the install is handed over to another method (the
 * Object 9 one), which also reports done when the device already has the version installed.
 * Until then the attempt stays running, pending since the mark, with no timeout.
 */
import type { JsonState } from '../domain.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './method.js';

export const MARK_METHOD = 'mark';

interface MarkState {
  since: number;
  /** The handover's own attempt state once it has begun. */
  handover?: JsonState;
}

const iso = (t: number): string => new Date(t).toISOString();

function markStateOf(state: JsonState, now: number): MarkState {
  if (state && typeof state === 'object' && !Array.isArray(state) && typeof state.since === 'number') {
    return 'handover' in state ? { since: state.since, handover: state.handover ?? null } : { since: state.since };
  }
  return { since: now };
}

export interface MarkMethodOptions {
  /** Runs the install at the device's next contact. */
  handover: InstallMethod;
  now?: () => number;
}

export class MarkMethod implements InstallMethod {
  readonly name = MARK_METHOD;
  private readonly now: () => number;

  constructor(private readonly options: MarkMethodOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The handover's protocol job, while the handover runs (the chain indexes `completed` pushes by it). */
  refOf(state: JsonState): string | undefined {
    const mark = markStateOf(state, 0);
    return mark.handover !== undefined ? this.options.handover.refOf?.(mark.handover) : undefined;
  }

  /** Any device can be marked. */
  preflight(_target: InstallTarget): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  begin(_context: AttemptContext): Promise<MethodStep> {
    const mark = { since: this.now() };
    return Promise.resolve({ status: 'running', state: { since: mark.since }, message: this.pending(mark) });
  }

  async advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep> {
    const mark = markStateOf(context.attempt.state, this.now());
    const { handover } = this.options;
    if (mark.handover !== undefined) return this.wrap(mark, await handover.advance(this.inner(context, mark.handover), event));
    if (event.kind !== 'contact') {
      // Nothing new: what the last contact said stands.
      return { status: 'running', state: { since: mark.since }, message: context.attempt.message ?? this.pending(mark) };
    }
    const why = await handover.preflight(context.target);
    if (why !== undefined) return this.marked(mark, `contacted at ${iso(this.now())}, but ${handover.name} cannot try: ${why}; still marked`);
    return this.wrap(mark, await handover.begin(this.inner(context, {})));
  }

  async cancel(context: AttemptContext): Promise<void> {
    const mark = markStateOf(context.attempt.state, this.now());
    if (mark.handover !== undefined) await this.options.handover.cancel(this.inner(context, mark.handover));
  }

  private pending(mark: MarkState): string {
    return `Marked for installation since ${iso(mark.since)}: installs at its next contact.`;
  }

  private marked(mark: MarkState, what: string): MethodStep {
    return { status: 'running', state: { since: mark.since }, message: `Marked for installation since ${iso(mark.since)}: ${what}.` };
  }

  /** The handover's attempt, as that method sees it: its own state inside the mark's. */
  private inner(context: AttemptContext, state: JsonState): AttemptContext {
    return { ...context, attempt: { ...context.attempt, method: this.options.handover.name, state } };
  }

  private wrap(mark: MarkState, step: MethodStep): MethodStep {
    const since = `marked since ${iso(mark.since)}, at its next contact by ${this.options.handover.name}`;
    if (step.status === 'running') return { status: 'running', state: { since: mark.since, handover: step.state }, message: `Installing (${since}): ${step.message}` };
    // A failure at contact ends the mark with the handover's reason (no second wait: the operator decides).
    return { ...step, message: `${step.status === 'succeeded' ? 'Installed' : 'Failed'} (${since}): ${step.message}` };
  }
}
