/** A simulated device's Object 9 pull over plain CoAP (Block2, 512-byte blocks), for end-to-end install tests. */
import { strict as assert } from 'node:assert';
import { CoapClient } from '../../src/coap/client.js';
import type { PackageFetcher } from '../../src/lwm2m/objects/software-management/index.js';

export const coapFetcher: PackageFetcher = {
  supports: (uri) => uri.startsWith('coap://'),
  resumable: () => false,
  async fetch(uri, opts) {
    const client = new CoapClient();
    try {
      const r = await client.get(uri, { blockSize: 512 });
      assert.equal(r.codeText, '2.05');
      await opts.onData(r.payload);
    } finally {
      await client.close();
    }
  },
};
