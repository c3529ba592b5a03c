/**
 * A device Depot knows only from an imported list has no protocol address yet: a campaign's job
 * for it is addressed `device:<Depot id>` (campaigns.ts jobEndpointOf), and Mark for Installation
 * waits for it. When it first shows up (an LwM2M registration as `urn:imei:…`, an OMA DM session
 * as `IMEI:…`), the inventory joins that identity to its record; this wrapper then hands the
 * wrapped method (the Mark handover) the address the protocol knows it by, so the install runs
 * over the protocol it came back on. Other addresses pass through unchanged.
 */
import type { JsonState } from '../domain.js';
import { addressOf, DEVICE_ADDRESS_PREFIX } from '../inventory.js';
import type { AttemptContext, InstallMethod, InstallTarget, MethodEvent, MethodHost, MethodStep } from './method.js';

/** Maps a chain address to the one the protocols know the device by (itself when there is none better). */
export type EndpointResolver = (endpoint: string) => Promise<string>;

export { DEVICE_ADDRESS_PREFIX };

/** A resolver over the inventory: `device:<id>` → the device's LwM2M endpoint or `omadm:<DevId>` once known. */
export function inventoryResolver(inventory: { get(id: string): Promise<{ readonly id: string; readonly lwm2mEndpoint: string | null; readonly omadmDevId: string | null } | null> }): EndpointResolver {
  return async (endpoint) => {
    if (!endpoint.startsWith(DEVICE_ADDRESS_PREFIX)) return endpoint;
    const device = await inventory.get(endpoint.slice(DEVICE_ADDRESS_PREFIX.length));
    return device ? addressOf(device) : endpoint;
  };
}

export class ResolvedEndpointMethod implements InstallMethod {
  readonly name: string;

  constructor(
    private readonly inner: InstallMethod,
    private readonly resolve: EndpointResolver,
  ) {
    this.name = inner.name;
  }

  connect(host: MethodHost): void {
    this.inner.connect?.(host);
  }

  refOf(state: JsonState): string | undefined {
    return this.inner.refOf?.(state);
  }

  async preflight(target: InstallTarget): Promise<string | undefined> {
    return this.inner.preflight(await this.target(target));
  }

  async begin(context: AttemptContext): Promise<MethodStep> {
    return this.inner.begin(await this.context(context));
  }

  async advance(context: AttemptContext, event: MethodEvent): Promise<MethodStep> {
    return this.inner.advance(await this.context(context), event);
  }

  async cancel(context: AttemptContext): Promise<void> {
    await this.inner.cancel(await this.context(context));
  }

  private async target(target: InstallTarget): Promise<InstallTarget> {
    const endpoint = await this.resolve(target.endpoint);
    return endpoint === target.endpoint ? target : { ...target, endpoint };
  }

  private async context(context: AttemptContext): Promise<AttemptContext> {
    const target = await this.target(context.target);
    return target === context.target ? context : { ...context, target };
  }
}
