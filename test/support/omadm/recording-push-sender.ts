/**
 * A FAKE WAP Push sender for tests of the OMA DM side: it records every push in process (no SMS,
 * no Kannel) and dedupes by idempotency key as the real outbox does. The SMS layer's own tests
 * carry pushes through a real Kannel; these tests are about what goes inside them.
 */
import type { PushDeliveryListener, WapPushMessage, WapPushSender } from '../../../src/omadm/push-port.js';

export class RecordingPushSender implements WapPushSender {
  readonly pushes: (WapPushMessage & { id: string })[] = [];
  private readonly byKey = new Map<string, string>();
  private counter = 0;
  /** When set, push() fails like a gateway that is down. */
  failing: Error | undefined;

  push(message: WapPushMessage): Promise<{ id: string }> {
    if (this.failing) return Promise.reject(this.failing);
    const known = this.byKey.get(message.idempotencyKey);
    if (known !== undefined) return Promise.resolve({ id: known });
    const id = `push-${++this.counter}`;
    this.byKey.set(message.idempotencyKey, id);
    this.pushes.push({ ...message, id });
    return Promise.resolve({ id });
  }

  /** The pushes to one number, oldest first. */
  to(msisdn: string): (WapPushMessage & { id: string })[] {
    return this.pushes.filter((p) => p.to === msisdn);
  }

  last(msisdn: string): WapPushMessage & { id: string } {
    const list = this.to(msisdn);
    const last = list[list.length - 1];
    if (last === undefined) throw new Error(`no push to ${msisdn}`);
    return last;
  }

  /** Plays the SMSC's delivery report for a push. */
  async report(listener: PushDeliveryListener, id: string, status: 'delivered' | 'failed', at = Date.now()): Promise<void> {
    await listener.onDeliveryReport({ id, status, at });
  }
}
