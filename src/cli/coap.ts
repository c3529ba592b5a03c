import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CoapClient } from '../coap/client.js';
import type { ClientResponse, TransportFactory } from '../coap/client.js';
import { peerAddress } from '../coap/transport.js';
import { UdpTransport } from '../coap/udp.js';
import { parseCoapUri } from '../coap/uri.js';
import { ContentFormat, codeClass, codeName } from '../coap/codes.js';
import type { MethodName } from '../coap/codes.js';
import { optionName } from '../coap/options.js';
import { DtlsTransport } from '../dtls/transport.js';
import { DTLS_USAGE, certificateOf, dtlsOptionSpec, pskOf, trustRootsOf } from './dtls-options.js';
import type { DtlsCliValues } from './dtls-options.js';

const USAGE = `usage: depot coap <get|put|post|delete|observe|ping> <uri> [options]
  --payload <text>         request body
  --payload-file <file>    request body from a file
  --content-format <cf>    number or name (text, link, json, cbor, octet, senml+json, senml+cbor, tlv, lwm2m+cbor)
  --accept <cf>            preferred response Content-Format
  --block-size <bytes>     block size for Block1/Block2 (16..1024)
  --non                    send a Non-confirmable request
  --timeout <ms>           give up after this long
  --count <n>              observe: stop after n notifications
  --duration <s>           observe: stop after this many seconds
  -v, --verbose            print response options
${DTLS_USAGE}`;

const namedFormats: Record<string, number> = {
  text: ContentFormat.TextPlain,
  link: ContentFormat.LinkFormat,
  xml: ContentFormat.Xml,
  octet: ContentFormat.OctetStream,
  json: ContentFormat.Json,
  cbor: ContentFormat.Cbor,
  'senml+json': ContentFormat.SenmlJson,
  'senml+cbor': ContentFormat.SenmlCbor,
  tlv: ContentFormat.LwM2mTlv,
  'lwm2m+json': ContentFormat.LwM2mJson,
  'lwm2m+cbor': ContentFormat.LwM2mCbor,
};

function contentFormat(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const named = namedFormats[value];
  if (named === undefined) throw new UsageError(`unknown content format "${value}"`);
  return named;
}

class UsageError extends Error {}

function print(response: ClientResponse, verbose: boolean): void {
  process.stderr.write(`${response.codeText} ${codeName(response.code)}\n`);
  if (verbose) {
    for (const o of response.options) process.stderr.write(`  ${optionName(o.number)}: ${Buffer.from(o.value).toString('hex') || '(empty)'}\n`);
  }
  if (response.payload.length > 0) {
    process.stdout.write(response.payload);
    if (response.contentFormat === undefined || response.contentFormat === ContentFormat.TextPlain || response.contentFormat === ContentFormat.LinkFormat || response.contentFormat === ContentFormat.Json) process.stdout.write('\n');
  }
}

