/**
 * The client engine and a server that lost its DTLS state (killed and restarted: no close_notify
 * reached the device). RFC 6347 §4.2.8: the association is gone on the server side and the
 * client must start a new handshake; LwM2M TS Core 1.1 §6.2.2: an Update that fails makes the
 * client Register again. Between the device and the test's server runs a UDP relay that can
 * swallow everything, so the first server's close_notify never arrives — as after kill -9.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { Lwm2mClient } from '../../../src/lwm2m/client/engine.js';
import type { ClientEvent } from '../../../src/lwm2m/client/engine.js';
import { Lwm2mServerTestDriver } from './server-test-driver.js';

const IDENTITY = 'lost-assoc';
const KEY = Buffer.from('lost-association-key');

/** A UDP relay on loopback: the device talks to `port`, the relay to whichever server is `target`. */
class Relay {
  target = 0;
  blackhole = false;
  private client: RemoteInfo | undefined;
  private constructor(
    private readonly front: Socket,
    private readonly back: Socket,
  ) {
    front.on('message', (msg, rinfo) => {
      this.client = rinfo;
      if (!this.blackhole && this.target) back.send(msg, this.target, '127.0.0.1');
    });
    back.on('message', (msg, rinfo) => {
      // Only the current server is heard: a late datagram of the old one (its close_notify) is lost.
      if (!this.blackhole && this.client && rinfo.port === this.target) front.send(msg, this.client.port, this.client.address);
    });
  }

  static async start(): Promise<Relay> {
    const bind = async (): Promise<Socket> => {
      const s = createSocket('udp4');
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
      return s;
    };
    return new Relay(await bind(), await bind());
  }

  get port(): number {
    return this.front.address().port;
  }

  close(): void {
    this.front.close();
    this.back.close();
  }
}

function serverPort(driver: Lwm2mServerTestDriver): number {
  return Number(new URL(driver.uri.replace('coaps:', 'http:')).port);
}

/** Registers through the relay, then replaces the server behind it as a crash would. */
async function crashedServer(options: { alertUnknownAssociations: boolean; ackTimeout: number }): Promise<{ client: Lwm2mClient; events: ClientEvent[]; relay: Relay; second: Lwm2mServerTestDriver; close: () => Promise<void> }> {
  const psk = new Map([[IDENTITY, Uint8Array.from(KEY)]]);
  const first = await Lwm2mServerTestDriver.start({ psk });
  const relay = await Relay.start();
  relay.target = serverPort(first);
  const client = new Lwm2mClient({
    endpoint: 'lost-assoc-dev',
    serverUri: `coaps://127.0.0.1:${relay.port}`,
    psk: { identity: IDENTITY, key: KEY },
    host: '127.0.0.1',
    lifetime: 300,
    coap: { params: { ackTimeout: options.ackTimeout, maxRetransmit: 2 } },
    retry: { initialMs: 200, maxMs: 400 },
  });
  const events: ClientEvent[] = [];
  client.on((e) => events.push(e));
  const registered = client.waitFor('registered', 10_000);
  await client.start();
  await registered;
  // The crash: nothing from the old server reaches the device any more (its close_notify neither).
  relay.blackhole = true;
  await first.close();
  const second = await Lwm2mServerTestDriver.start({ psk, alertUnknownAssociations: options.alertUnknownAssociations });
  relay.target = serverPort(second);
  relay.blackhole = false;
  return {
    client,
    events,
    relay,
    second,
    close: async () => {
      await client.stop({ deregister: false });
      await second.close();
      relay.close();
    },
  };
}

test('TS Core 1.1 §6.2.2 / RFC 6347 §4.2.8: an Update unanswered after its retransmissions drops the DTLS association; the client handshakes again and registers with the restarted server', async () => {
  // A server that drops records it cannot read, silently (RFC 6347 §4.1.2.7): only the client's own timers tell it.
  const s = await crashedServer({ alertUnknownAssociations: false, ackTimeout: 100 });
  try {
    const again = s.client.waitFor('registered', 15_000);
    s.client.requestUpdate();
    await again;
    const failed = s.events.find((e) => e.type === 'updateFailed');
    assert.ok(failed && failed.type === 'updateFailed');
    assert.match(failed.reason, /no acknowledgement after 2 retransmissions|no response within/, JSON.stringify(s.events));
    const register = s.second.requests.find((r) => r.method === 'POST' && r.path === '/rd');
    assert.ok(register, 'the Register reached the restarted server over a new association');
    assert.deepEqual(register.peer.identity, { kind: 'psk', identity: IDENTITY });
  } finally {
    await s.close();
  }
});

test('RFC 6347 §4.2.8: the restarted server\'s alert for the unknown association ends it at once; the client registers without waiting for its retransmissions', async () => {
  // ACK_TIMEOUT 5 s: without the alert the Update would take 5–7.5 s to fail even once.
  const s = await crashedServer({ alertUnknownAssociations: true, ackTimeout: 5000 });
  try {
    const again = s.client.waitFor('registered', 15_000);
    s.client.requestUpdate();
    await again;
    const failed = s.events.find((e) => e.type === 'updateFailed');
    assert.ok(failed && failed.type === 'updateFailed');
    assert.match(failed.reason, /does not know this DTLS association/, JSON.stringify(s.events));
    assert.ok(s.second.requests.some((r) => r.method === 'POST' && r.path === '/rd'));
  } finally {
    await s.close();
  }
});
