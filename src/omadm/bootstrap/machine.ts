/**
 * The OMA DM bootstrap of one phone number, as data (like Object 9's table): states, the events
 * that move them, and nothing else. The store keeps the state; the service (service.ts) applies
 * events through `nextState`, which refuses any transition not in the table.
 *
 *   new ──send──▶ sent ──dlr-delivered──▶ delivered ──session──▶ accepted
 *                  │ ╲                        │
 *                  │  dlr-failed ▶ failed      └─window-passed─▶ rejected   (delivered, never accepted:
 *                  └─window-passed─▶ expired                                the user entered a wrong
 *   sent/delivered/failed/rejected/expired ──send──▶ sent   (a resend)      PIN or none)
 *   any but accepted ──limit-reached──▶ stopped               (N sent without acceptance: the operator decides)
 *   stopped ──operator-reset──▶ new;  stopped ──session──▶ accepted (its user typed the PIN late)
 *   sent/delivered ──operator-reject──▶ rejected
 *
 * `accepted` is final: the account works, the device has opened a session with it. A session
 * arriving in any other state but new/stopped is acceptance too (a DLR may never come).
 */

export const BootstrapState = ['new', 'sent', 'delivered', 'failed', 'accepted', 'rejected', 'expired', 'stopped'] as const;
export type BootstrapState = (typeof BootstrapState)[number];

export type BootstrapEvent = 'send' | 'dlr-delivered' | 'dlr-failed' | 'session' | 'window-passed' | 'limit-reached' | 'operator-reject' | 'operator-reset';

/** [from, event, to]: every allowed transition. */
export const TRANSITIONS: readonly (readonly [BootstrapState, BootstrapEvent, BootstrapState])[] = [
  ['new', 'send', 'sent'],
  ['sent', 'send', 'sent'],
  ['delivered', 'send', 'sent'],
  ['failed', 'send', 'sent'],
  ['rejected', 'send', 'sent'],
  ['expired', 'send', 'sent'],
  ['sent', 'dlr-delivered', 'delivered'],
  ['failed', 'dlr-delivered', 'delivered'],
  ['sent', 'dlr-failed', 'failed'],
  ['sent', 'session', 'accepted'],
  ['delivered', 'session', 'accepted'],
  ['failed', 'session', 'accepted'],
  ['rejected', 'session', 'accepted'],
  ['expired', 'session', 'accepted'],
  ['stopped', 'session', 'accepted'],
  ['sent', 'window-passed', 'expired'],
  ['failed', 'window-passed', 'expired'],
  ['delivered', 'window-passed', 'rejected'],
  ['new', 'limit-reached', 'stopped'],
  ['sent', 'limit-reached', 'stopped'],
  ['delivered', 'limit-reached', 'stopped'],
  ['failed', 'limit-reached', 'stopped'],
  ['rejected', 'limit-reached', 'stopped'],
  ['expired', 'limit-reached', 'stopped'],
  ['sent', 'operator-reject', 'rejected'],
  ['delivered', 'operator-reject', 'rejected'],
  ['stopped', 'operator-reset', 'new'],
];

const table = new Map(TRANSITIONS.map(([from, event, to]) => [`${from}/${event}`, to]));

/** The state after `event`, or undefined when the event does not apply in `from` (ignored or refused by the caller). */
export function nextState(from: BootstrapState, event: BootstrapEvent): BootstrapState | undefined {
  return table.get(`${from}/${event}`);
}

/** States in which the bootstrap still waits on the device (the LwM2M "pending" of the shared list). */
export function isPending(state: BootstrapState): boolean {
  return state === 'new' || state === 'sent' || state === 'delivered' || state === 'failed';
}
