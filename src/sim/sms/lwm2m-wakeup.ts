/**
 * A simulated LwM2M device's SMS side: its handset hands every SMS without ports to this, and a
 * Registration Update Trigger for the device's server makes the client update its registration
 * (what TS Core §E.2 resource /1/x/8 does). Anything else is ignored.
 */
import { parseRegistrationUpdateTrigger } from '../../sms/lwm2m-trigger.js';
import type { SimHandset } from './handsets.js';

export function honourSmsWakeUps(handset: SimHandset, client: { requestUpdate(): void }, shortServerId = 1): { triggers: number; stop: () => void } {
  const state = { triggers: 0, stop: (): void => undefined };
  state.stop = handset.onMessage((message) => {
    if (message.ports) return;
    if (parseRegistrationUpdateTrigger(message.data) !== shortServerId) return;
    state.triggers++;
    client.requestUpdate();
  });
  return state;
}