/** `depot coap …`: a debugging client like libcoap's coap-client. Returns the exit code. */
export async function runCoapCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        payload: { type: 'string' },
        'payload-file': { type: 'string' },
        'content-format': { type: 'string' },
        accept: { type: 'string' },
        'block-size': { type: 'string' },
        non: { type: 'boolean' },
        timeout: { type: 'string' },
        count: { type: 'string' },
        duration: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        ...dtlsOptionSpec,
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [verb, uri] = positionals;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!verb || !uri) {
    process.stderr.write(USAGE + '\n');
    return 2;
  }
  let client: CoapClient;
  const secure: { transport?: DtlsTransport } = {};
  try {
    client = new CoapClient({ transportFactory: transportFactory(values, secure) });
  } catch (error) {
    process.stderr.write(`depot coap: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    const payload = values['payload-file'] !== undefined ? readFileSync(values['payload-file']) : values.payload;
    const common = {
      ...(payload !== undefined ? { payload } : {}),
      ...(values['content-format'] !== undefined ? { contentFormat: contentFormat(values['content-format']) } : {}),
      ...(values.accept !== undefined ? { accept: contentFormat(values.accept) } : {}),
      ...(values['block-size'] !== undefined ? { blockSize: Number(values['block-size']) } : {}),
      ...(values.non ? { confirmable: false } : {}),
      ...(values.timeout !== undefined ? { timeout: Number(values.timeout) } : {}),
    };
    switch (verb) {
      case 'get':
      case 'put':
      case 'post':
      case 'delete': {
        const response = await client.request({ ...common, uri, method: verb.toUpperCase() as MethodName });
        print(response, values.verbose ?? false);
        return codeClass(response.code) === 2 ? 0 : 1;
      }
      case 'ping': {
        await client.ping(uri);
        process.stderr.write('pong (RST)\n');
        return 0;
      }
      case 'observe':
        return await observe(client, uri, common, values);
      default:
        throw new UsageError(`unknown verb "${verb}"`);
    }
  } catch (error) {
    process.stderr.write(`depot coap: ${(error as Error).message}\n`);
    if (error instanceof UsageError) process.stderr.write(USAGE + '\n');
    const hint = await handshakeHint(uri, secure.transport);
    if (hint) process.stderr.write(hint + '\n');
    return error instanceof UsageError ? 2 : 1;
  } finally {
    await client.close();
  }
}

/** UDP for coap://, DTLS with the given credentials for coaps://. */
/**
 * A DTLS server that refuses our credentials may drop our Finished silently (RFC 6347
 * §4.1.2.7), so a wrong key shows only as silence: say so when no session was established.
 */
async function handshakeHint(uri: string, transport: DtlsTransport | undefined): Promise<string | undefined> {
  if (!transport) return undefined;
  try {
    const { host, port } = parseCoapUri(uri);
    // The transport knows peers by IP address: resolve a name as CoapClient did.
    if (transport.session(transport.peer(await peerAddress(host), port))) return undefined;
  } catch {
    return undefined;
  }
  return 'the DTLS handshake did not complete: check the PSK identity and key, or the certificates and trusted roots';
}

function transportFactory(values: DtlsCliValues, secure: { transport?: DtlsTransport }): TransportFactory {
  const psk = pskOf(values);
  const certificate = certificateOf(values);
  const trustRoots = trustRootsOf(values);
  return async (scheme, family) => {
    const host = family === 'IPv6' ? '::' : '0.0.0.0';
    if (scheme === 'coap') return UdpTransport.bind({ host });
    if (!psk && !certificate) throw new UsageError('coaps:// needs credentials: --psk-identity with --psk-key, or --cert and --key');
    // With certificates the server's chain must be checked against something.
    if (certificate && trustRoots.length === 0) throw new UsageError('--cert needs --ca: the root certificate(s) the server\'s certificate must chain to');
    secure.transport = await DtlsTransport.bind({ host, client: { ...(psk ? { psk } : {}), ...(certificate ? { certificate } : {}), ...(trustRoots.length ? { trustRoots } : {}) } });
    return secure.transport;
  };
}

async function observe(client: CoapClient, uri: string, common: { accept?: number; timeout?: number }, values: { count?: string; duration?: string; verbose?: boolean }): Promise<number> {
  const limit = values.count !== undefined ? Number(values.count) : Number.POSITIVE_INFINITY;
  let seen = 0;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const observation = await client.observe(
    uri,
    {
      onNotification: (response) => {
        print(response, values.verbose ?? false);
        if (++seen >= limit) finish(0);
      },
      onEnd: (reason) => {
        process.stderr.write(`observation ended: ${reason}\n`);
        finish(1);
      },
    },
    common,
  );
  print(observation.first, values.verbose ?? false);
  if (!observation.established) {
    process.stderr.write('the server did not accept the observation (no Observe option in the response)\n');
    return 1;
  }
  const stop = (): void => finish(0);
  process.once('SIGINT', stop);
  const timer = values.duration !== undefined ? setTimeout(stop, Number(values.duration) * 1000) : undefined;
  const code = await done;
  if (timer) clearTimeout(timer);
  process.off('SIGINT', stop);
  await observation.cancel();
  return code;
}
