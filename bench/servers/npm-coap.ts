/**
 * Benchmark target (c): the npm `coap` package's server (1.5.0), the common Node CoAP server.
 * GET /hello → 2.05 text/plain "Hello, world". Started fresh for every measurement: it keeps
 * an entry per response for EXCHANGE_LIFETIME and slows down as it serves (see coapload's README).
 * Usage: node dist/bench/servers/npm-coap.js PORT  — prints "ready PORT" once listening.
 */
import { createServer } from 'coap';
import { BENCH_PAYLOAD, serveUntilStdinCloses } from './common.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: npm-coap.js PORT (the npm coap server needs a fixed port)');
const payload = Buffer.from(BENCH_PAYLOAD);
const server = createServer((request, response) => {
  if (request.url !== '/hello') {
    response.code = '4.04';
    response.end();
    return;
  }
  response.setOption('Content-Format', 'text/plain');
  response.end(payload);
});
await new Promise<void>((resolve, reject) => server.listen(port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
serveUntilStdinCloses(port, () => new Promise<void>((resolve) => server.close(() => resolve())));
