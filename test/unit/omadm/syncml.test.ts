/**
 * SyncML DM 1.2 messages (OMA-TS-DM_RepPro-V1_2): the model read from and written to XML and
 * WBXML, content-model errors naming the element, and the status code table.
 */
import { test } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { OmaDmFormatError, SyncMLFormatError } from '../../../src/omadm/errors.js';
import { describeStatus, isSuccessStatus, StatusCode } from '../../../src/omadm/status-codes.js';
import { decodeSyncML, encodeSyncML, encodingOfContentType, readSyncML } from '../../../src/omadm/syncml.js';
import type { Command, ContainerCommand, Item, ItemCommand, SyncMLEncoding, SyncMLMessage } from '../../../src/omadm/syncml.js';
import { parseXml } from '../../../src/omadm/xml.js';
import { binaryReplace, BINARY_VALUE, clientPackage1, clientPackage3, serverPackage2 } from './messages.js';
import { mutationArbitrary, xmlText } from './trees.js';

const ENCODINGS: SyncMLEncoding[] = ['xml', 'wbxml'];

function expectSyncMLError(body: string, path: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    readSyncML(parseXml(body));
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof SyncMLFormatError)) assert.fail(`expected SyncMLFormatError, got ${String(caught)}`);
  assert.equal(caught.where, path, caught.message);
  assert.match(caught.message, pattern);
}

const HDR = '<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>1</SessionID><MsgID>1</MsgID><Target><LocURI>a</LocURI></Target><Source><LocURI>b</LocURI></Source></SyncHdr>';
const message = (body: string, hdr = HDR): string => `<SyncML xmlns="SYNCML:SYNCML1.2">${hdr}<SyncBody>${body}</SyncBody></SyncML>`;

test('OMA-TS-DM_Protocol-V1_2 Packages 1, 2 and 3 round-trip through XML and WBXML unchanged', () => {
  for (const msg of [clientPackage1, serverPackage2, clientPackage3]) {
    for (const encoding of ENCODINGS) assert.deepEqual(decodeSyncML(encodeSyncML(msg, encoding), encoding), msg, `${encoding} ${msg.header.msgId}`);
    assert.deepEqual(decodeSyncML(encodeSyncML(msg, 'wbxml', { stringTable: true }), 'wbxml'), msg);
  }
});

test('RepPro <Data>: binary values are OPAQUE bytes in WBXML; an OPAQUE text value (as libwbxml writes Item Data) reads as text', () => {
  assert.deepEqual(decodeSyncML(encodeSyncML(binaryReplace, 'wbxml'), 'wbxml'), binaryReplace);
  // XML cannot carry these bytes: the writer says to use b64.
  assert.throws(() => encodeSyncML(binaryReplace, 'xml'), /Format b64/);
  const asText = { ...binaryReplace, commands: [{ kind: 'Replace', cmdId: '1', items: [{ target: { locUri: './x' }, data: Uint8Array.from(Buffer.from('plain text')) }] }] } as SyncMLMessage;
  const decoded = decodeSyncML(encodeSyncML(asText, 'wbxml'), 'wbxml');
  assert.equal((decoded.commands[0] as ItemCommand).items[0]!.data, 'plain text');
  assert.ok(BINARY_VALUE.length > 0);
});

test('RepPro <SyncHdr>: VerDTD 1.2, VerProto DM/1.2 and the mandatory elements', () => {
  expectSyncMLError(message('', HDR.replace('<VerDTD>1.2', '<VerDTD>1.1')), 'SyncML/SyncHdr/VerDTD', /VerDTD "1.1" is not 1.2/);
  expectSyncMLError(message('', HDR.replace('DM/1.2', 'DM/1.1')), 'SyncML/SyncHdr/VerProto', /not DM\/1.2/);
  expectSyncMLError(message('', HDR.replace('<SessionID>1</SessionID>', '')), 'SyncML/SyncHdr', /<SessionID> is missing/);
  expectSyncMLError(message('', HDR.replace('<MsgID>1</MsgID>', '<MsgID>1</MsgID><MsgID>2</MsgID>')), 'SyncML/SyncHdr/MsgID', /appears 2 times/);
  expectSyncMLError(message('', HDR.replace('<LocURI>a</LocURI>', '<LocURI></LocURI>')), 'SyncML/SyncHdr/Target/LocURI', /empty/);
  expectSyncMLError('<SyncML><SyncBody/></SyncML>', 'SyncML', /<SyncHdr> is missing/);
  expectSyncMLError('<SyncBody/>', 'SyncBody', /not <SyncML>/);
});

