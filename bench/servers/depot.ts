/**
 * Benchmark target (a): Depot's CoapServer serving GET /hello → 2.05 "Hello, world".
 * Runs as its own process (compiled code) so the benchmark driver does not share its core.
 * Usage: node dist/bench/servers/depot.js PORT  — prints "ready PORT" once bound.
 */
import { Code, ContentFormat } from '../../src/coap/codes.js';
import { CoapServer } from '../../src/coap/server.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { BENCH_PAYLOAD, serveUntilStdinCloses } from './common.js';

const port = Number(process.argv[2] ?? 0);
// The same socket setup as `depot serve` (src/app/server.ts): a 4 MiB receive buffer.
const transport = await UdpTransport.bind({ host: '127.0.0.1', port, receiveBufferSize: 4 * 1024 * 1024 });
const server = new CoapServer({ transport });
server.resource('/hello', { get: () => ({ code: Code.Content, contentFormat: ContentFormat.TextPlain, payload: BENCH_PAYLOAD }) });
serveUntilStdinCloses(transport.address().port, () => server.close());
