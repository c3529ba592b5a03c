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

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends one request exactly as written (request target, headers and body untouched by any
 * HTTP client's normalisation) over a new connection, and reads the answer until the server
 * closes. For request targets fetch would rewrite: percent-encoded or dot segments, absolute form.
 */
export async function rawRequest(
  port: number,
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: Uint8Array | string; localAddress?: string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const { connect } = await import('node:net');
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  const headers: Record<string, string> = { host: `127.0.0.1:${port}`, connection: 'close', ...(body || method === 'POST' ? { 'content-length': String(body?.length ?? 0) } : {}), ...options.headers };
  const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    const chunks: Buffer[] = [];
    socket.setTimeout(options.timeoutMs ?? 10_000, () => socket.destroy(new Error(`no complete answer to ${method} ${target}`)));
    // Not half-closed after writing: node's server takes a client's FIN as an abort of the request.
    // `connection: close` makes the server close once it has answered.
    socket.on('connect', () => socket.write(body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : head));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!match) return reject(new Error(`no HTTP answer to ${method} ${target}: ${JSON.stringify(text.slice(0, 200))}`));
      const split = text.indexOf('\r\n\r\n');
      const headerLines = text.slice(0, split).split('\r\n').slice(1);
      resolve({
        status: Number(match[1]),
        headers: Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])),
        body: text.slice(split + 4),
      });
    });
  });
}

/** An install chain job as the API answers it (src/api/installs.ts chainJobJson), the fields tests read. */
export interface ChainAttemptJson {
  method: string;
  position: number;
  outcome: string;
  message: string | null;
  result: string | null;
}
export interface ChainJson {
  id: string;
  state: string;
  methods: string[];
  attempts: ChainAttemptJson[];
}
