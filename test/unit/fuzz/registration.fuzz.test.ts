/**
 * LwM2M Register and Update requests (TS Core 1.1 §6.2.1, §6.2.2) from devices that send
 * anything: the endpoint name and the other query parameters are validated, a bad one gets
 * 4.00 Bad Request with a diagnostic that says what is wrong (printable, bounded), and nothing
 * else — no 5.00, no raw control bytes in what Depot stores, answers or logs. The parsers are
 * fuzzed directly, then the LwM2M server over real UDP with raw option bytes (invalid UTF-8 too).
 */
import { after, before, test } from 'node:test';
import { strict as assert } from 'node:assert';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { decode, encode } from '../../../src/coap/codec.js';
import { Code, ContentFormat, MessageType, Method } from '../../../src/coap/codes.js';
import type { CoapMessage, CoapOption } from '../../../src/coap/message.js';
import { OptionNumber, encodeString, encodeUint } from '../../../src/coap/options.js';
import { CoapServer } from '../../../src/coap/server.js';
import { UdpTransport } from '../../../src/coap/udp.js';
import { parseRegister, parseUpdate, RegistrationRequestError, validateEndpointName } from '../../../src/lwm2m/server/registration-request.js';
import { Lwm2mServer } from '../../../src/lwm2m/server/server.js';
import { openSqliteStore } from '../../../src/store/index.js';
import type { SqliteStore } from '../../../src/store/index.js';
import { fuzzParameters } from './settings.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

test('TS Core 1.1 §6.2.1: validateEndpointName takes 1-255 UTF-8 bytes of printable text and says what is wrong otherwise', () => {
  for (const good of ['dev-1', 'urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6', 'urn:imei:490154203237518', 'capteur é 温度', 'x'.repeat(255), 'é'.repeat(127) + 'x']) {
    assert.equal(validateEndpointName(good), null, good);
  }
  const reasons: [string, string][] = [
    ['', 'the endpoint client name is empty'],
    ['x'.repeat(256), 'the endpoint client name is 256 UTF-8 bytes, longer than 255'],
    ['é'.repeat(128), 'the endpoint client name is 256 UTF-8 bytes, longer than 255'],
    ['dev\x00ice', 'the endpoint client name contains the character U+0000 at index 3'],
    ['dev\r\nX', 'the endpoint client name contains the character U+000D at index 3'],
    ['dev\x7f', 'the endpoint client name contains the character U+007F at index 3'],
    ['dev\u0085', 'the endpoint client name contains the character U+0085 at index 3'],
    ['gpj.\u202eexe', 'the endpoint client name contains the character U+202E at index 4'],
    ['bad\ufffdutf8', 'the endpoint client name contains U+FFFD (the bytes were not valid UTF-8) at index 3'],
    ['half\ud800', 'the endpoint client name contains a lone surrogate (not valid UTF-8) at index 4'],
  ];
  for (const [name, reason] of reasons) assert.equal(validateEndpointName(name), reason, JSON.stringify(name));
});

test('TS Core 1.1 §6.2.1/§6.2.2: Register and Update refuse bad ep, lt, lwm2m, b, sms and Q with the reason, device bytes escaped', () => {
  const refusal = (query: string[], update = false): string => {
    try {
      if (update) parseUpdate(query, undefined);
      else parseRegister(query, '');
    } catch (error) {
      assert.ok(error instanceof RegistrationRequestError);
      return error.message;
    }
    assert.fail(`accepted ${JSON.stringify(query)}`);
  };
  assert.equal(refusal(['ep=dev\x00']), 'the endpoint client name contains the character U+0000 at index 3');
  assert.equal(refusal(['ep=']), 'the endpoint client name is empty');
  assert.equal(refusal([]), 'the endpoint client name (ep) is missing');
  assert.equal(refusal(['ep=d', 'lt=1\x00']), 'lifetime "lt=1\\x00" is not a whole number of seconds');
  assert.equal(refusal(['ep=d', 'lt=9999999999']), 'lifetime 9999999999 s is above 4294967295 (an unsigned 32-bit number of seconds)');
  assert.equal(refusal(['ep=d', 'lwm2m=1.1\n']), 'LwM2M version "1.1\\x0a" is not supported (1.0, 1.1, 1.2)');
  assert.equal(refusal(['ep=d', 'b=U\x1b[2J']), 'binding "b=U\\x1b[2J" is not valid (U, T, S, N, with a trailing Q for 1.0 queue mode)');
  assert.equal(refusal(['ep=d', 'sms=+49 123']), 'SMS number "sms=+49 123" is not an MSISDN (up to 15 digits, optionally after "+")');
  assert.equal(refusal(['ep=d', 'Q=yes']), 'queue mode "Q" takes no value, got "Q=yes"');
  assert.equal(refusal(['sms=1234567890123456'], true), 'SMS number "sms=1234567890123456" is not an MSISDN (up to 15 digits, optionally after "+")');
  assert.equal(refusal(['Q=1'], true), 'queue mode "Q" takes no value, got "Q=1"');
  assert.match(refusal(['ep=d', 'b=' + 'U'.repeat(500) + 'x']), /^binding "b=U{40}…\(461 more characters\)" is not valid/);
  const ok = parseRegister(['ep=urn:imei:490154203237518', 'lt=4294967295', 'sms=+4915123456789', 'Q', 'b=UQ'], '</3/0>');
  assert.equal(ok.smsNumber, '+4915123456789');
  assert.equal(ok.queueMode, true);
  assert.equal(ok.lifetimeSec, 4294967295);
});

