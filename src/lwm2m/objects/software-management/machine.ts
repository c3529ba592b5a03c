/**
 * The engine that interprets the transition tables. Pure: a state and an event in, a new
 * state, the resource changes (for Observe) and the effects to carry out, out.
 *
 * An event with no applicable row has NO effect: the state (including Update Result and
 * Activation State) is returned unchanged and the outcome says `accepted: false` with the
 * CoAP code the LwM2M layer should answer (4.05 Method Not Allowed, see docs/object9.md).
 */
import type { ActivationState, MachineEvent, MachineState, PkgState, UpdateResult } from './model.js';
import { ALL_TRANSITIONS, type Effect, type TransitionRow } from './transitions.js';

/** Resource IDs of the three resources the machines drive. */
export const RID_UPDATE_STATE = 7;
export const RID_UPDATE_RESULT = 9;
export const RID_ACTIVATION_STATE = 12;

/** A change of one machine-driven resource, in internal values (encode with encoding.ts). */
export type ResourceChange =
  | { readonly rid: 7; readonly from: PkgState; readonly to: PkgState }
  | { readonly rid: 9; readonly from: UpdateResult; readonly to: UpdateResult }
  | { readonly rid: 12; readonly from: boolean; readonly to: boolean };

export interface Accepted {
  readonly accepted: true;
  readonly row: TransitionRow;
  readonly before: MachineState;
  readonly after: MachineState;
  /** Resources whose value changed, in rid order (7, 9, 12). Empty for a self-loop. */
  readonly changes: readonly ResourceChange[];
  readonly effects: readonly Effect[];
}

export interface Rejected {
  readonly accepted: false;
  readonly before: MachineState;
  readonly after: MachineState;
  readonly reason: string;
  /** The CoAP response code for the request that caused the event. */
  readonly coap: '4.05';
}

export type StepOutcome = Accepted | Rejected;

/** Activation State resource: ENABLED only when the activation machine is ACTIVE (§5.2). */
export function activationEnabled(s: MachineState): boolean {
  return s.activation === 'ACTIVE';
}

function matches(row: TransitionRow, s: MachineState, event: MachineEvent): boolean {
  if (row.event !== event.type || row.from !== s.pkg) return false;
  if (row.fromActivation !== undefined && row.fromActivation !== s.activation) return false;
  if (row.guard === 'idle' && s.installing) return false;
  if (row.guard === 'installing' && !s.installing) return false;
  return true;
}

/** The row that applies to `event` in state `s`, if any. */
export function findRow(
  s: MachineState,
  event: MachineEvent,
  table: readonly TransitionRow[] = ALL_TRANSITIONS,
): TransitionRow | undefined {
  return table.find((row) => matches(row, s, event));
}

export function canApply(s: MachineState, event: MachineEvent): boolean {
  return findRow(s, event) !== undefined;
}

function resultAfter(row: TransitionRow, s: MachineState, event: MachineEvent): UpdateResult {
  switch (row.result.kind) {
    case 'set':
      return row.result.value;
    case 'unchanged':
      return s.result;
    case 'cause':
      if (event.type === 'downloadFailed') return event.cause;
      if (event.type === 'installFailed') return event.cause ?? row.result.fallback;
      return row.result.fallback;
  }
}

function activationAfter(row: TransitionRow, s: MachineState): ActivationState | null {
  if (row.toActivation !== undefined) return row.toActivation;
  // Rows that leave INSTALLED without saying otherwise kill the activation machine.
  return row.to === 'INSTALLED' ? s.activation : null;
}

/** Applies one event. Never throws; never mutates `s`. */
export function step(s: MachineState, event: MachineEvent, table: readonly TransitionRow[] = ALL_TRANSITIONS): StepOutcome {
  const row = findRow(s, event, table);
  if (!row) {
    const sub = s.installing ? ' (installation in progress)' : '';
    const act = s.activation ? `/${s.activation}` : '';
    return {
      accepted: false,
      before: s,
      after: s,
      reason: `${event.type} is not applicable in ${s.pkg}${act}${sub}`,
      coap: '4.05',
    };
  }
  const after: MachineState = Object.freeze({
    pkg: row.to,
    result: resultAfter(row, s, event),
    activation: activationAfter(row, s),
    installing: row.installing ?? false,
  });
  const changes: ResourceChange[] = [];
  if (after.pkg !== s.pkg) changes.push({ rid: RID_UPDATE_STATE, from: s.pkg, to: after.pkg });
  if (after.result !== s.result) changes.push({ rid: RID_UPDATE_RESULT, from: s.result, to: after.result });
  if (activationEnabled(after) !== activationEnabled(s)) {
    changes.push({ rid: RID_ACTIVATION_STATE, from: activationEnabled(s), to: activationEnabled(after) });
  }
  const effects = row.effects.filter((e) => e !== 'cancelInstall' || s.installing);
  return { accepted: true, row, before: s, after, changes, effects };
}

/** Applies events in order, returning the final state and every outcome. */
export function run(s: MachineState, events: readonly MachineEvent[]): { state: MachineState; outcomes: StepOutcome[] } {
  const outcomes: StepOutcome[] = [];
  let state = s;
  for (const e of events) {
    const o = step(state, e);
    outcomes.push(o);
    state = o.after;
  }
  return { state, outcomes };
}
