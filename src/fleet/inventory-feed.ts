/**
 * What the LwM2M server tells the inventory (issue 16), coalesced per device (issue 18).
 *
 * A Register is followed within milliseconds by the Object 3 facts read from the device, and
 * often by Updates: written one by one, that was two or more inventory upserts per device
 * (find, insert or update, history entry, read back), more CPU than the registration itself.
 * Here the reports of one device that arrive within `windowMs` are merged and written as one
 * upsert (one history entry with everything that changed).
 *
 * Durability is the inventory's soft state as before: these writes were already made after
 * the device had its answer (fire and forget), so a crash could lose the last ones; it now can
 * lose the last `windowMs` of them. A device's next contact writes its record again, and
 * close() writes what waits.
 */
import type { DeviceFactsPatch, Registration } from '../store/types.js';
import type { Inventory } from './inventory.js';

interface Pending {
  registration?: Registration;
  facts?: DeviceFactsPatch;
}

export interface Lwm2mInventoryFeedOptions {
  inventory: Pick<Inventory, 'recordContact' | 'fromFacts'>;
  /** How long reports of one device are gathered before they are written (ms, default 50). */
  windowMs?: number;
  /** Devices gathered at most; more write the batch at once (default 4096). */
  maxPending?: number;
  onError: (error: unknown) => void;
  /** After a contact (Register or Update) is written, with the device's record (e.g. a marked install waiting for its first contact). */
  onContact?: (device: { id: string } | null) => void;
}

export class Lwm2mInventoryFeed {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly options: Lwm2mInventoryFeedOptions) {}

  /** A Register or Update of the device. */
  registration(registration: Registration): void {
    const entry = this.entry(registration.endpoint);
    // The latest contact wins (its time, address and SMS number).
    if (!entry.registration || entry.registration.lastUpdateAt <= registration.lastUpdateAt) entry.registration = registration;
    this.schedule();
  }

  /** Object 3 facts read from the device. */
  facts(endpoint: string, facts: DeviceFactsPatch): void {
    const entry = this.entry(endpoint);
    entry.facts = entry.facts ? { ...entry.facts, ...facts } : facts;
    this.schedule();
  }

  /** Writes what waits now; resolves once every write (also earlier ones) is done. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = new Map();
    for (const [endpoint, entry] of batch) {
      const write = this.write(endpoint, entry).catch(this.options.onError);
      this.inFlight.add(write);
      void write.finally(() => this.inFlight.delete(write));
    }
    await Promise.all([...this.inFlight]);
  }

  /** Devices waiting to be written (tests). */
  get waiting(): number {
    return this.pending.size;
  }

  private entry(endpoint: string): Pending {
    let entry = this.pending.get(endpoint);
    if (!entry) {
      entry = {};
      this.pending.set(endpoint, entry);
    }
    return entry;
  }

  private schedule(): void {
    if (this.pending.size >= (this.options.maxPending ?? 4096)) {
      void this.flush();
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), this.options.windowMs ?? 50);
    this.timer.unref();
  }

  private async write(endpoint: string, { registration, facts }: Pending): Promise<void> {
    if (!registration) {
      if (facts) await this.options.inventory.fromFacts(endpoint, facts);
      return;
    }
    // What Inventory.fromRegistration and fromFacts would write, in one upsert.
    const device = await this.options.inventory.recordContact({
      protocol: 'lwm2m',
      endpoint,
      ...(registration.smsNumber ? { msisdn: registration.smsNumber } : {}),
      at: registration.lastUpdateAt,
      ...(facts?.manufacturer !== undefined ? { make: facts.manufacturer } : {}),
      ...(facts?.modelNumber !== undefined ? { model: facts.modelNumber } : {}),
      ...(facts?.firmwareVersion !== undefined ? { firmware: facts.firmwareVersion } : {}),
      ...(facts?.osVersion !== undefined ? { osVersion: facts.osVersion } : {}),
    });
    this.options.onContact?.(device);
  }
}