// ---------------------------------------------------------------- parser properties

const anyText = fc.string({ unit: 'binary', maxLength: 30 });
const valueArb = fc.oneof(
  anyText,
  fc.constantFrom('1.0', '1.1', '1.2', '1.3', 'U', 'UQ', 'T', 'SQ', 'X', '60', '0', '4294967296', '+4912345', '', 'dev', 'urn:uuid:1', '\x00', '\ufffd'),
  fc.string({ unit: 'grapheme', maxLength: 300 }),
);
const queryArb = fc.array(
  fc.oneof(
    fc.tuple(fc.constantFrom('ep', 'lt', 'lwm2m', 'b', 'sms', 'Q', 'd', 'apn'), valueArb).map(([n, v]) => `${n}=${v}`),
    fc.constantFrom('Q', 'ep', 'lt'),
    anyText,
  ),
  { maxLength: 7 },
);
const targetArb = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 70_000 }), fc.option(fc.integer({ min: 0, max: 70_000 }), { nil: undefined })).map(([o, i]) => (i === undefined ? `/${o}` : `/${o}/${i}`)),
  fc.constantFrom('/', '/lwm2m', '/3/0/1', '/a', ''),
  anyText,
);
const linkArb = fc
  .tuple(targetArb, fc.array(fc.oneof(fc.constantFrom(';ver=1.1', ';rt="oma.lwm2m"', ';ct=11543', ';ver="2.0"', ';obs'), anyText.map((t) => `;${t}`)), { maxLength: 3 }))
  .map(([target, attributes]) => `<${target}>${attributes.join('')}`);
const payloadArb = fc.oneof(fc.tuple(fc.array(linkArb, { maxLength: 6 }), fc.constantFrom(',', ', ', ',\n')).map(([links, separator]) => links.join(separator)), anyText, fc.constant(''));

/** Either a result or a RegistrationRequestError whose message prints as one bounded line. */
function outcome<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof RegistrationRequestError)) throw error;
    assert.doesNotMatch(error.message, CONTROL, 'a device string reached an error message unescaped');
    assert.ok(error.message.length < 600, `a ${error.message.length}-character error message`);
    return undefined;
  }
}

test('TS Core 1.1 §6.2.1: random Register queries and object links give parameters or a RegistrationRequestError, and an accepted endpoint name is valid', () => {
  let accepted = 0;
  fc.assert(
    fc.property(queryArb, payloadArb, (query, payload) => {
      const registered = outcome(() => parseRegister(query, payload));
      if (!registered) return;
      accepted++;
      assert.equal(validateEndpointName(registered.endpoint), null);
      assert.ok(registered.lifetimeSec >= 1 && registered.lifetimeSec <= 0xffffffff);
      if (registered.smsNumber !== null) assert.match(registered.smsNumber, /^\+?\d{1,15}$/);
      for (const object of registered.objects) assert.ok(object.objectId <= 65534 && (object.instanceId ?? 0) <= 65534);
    }),
    fuzzParameters(1500, 0.5),
  );
  assert.ok(accepted > 0, 'no Register was ever accepted: the arbitraries miss the valid space');
});

test('TS Core 1.1 §6.2.2: random Update queries and object links give parameters or a RegistrationRequestError', () => {
  fc.assert(
    fc.property(queryArb, fc.option(payloadArb, { nil: undefined }), (query, payload) => {
      const updated = outcome(() => parseUpdate(query, payload));
      if (updated?.smsNumber !== undefined && updated.smsNumber !== null) assert.match(updated.smsNumber, /^\+?\d{1,15}$/);
    }),
    fuzzParameters(1000, 0.5),
  );
});

// ---------------------------------------------------------------- the server over UDP

