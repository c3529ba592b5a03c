/**
 * The install a marked device gets at its next contact, whatever protocol it comes back on: the
 * first of several methods (Object 9 for an LwM2M device, SCOMO for an OMA DM phone) that can
 * try it then. Mark for Installation hands over to this; the chosen method's name is kept in the
 * attempt state so that every later step (and a restart) goes to the same method. The methods
 * are the chain's own instances: the driver connects them (completion pushes) as chain methods.
 */
import type { JsonState } from '../domain.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodStep } from './method.js';

interface HandoverState {
  via: string;
  state: JsonState;
}

function handoverStateOf(state: JsonState): HandoverState | undefined {
  if (state && typeof state === 'object' && !Array.isArray(state) && typeof state.via === 'string') return { via: state.via, state: state.state ?? null };
  return undefined;
}

export class FirstAvailableMethod implements InstallMethod {
  readonly name: string;

  constructor(private readonly methods: readonly InstallMethod[]) {
    if (methods.length === 0) throw new Error('FirstAvailableMethod needs at least one method');
    this.name = methods.map((m) => m.name).join(' or ');
  }

  refOf(state: JsonState): string | undefined {
    const chosen = handoverStateOf(state);
    return chosen ? this.method(chosen.via)?.refOf?.(chosen.state) : undefined;
  }

  /** Undefined when one of the methods can try; else every method's reason. */
  async preflight(target: InstallTarget): Promise<string | undefined> {
    const reasons: string[] = [];
    for (const m of this.methods) {
      const why = await m.preflight(target);
      if (why === undefined) return undefined;
      reasons.push(`${m.name}: ${why}`);
    }
    return reasons.join('; ');
  }

  async begin(context: AttemptContext): Promise<MethodStep> {
    for (const m of this.methods) {
      if ((await m.preflight(context.target)) !== undefined) continue;
      return this.wrap(m.name, await m.begin(this.inner(context, {})));
    }
    return { status: 'failed', message: `no method can install now (${await this.preflight(context.target)})` };
  }

  async advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep> {
    const chosen = handoverStateOf(context.attempt.state);
    const m = chosen ? this.method(chosen.via) : undefined;
    // Stopped between choosing and storing the choice: choose again.
    if (!chosen || !m) return this.begin(context);
    return this.wrap(m.name, await m.advance(this.inner(context, chosen.state), event));
  }

  async cancel(context: AttemptContext): Promise<void> {
    const chosen = handoverStateOf(context.attempt.state);
    const m = chosen ? this.method(chosen.via) : undefined;
    if (chosen && m) await m.cancel(this.inner(context, chosen.state));
  }

  private method(name: string): InstallMethod | undefined {
    return this.methods.find((m) => m.name === name);
  }

  private inner(context: AttemptContext, state: JsonState): AttemptContext {
    return { ...context, attempt: { ...context.attempt, state } };
  }

  private wrap(via: string, step: MethodStep): MethodStep {
    return step.status === 'running' ? { ...step, state: { via, state: step.state } } : step;
  }
}
