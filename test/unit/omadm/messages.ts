/**
 * Sample OMA DM 1.2 messages shaped like the packages of OMA-TS-DM_Protocol-V1_2 (a client's
 * Package 1, a server's Package 2, a client's Package 3), shared by the unit and interop tests.
 */
import type { SyncMLMessage } from '../../../src/omadm/syncml.js';
import { AlertCode, StatusCode } from '../../../src/omadm/status-codes.js';

const SERVER_URI = 'https://dm.depot.example/omadm';
const DEVICE_URI = 'IMEI:493005100592800';

/** Package 1: client-initiated session (Alert 1201), DevInfo in a Replace, MD5 credentials (DM_Protocol, Package 1). */
export const clientPackage1: SyncMLMessage = {
  header: {
    verDTD: '1.2',
    verProto: 'DM/1.2',
    sessionId: '1A2F',
    msgId: '1',
    target: { locUri: SERVER_URI },
    source: { locUri: DEVICE_URI, locName: 'depot-device' },
    cred: { meta: { format: 'b64', type: 'syncml:auth-md5' }, data: 'Zz6EivR3yeaaENcRN6lpAQ==' },
    meta: { maxMsgSize: 10000, maxObjSize: 512000 },
  },
  commands: [
    { kind: 'Alert', cmdId: '1', code: AlertCode.ClientInitiatedManagement },
    {
      kind: 'Replace',
      cmdId: '2',
      items: [
        { source: { locUri: './DevInfo/DevId' }, meta: { format: 'chr' }, data: DEVICE_URI },
        { source: { locUri: './DevInfo/Man' }, data: 'Nokia & Sons <Oy>' },
        { source: { locUri: './DevInfo/Mod' }, data: 'N95 8GB' },
        { source: { locUri: './DevInfo/DmV' }, data: '1.2' },
        { source: { locUri: './DevInfo/Lang' }, data: 'fi-FI' },
      ],
    },
  ],
  final: true,
};

/** Package 2: the server's Status for the header and commands, then Get, Replace, Exec (DM_Protocol, Package 2). */
export const serverPackage2: SyncMLMessage = {
  header: {
    verDTD: '1.2',
    verProto: 'DM/1.2',
    sessionId: '1A2F',
    msgId: '1',
    target: { locUri: DEVICE_URI },
    source: { locUri: SERVER_URI },
    respUri: `${SERVER_URI}?s=1A2F`,
  },
  commands: [
    {
      kind: 'Status',
      cmdId: '1',
      msgRef: '1',
      cmdRef: '0',
      cmd: 'SyncHdr',
      targetRefs: [SERVER_URI],
      sourceRefs: [DEVICE_URI],
      chal: { meta: { format: 'b64', type: 'syncml:auth-md5', nextNonce: 'ZG9uJ3QgdHJ1c3QgbWU=' } },
      code: StatusCode.AuthenticationAccepted,
    },
    { kind: 'Status', cmdId: '2', msgRef: '1', cmdRef: '1', cmd: 'Alert', code: StatusCode.Ok },
    { kind: 'Status', cmdId: '3', msgRef: '1', cmdRef: '2', cmd: 'Replace', code: StatusCode.Ok },
    { kind: 'Get', cmdId: '4', items: [{ target: { locUri: './DevDetail/SwV' } }, { target: { locUri: './DevDetail/FwV' } }] },
    {
      kind: 'Replace',
      cmdId: '5',
      items: [{ target: { locUri: './DMAcc/depot/AppAddr/1/Addr' }, meta: { format: 'chr', type: 'text/plain' }, data: SERVER_URI }],
    },
    {
      kind: 'Sequence',
      cmdId: '6',
      commands: [
        { kind: 'Add', cmdId: '7', items: [{ target: { locUri: './SCOMO/Download/depot-client' }, meta: { format: 'node' } }] },
        {
          kind: 'Exec',
          cmdId: '8',
          correlator: 'job-42',
          items: [{ target: { locUri: './SCOMO/Download/depot-client/Operations/DownloadInstall' }, meta: { format: 'chr', type: 'text/plain' }, data: '' }],
        },
      ],
    },
  ],
  final: true,
};

/** Package 3: the client's Status and Results, one chunk of a large object with MoreData. */
export const clientPackage3: SyncMLMessage = {
  header: {
    verDTD: '1.2',
    verProto: 'DM/1.2',
    sessionId: '1A2F',
    msgId: '2',
    target: { locUri: SERVER_URI },
    source: { locUri: DEVICE_URI },
  },
  commands: [
    { kind: 'Status', cmdId: '1', msgRef: '1', cmdRef: '0', cmd: 'SyncHdr', targetRefs: [DEVICE_URI], sourceRefs: [SERVER_URI], code: StatusCode.Ok },
    { kind: 'Status', cmdId: '2', msgRef: '1', cmdRef: '4', cmd: 'Get', targetRefs: ['./DevDetail/SwV'], code: StatusCode.Ok },
    { kind: 'Status', cmdId: '3', msgRef: '1', cmdRef: '8', cmd: 'Exec', code: StatusCode.AcceptedForProcessing },
    {
      kind: 'Results',
      cmdId: '4',
      msgRef: '1',
      cmdRef: '4',
      items: [
        { source: { locUri: './DevDetail/SwV' }, meta: { format: 'chr', type: 'text/plain' }, data: 'V 21.0.004 « ünïcödé » 😀' },
        { source: { locUri: './DevDetail/FwV' }, meta: { format: 'chr', size: 4096 }, data: 'first chunk', moreData: true },
      ],
    },
    {
      kind: 'Alert',
      cmdId: '5',
      code: AlertCode.GenericAlert,
      correlator: 'job-42',
      items: [{ source: { locUri: './SCOMO/Download/depot-client/Operations/DownloadInstall' }, meta: { type: 'org.openmobilealliance.dm.softwarecomponent.OperationComplete', format: 'int', mark: 'critical' }, data: '200' }],
    },
  ],
  final: false,
};

/** Binary node values: OPAQUE in WBXML (WAP-192-WBXML §5.8.4.6) with Format bin. */
export const BINARY_VALUE = Uint8Array.from([0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff, 0x3c, 0x26, 0x5d, 0x5d, 0x3e]);

export const binaryReplace: SyncMLMessage = {
  header: { verDTD: '1.2', verProto: 'DM/1.2', sessionId: '7', msgId: '3', target: { locUri: DEVICE_URI }, source: { locUri: SERVER_URI } },
  commands: [{ kind: 'Replace', cmdId: '1', items: [{ target: { locUri: './Vendor/Depot/Cert' }, meta: { format: 'bin', type: 'application/octet-stream', size: BINARY_VALUE.length }, data: BINARY_VALUE }] }],
  final: true,
};
