/**
 * UDP helpers for tests that start real CoAP servers: a free port, and a CoAP ping
 * (RFC 7252 §4.3: an empty CON is answered with RST) to know when a server is up.
 * These speak raw bytes on purpose, so they do not depend on the code under test.
 */
import { createSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';

/** A UDP port that was free on `host` a moment ago (bind to 0, read, close). */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve());
  });
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Two consecutive free UDP ports on `host`: libcoap's `coap-server -p P` serves CoAP on P and DTLS on P+1. */
/** A TCP port that was free a moment ago on `host` (for a child process that must bind it itself). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no TCP port');
  return address.port;
}

export async function freeUdpPortPair(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const b = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve) => a.bind(0, host, () => resolve()));
      const port = a.address().port;
      if (port >= 65535) continue;
      const ok = await new Promise<boolean>((resolve) => {
        b.once('error', () => resolve(false));
        b.bind(port + 1, host, () => resolve(true));
      });
      if (ok) return port;
    } finally {
      a.close();
      try {
        b.close();
      } catch {
        // b was never bound
      }
    }
  }
  throw new Error('no free pair of consecutive UDP ports');
}

/** Sends one CoAP ping; resolves true if an RST (or ACK) with the same Message ID comes back in time. */
export function coapPing(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const messageId = randomInt(0x10000);
    let done = false;
    const finish = (answered: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('error', () => finish(false)); // e.g. ICMP port unreachable: nobody listens yet
    socket.on('message', (data) => {
      const type = data.length >= 4 ? (data[0]! >> 4) & 0x3 : -1;
      if ((type === 3 || type === 2) && data.readUInt16BE(2) === messageId) finish(true);
    });
    // Connected, so an ICMP port-unreachable surfaces as an error instead of a silent loss.
    socket.connect(port, host, () => {
      const ping = Buffer.from([0x40, 0x00, messageId >> 8, messageId & 0xff]);
      socket.send(ping, (error) => {
        if (error) finish(false);
      });
    });
  });
}

/** Pings until the server answers; rejects after `timeoutMs`, or as soon as `gaveUp()` says so. */
export async function waitForCoapServer(host: string, port: number, timeoutMs: number, gaveUp: () => string | undefined = () => undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = gaveUp();
    if (reason !== undefined) throw new Error(`CoAP server on ${host}:${port} will not come up: ${reason}`);
    if (await coapPing(host, port, 200)) return;
    if (Date.now() >= deadline) throw new Error(`no CoAP server answered a ping on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
