/**
 * DTLS benchmark target: Depot's CoapServer on a DtlsTransport (PSK), as `depot serve` would run
 * it (4 MiB receive buffer, default endpoint settings: cookie exchange, session cache, 10 000
 * associations). Runs as its own process, compiled, pinned by the driver.
 * Usage: node --expose-gc dist/bench/servers/dtls-depot.js PORT — prints "ready PORT" once bound.
 * Over the IPC channel, the message "memory" is answered (after a full GC when --expose-gc is on)
 * with { rss, heapUsed, external, arrayBuffers, young } in bytes; "young" alone is answered with
 * { young, youngAtStart } (no GC): the V8 young generation's size now and when the process started.
 */
import { getHeapSpaceStatistics } from 'node:v8';
import { Code, ContentFormat } from '../../src/coap/codes.js';
import { CoapServer } from '../../src/coap/server.js';
import { DtlsTransport } from '../../src/dtls/transport.js';
import { BENCH_PAYLOAD, serveUntilStdinCloses } from './common.js';
import { BENCH_PSK_IDENTITY, BENCH_PSK_KEY } from './dtls-handshaker.js';

const port = Number(process.argv[2] ?? 0);
const transport = await DtlsTransport.bind({
  host: '127.0.0.1',
  port,
  receiveBufferSize: 4 * 1024 * 1024,
  server: { pskLookup: (identity) => (identity === BENCH_PSK_IDENTITY ? BENCH_PSK_KEY : undefined) },
});
const server = new CoapServer({ transport });
server.resource('/hello', { get: () => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: BENCH_PAYLOAD }) });

/** Reserved size of V8's young generation (new space): it grows under a burst of allocation and shrinks again after some idle seconds. */
const youngSize = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
const youngAtStart = youngSize();

process.on('message', (message) => {
  if (message === 'young') {
    process.send?.({ young: youngSize(), youngAtStart });
    return;
  }
  if (message !== 'memory') return;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  process.send?.({ rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, young: youngSize(), gc: gc !== undefined });
});
serveUntilStdinCloses(transport.address().port, () => server.close());
