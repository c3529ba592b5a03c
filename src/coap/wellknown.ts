import { filterLinks, serializeLinkFormat } from './linkformat.js';
import type { Link, LinkParam } from './linkformat.js';
import { segmentsToPath } from './uri.js';

/** Target attributes of a resource, as advertised in /.well-known/core (RFC 6690 §3). */
export interface ResourceDescription {
  /** Resource types (rt). */
  resourceTypes?: string[];
  /** Interface descriptions (if). */
  interfaces?: string[];
  /** Content-Formats served (ct). */
  contentFormats?: number[];
  /** Estimated size in bytes (sz). */
  size?: number;
  title?: string;
  /** Further attributes, verbatim (ptoken values). */
  attributes?: Record<string, string>;
}

/** Builds the link for one resource. */
export function describeResource(path: string, description: ResourceDescription, observable: boolean): Link {
  const params: LinkParam[] = [];
  const quoted = (name: string, value: string): void => void params.push({ name, value: { kind: 'quoted', value } });
  if (description.resourceTypes?.length) quoted('rt', description.resourceTypes.join(' '));
  if (description.interfaces?.length) quoted('if', description.interfaces.join(' '));
  if (description.contentFormats?.length) {
    const ct = description.contentFormats.join(' ');
    params.push({ name: 'ct', value: description.contentFormats.length === 1 ? { kind: 'ptoken', value: ct } : { kind: 'quoted', value: ct } });
  }
  if (description.size !== undefined) params.push({ name: 'sz', value: { kind: 'ptoken', value: String(description.size) } });
  if (description.title !== undefined) quoted('title', description.title);
  if (observable) params.push({ name: 'obs', value: { kind: 'none' } });
  for (const [name, value] of Object.entries(description.attributes ?? {})) params.push({ name, value: { kind: 'ptoken', value } });
  // Percent-encode the path exactly as a CoAP URI would carry it (RFC 7252 §6.5).
  const target = path === '/' ? '/' : segmentsToPath(path.slice(1).split('/'));
  return { target, params };
}

/** The /.well-known/core document, filtered by the request's query (RFC 6690 §4.1). */
export function serializeWellKnownCore(resources: { path: string; description: ResourceDescription; observable: boolean }[], query: readonly string[]): string {
  const links = resources.map((r) => describeResource(r.path, r.description, r.observable));
  return serializeLinkFormat(query.length > 0 ? filterLinks(links, query) : links);
}
