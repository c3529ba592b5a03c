/** Calls Depot's HTTP API as an operator would: bearer token, JSON or raw bytes in, JSON out. */
export interface ApiRequest {
  method?: string;
  json?: unknown;
  bytes?: Uint8Array;
}

export async function apiCall(base: string, token: string, path: string, init: ApiRequest = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(base + path, {
    method: init.method ?? (init.json !== undefined || init.bytes ? 'POST' : 'GET'),
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(init.bytes ? { 'content-type': 'application/octet-stream' } : {}),
    },
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
    ...(init.bytes ? { body: init.bytes } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