let dir: string;
let store: SqliteStore;
let coap: CoapServer;
let lwm2m: Lwm2mServer;
let port: number;
let socket: Socket;
const warnings: string[] = [];
const onWarning = (warning: Error): void => void warnings.push(warning.message);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'depot-registration-fuzz-'));
  store = openSqliteStore({ dataDir: dir });
  coap = new CoapServer({ transport: await UdpTransport.bind({ host: '127.0.0.1', port: 0 }) });
  // No contact after Register (the fuzzing socket answers no request): a very small lifetime sweep is not needed either.
  lwm2m = new Lwm2mServer({ store, coap: { coap }, allowUnsecured: true, requestTimeout: 200 });
  lwm2m.on('error', () => undefined);
  port = coap.endpoint.transport.address().port;
  socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  process.on('warning', onWarning);
});

after(async () => {
  process.off('warning', onWarning);
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  await lwm2m.close();
  await coap.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

let messageId = 0;
function request(options: CoapOption[], payload: Uint8Array): Promise<CoapMessage> {
  const id = ++messageId & 0xffff;
  const bytes = encode({ type: MessageType.CON, code: Method.POST, messageId: id, token: Uint8Array.of(id >> 8, id & 0xff), options, payload });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', listener);
      reject(new Error(`no answer to message ${id}`));
    }, 3000);
    const listener = (data: Buffer): void => {
      const reply = decode(data);
      if (reply.type !== MessageType.ACK || reply.messageId !== id) return;
      clearTimeout(timer);
      socket.off('message', listener);
      resolve(reply);
    };
    socket.on('message', listener);
    socket.send(bytes, port, '127.0.0.1');
  });
}

/** A Register query that is valid but for at most one parameter. */
const nearlyValidQueryArb = fc
  .tuple(fc.integer({ min: 0, max: 999 }), fc.option(fc.tuple(fc.constantFrom('ep', 'lt', 'lwm2m', 'b', 'sms', 'Q'), valueArb), { nil: undefined }))
  .map(([n, bad]) => {
    const query = new Map([['ep', `fuzz-${n}`], ['lt', '300'], ['lwm2m', '1.1'], ['b', 'U']]);
    if (bad) query.set(bad[0], bad[1]);
    return [...query].map(([name, value]) => `${name}=${value}`);
  });
/** Query options as raw bytes: UTF-8 of a string, or bytes that may not be UTF-8 at all. */
const rawQueryArb = fc.array(
  fc.oneof(
    queryArb.map((q) => q.map((s) => Buffer.from(s))),
    nearlyValidQueryArb.map((q) => q.map((s) => Buffer.from(s))),
    fc.array(fc.tuple(fc.constantFrom('ep=', 'lt=', 'b=', 'sms='), fc.uint8Array({ maxLength: 20 })).map(([n, v]) => Buffer.concat([Buffer.from(n), v])), { maxLength: 3 }),
  ),
  { maxLength: 1 },
).map((qs) => qs.flat().filter((q) => q.length <= 270));

test('TS Core 1.1 §6.2.1/§6.2.2: the LwM2M server answers random Register and Update requests over UDP with 2.xx or 4.xx and a printable diagnostic, never 5.00', async () => {
  const codes = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(rawQueryArb, fc.oneof(fc.constant(Buffer.from('</1/0>,</3/0>')), payloadArb.map((p) => Buffer.from(p)), fc.uint8Array({ maxLength: 60 })), fc.boolean(), async (query, payload, update) => {
      const options: CoapOption[] = [{ number: OptionNumber.UriPath, value: encodeString('rd') }];
      if (update) options.push({ number: OptionNumber.UriPath, value: encodeString('no-such-id') });
      options.push({ number: OptionNumber.ContentFormat, value: encodeUint(ContentFormat.LinkFormat) });
      for (const q of query) options.push({ number: OptionNumber.UriQuery, value: q });
      const reply = await request(options, payload);
      const code = `${reply.code >> 5}.${String(reply.code & 31).padStart(2, '0')}`;
      codes.set(code, (codes.get(code) ?? 0) + 1);
      assert.ok(reply.code === Code.Created || reply.code === Code.BadRequest || reply.code === Code.NotFound || reply.code === Code.RequestEntityTooLarge, `answered ${code}: ${Buffer.from(reply.payload).toString()}`);
      if (reply.code === Code.BadRequest) {
        const diagnostic = Buffer.from(reply.payload).toString();
        assert.ok(diagnostic.length > 0, '4.00 says what is wrong (RFC 7252 §5.5.2 diagnostic payload)');
        assert.doesNotMatch(diagnostic, CONTROL);
      }
    }),
    fuzzParameters(150, 0.05),
  );
  assert.ok(codes.has('2.01') && codes.has('4.00'), JSON.stringify(Object.fromEntries(codes)));
  for (const w of warnings) assert.doesNotMatch(w, CONTROL, 'a device string was logged unescaped');
  // Whatever was stored as an endpoint name is valid.
  for (const registration of (await store.registrations.list({ limit: 1000 })).items) assert.equal(validateEndpointName(registration.endpoint), null, JSON.stringify(registration.endpoint));
});