test('RepPro command content models: what is missing, repeated or not allowed is named with its path', () => {
  expectSyncMLError(message('<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>2OO</Data></Status>'), 'SyncML/SyncBody/Status[1]/Data', /status code "2OO"/);
  expectSyncMLError(message('<Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Data>200</Data></Status>'), 'SyncML/SyncBody/Status[1]', /<Cmd> is missing/);
  expectSyncMLError(message('<Exec><CmdID>1</CmdID><Item><Target><LocURI>./a</LocURI></Target></Item><Item><Target><LocURI>./b</LocURI></Target></Item></Exec>'), 'SyncML/SyncBody/Exec[1]', /2 <Item>, exactly 1/);
  expectSyncMLError(message('<Get><CmdID>1</CmdID></Get>'), 'SyncML/SyncBody/Get[1]', /0 <Item>, at least 1/);
  expectSyncMLError(message('<Get><CmdID>0</CmdID><Item/></Get>'), 'SyncML/SyncBody/Get[1]/CmdID', /not a command identifier/);
  expectSyncMLError(message('<Replace><CmdID>1</CmdID><Item><Data><Item/></Data></Item></Replace>'), 'SyncML/SyncBody/Replace[1]/Item[1]/Data', /must hold text/);
  expectSyncMLError(message('<Replace><CmdID>1</CmdID><Item><Data>x</Data><Cmd>y</Cmd></Item></Replace>'), 'SyncML/SyncBody/Replace[1]/Item[1]/Cmd', /not allowed in <Item>/);
  expectSyncMLError(message('<Replace><CmdID>1</CmdID><Item><Meta><Size>12a</Size></Meta></Item></Replace>'), 'SyncML/SyncBody/Replace[1]/Item[1]/Meta/Size', /not a non-negative integer/);
  expectSyncMLError(message('<Atomic><CmdID>1</CmdID><Sequence><CmdID>2</CmdID><Atomic><CmdID>3</CmdID><Get><CmdID>4</CmdID><Item/></Get></Atomic></Sequence></Atomic>'), 'SyncML/SyncBody/Atomic[1]/Sequence[1]/Atomic[1]', /nested in <Atomic>/);
  expectSyncMLError(message('<Sequence><CmdID>1</CmdID></Sequence>'), 'SyncML/SyncBody/Sequence[1]', /holds no command/);
  expectSyncMLError(message('<Final/><Get><CmdID>1</CmdID><Item/></Get>'), 'SyncML/SyncBody/Get[1]', /after <Final\/>/);
  // Positions count per tag, as in XPath: the second <Replace>, after a <Get>.
  expectSyncMLError(message('<Get><CmdID>1</CmdID><Item/></Get><Replace><CmdID>2</CmdID><Item/></Replace><Replace><CmdID>3</CmdID></Replace>'), 'SyncML/SyncBody/Replace[2]', /0 <Item>/);
  expectSyncMLError(message('<MsgID>1</MsgID>'), 'SyncML/SyncBody/MsgID[1]', /not a command/);
  expectSyncMLError(message('<Final>x</Final>'), 'SyncML/SyncBody/Final[1]', /must be empty/);
});

