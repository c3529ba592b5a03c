/**
 * Test driver that plays an LwM2M device: serves /3/0 (in the format asked for) and
 * registers from the same UDP socket. Used where a test needs a device that Depot's
 * own client engine must not be (to test the server independently of it).
 */
import { CoapClient } from '../../src/coap/client.js';
import { Code, ContentFormat } from '../../src/coap/codes.js';
import { CoapServer } from '../../src/coap/server.js';
import type { DatagramTransport } from '../../src/coap/transport.js';
import { UdpTransport } from '../../src/coap/udp.js';
import { encode, Node, Value } from '../../src/lwm2m/index.js';

export class DeviceDriver {
  executed: string[] = [];
  /** Battery level (/3/0/9), observable: change it with setBattery(). */
  battery = 100;
  lifetime = 300;
  private constructor(
    readonly coap: CoapServer,
    readonly client: CoapClient,
  ) {}

  /** `transport` defaults to plain UDP on loopback; pass a DtlsTransport for coaps. */
  static async start(manufacturer = 'Acme', model = 'Rocket-1', transport?: DatagramTransport): Promise<DeviceDriver> {
    const coap = new CoapServer({ transport: transport ?? (await UdpTransport.bind({ host: '127.0.0.1', port: 0 })) });
    const device = new DeviceDriver(coap, new CoapClient({ endpoint: coap.endpoint }));
    const instance = () =>
      Node.instance(0, [
        Node.resource(0, Value.string(manufacturer)),
        Node.resource(1, Value.string(model)),
        Node.resource(2, Value.string('SN-1')),
        Node.resource(3, Value.string('fw-2.1')),
        Node.resource(19, Value.string('os-7.0')),
      ]);
    coap.resource('/3/0', {
      get: (req) => {
        const format = req.accept ?? ContentFormat.LwM2mTlv;
        return { code: Code.Content, contentFormat: format, payload: encode(format, [3, 0], instance()) };
      },
    });
    coap.resource('/3/0/0', { get: (req) => ({ code: Code.Content, contentFormat: req.accept ?? 0, payload: encode(req.accept ?? 0, [3, 0, 0], Node.resource(0, Value.string(manufacturer))) }) });
    coap.resource('/3/0/4', { post: () => (device.executed.push('reboot'), { code: Code.Changed }) });
    coap.resource('/3/0/9', {
      observable: true,
      get: (req) => ({ code: Code.Content, contentFormat: req.accept ?? 0, payload: encode(req.accept ?? 0, [3, 0, 9], Node.resource(9, Value.integer(device.battery))) }),
    });
    return device;
  }

  setBattery(level: number): void {
    this.battery = level;
    this.coap.notifyChanged('/3/0/9');
  }

  port(): number {
    return this.coap.endpoint.transport.address().port;
  }

  register(server: string, query: string, links = '</1/0>,</3/0>') {
    return this.client.post(`${server}/rd?${query}`, links, { contentFormat: ContentFormat.LinkFormat });
  }

  close(): Promise<void> {
    return this.coap.close();
  }
}