test('RepPro <Sequence>: commands keep document order; DS-only commands are kept as Unsupported for a 406 Status', () => {
  const msg = readSyncML(parseXml(message('<Sequence><CmdID>1</CmdID><Replace><CmdID>2</CmdID><Item/></Replace><Get><CmdID>3</CmdID><Item/></Get><Replace><CmdID>4</CmdID><Item/></Replace></Sequence><Sync><CmdID>5</CmdID></Sync>')));
  const sequence = msg.commands[0] as ContainerCommand;
  assert.deepEqual(sequence.commands.map((c) => c.cmdId), ['2', '3', '4']);
  assert.deepEqual(msg.commands[1], { kind: 'Unsupported', tag: 'Sync', cmdId: '5' });
  assert.equal(msg.final, false);
});

test('RepPro response status codes: names, classes and the codes DM sessions use', () => {
  assert.equal(describeStatus(StatusCode.AuthenticationAccepted), '212 Authentication accepted');
  assert.equal(describeStatus(StatusCode.ChunkedItemAccepted), '213 Chunked item accepted and buffered');
  assert.equal(describeStatus(407), '407 Missing credentials');
  assert.equal(describeStatus(516), '516 Atomic roll back failed');
  assert.equal(describeStatus(499), '499 (4xx, unknown)');
  for (const code of [200, 212, 213, 214, 215, 401, 403, 404, 405, 406, 407, 412, 413, 415, 500, 506, 516]) assert.doesNotMatch(describeStatus(code), /unknown/);
  assert.ok(isSuccessStatus(212) && !isSuccessStatus(401));
});

test('Content-Type names the encoding (OMA-TS-DM_RepPro-V1_2 media types)', () => {
  assert.equal(encodingOfContentType('application/vnd.syncml.dm+wbxml'), 'wbxml');
  assert.equal(encodingOfContentType('Application/Vnd.SyncML.DM+XML; charset=UTF-8'), 'xml');
  assert.equal(encodingOfContentType('application/xml'), undefined);
});

const itemArbitrary: fc.Arbitrary<Item> = fc.record(
  {
    target: fc.record({ locUri: xmlText.map((s) => `./${s}`) }),
    meta: fc.record({ format: fc.constantFrom('chr', 'int', 'node', 'b64'), size: fc.nat() }, { requiredKeys: ['format'] }),
    data: xmlText,
    moreData: fc.constant(true),
  },
  { requiredKeys: [] },
);

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constantFrom('Add', 'Copy', 'Delete', 'Get', 'Replace' as const), cmdId: fc.integer({ min: 1, max: 999 }).map(String), items: fc.array(itemArbitrary, { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('Alert' as const), cmdId: fc.constant('7'), code: fc.constantFrom(1200, 1201, 1222, 1226) }),
  fc.record({ kind: fc.constant('Status' as const), cmdId: fc.constant('9'), msgRef: fc.constant('1'), cmdRef: fc.constant('3'), cmd: fc.constantFrom('Get', 'Replace'), code: fc.integer({ min: 100, max: 599 }) }),
);

test('property: generated messages survive encode → decode in both encodings', () => {
  fc.assert(
    fc.property(fc.array(commandArbitrary, { maxLength: 5 }), fc.boolean(), xmlText, (commands, final, sessionText) => {
      // structuredClone: fast-check may build null-prototype records, which deepEqual tells apart.
      const msg: SyncMLMessage = structuredClone({ ...clientPackage1, header: { ...clientPackage1.header, sessionId: `s${sessionText.trim()}` }, commands, final });
      for (const encoding of ENCODINGS) assert.deepEqual(decodeSyncML(encodeSyncML(msg, encoding), encoding), msg);
    }),
    { numRuns: 200 },
  );
});

test('property: mutated and truncated messages decode or throw an OmaDmFormatError, nothing else', () => {
  for (const encoding of ENCODINGS) {
    const sample = encodeSyncML(serverPackage2, encoding);
    fc.assert(
      fc.property(mutationArbitrary(sample), (mutated) => {
        try {
          decodeSyncML(mutated, encoding);
        } catch (error) {
          if (!(error instanceof OmaDmFormatError)) throw error;
        }
      }),
      { numRuns: 1500 },
    );
  }
});
