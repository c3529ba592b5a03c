/**
 * OMA DM accounts: per device (DevId), the client credentials the device proves and the nonce
 * Depot last gave it (OMA-TS-DM_Security-V1_2). The password is sealed at rest with the store's
 * secret key like PSK keys (secret-box.ts), bound to its row; the nonce is not a secret.
 *
 * Server authentication goes the other way (OMA-TS-DM_Security-V1_2 "Authentication", the server
 * proves itself to the client): the account may hold Depot's server ID and server password towards
 * the device (sealed too, context omadm_accounts/server/<device_id>) and the nonce the device gave
 * Depot in its last Chal. When the account has none of its own, the server credentials the OMA DM
 * bootstrap made for the device's Client Provisioning document (omadm_bootstrap) are used.
 */
import { StoreError } from '../errors.js';
import type { SecretBox } from '../secret-box.js';
import type { TimeInput } from '../types.js';
import { durableWrite } from './batch.js';
import { type Statements, invalid, requireText, run, toMs } from './common.js';
import { serverContext as bootstrapServerContext } from './omadm-bootstrap.js';

export interface OmaDmAccount {
  readonly deviceId: string;
  readonly clientUsername: string;
  readonly clientPassword: string;
  readonly clientNonce: Uint8Array;
  /** Depot's credentials towards the device (server authentication), when it has any. */
  readonly serverId?: string;
  readonly serverPassword?: string;
  /** The nonce the device gave Depot (its Chal); Depot's next Cred or MAC is over it. */
  readonly serverNonce?: Uint8Array;
  /** Where the server credentials come from: set on the account, or made by the OMA DM bootstrap. */
  readonly serverCredentialsFrom?: 'account' | 'bootstrap';
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface OmaDmAccountInput {
  readonly deviceId: string;
  readonly clientUsername: string;
  readonly clientPassword: string;
}

/** Depot's server credentials towards one device; the nonce defaults to empty until the device challenges. */
export interface OmaDmServerCredentialsInput {
  readonly serverId: string;
  readonly serverPassword: string;
  readonly serverNonce?: Uint8Array;
}

interface Row {
  device_id: string;
  client_username: string;
  client_password: Buffer;
  client_nonce: Buffer;
  server_id: string | null;
  server_password: Buffer | null;
  server_nonce: Buffer | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'device_id, client_username, client_password, client_nonce, created_at, updated_at';
const SELECTED = `${COLUMNS}, server_id, server_password, server_nonce`;
/** DevIds are IMEI/MEID/serial numbers: short printable text. */
const MAX_ID = 128;
const MAX_SECRET = 256;

const SQL = {
  get: `SELECT ${SELECTED} FROM omadm_accounts WHERE device_id = ?`,
  bootstrap: 'SELECT msisdn, server_id, server_password, server_nonce FROM omadm_bootstrap WHERE device_id = ?',
  setServer: 'UPDATE omadm_accounts SET server_id = @server_id, server_password = @server_password, server_nonce = @server_nonce, updated_at = @now WHERE device_id = @device_id',
  clearServer: 'UPDATE omadm_accounts SET server_id = NULL, server_password = NULL, server_nonce = NULL, updated_at = @now WHERE device_id = @device_id',
  setServerNonce: 'UPDATE omadm_accounts SET server_nonce = @nonce, updated_at = @now WHERE device_id = @device_id',
  setBootstrapNonce: 'UPDATE omadm_bootstrap SET server_nonce = @nonce, updated_at = @now WHERE device_id = @device_id AND server_id IS NOT NULL',
  upsert: `INSERT INTO omadm_accounts (${COLUMNS}) VALUES (@device_id, @client_username, @client_password, @client_nonce, @now, @now)
    ON CONFLICT (device_id) DO UPDATE SET client_username = excluded.client_username, client_password = excluded.client_password,
    updated_at = excluded.updated_at`,
  setNonce: 'UPDATE omadm_accounts SET client_nonce = @nonce, updated_at = @now WHERE device_id = @device_id',
  list: `SELECT ${SELECTED} FROM omadm_accounts WHERE device_id > ? ORDER BY device_id LIMIT ?`,
  remove: 'DELETE FROM omadm_accounts WHERE device_id = ?',
} as const;

function context(deviceId: string): string {
  return `omadm_accounts/client/${deviceId}`;
}

function serverContext(deviceId: string): string {
  return `omadm_accounts/server/${deviceId}`;
}

function checkText(value: string, what: string, max: number): string {
  requireText(value, what);
  if (value.length > max || /\p{Cc}/u.test(value)) throw invalid(`${what} must be at most ${max} printable characters`);
  return value;
}

export class SqliteOmaDmAccountRepository {
  constructor(
    private readonly s: Statements,
    private readonly secrets: SecretBox,
  ) {}

  private fromRow(r: Row): OmaDmAccount {
    const plain = this.secrets.open(r.client_password, context(r.device_id));
    if (!plain) throw new StoreError('STORE_CORRUPT', `the password of OMA DM account ${r.device_id} does not open with the store's secret key`);
    const clientPassword = plain.toString('utf8');
    plain.fill(0);
    const base = { deviceId: r.device_id, clientUsername: r.client_username, clientPassword, clientNonce: new Uint8Array(r.client_nonce), createdAt: r.created_at, updatedAt: r.updated_at };
    const server = this.serverOf(r);
    return server === undefined ? base : { ...base, ...server };
  }

  /** The account's own server credentials, else the bootstrap's for this DevId; the newest nonce the device gave wins. */
  private serverOf(r: Row): Pick<OmaDmAccount, 'serverId' | 'serverPassword' | 'serverNonce' | 'serverCredentialsFrom'> | undefined {
    if (r.server_id !== null && r.server_password !== null) {
      const plain = this.secrets.open(r.server_password, serverContext(r.device_id));
      if (!plain) throw new StoreError('STORE_CORRUPT', `the server password of OMA DM account ${r.device_id} does not open with the store's secret key`);
      const serverPassword = plain.toString('utf8');
      plain.fill(0);
      return { serverId: r.server_id, serverPassword, serverNonce: new Uint8Array(r.server_nonce ?? Buffer.alloc(0)), serverCredentialsFrom: 'account' };
    }
    const b = this.s.get(SQL.bootstrap).get(r.device_id) as { msisdn: string; server_id: string | null; server_password: Buffer | null; server_nonce: Buffer | null } | undefined;
    if (b === undefined || b.server_id === null || b.server_password === null) return undefined;
    const plain = this.secrets.open(b.server_password, bootstrapServerContext(b.msisdn));
    if (!plain) throw new StoreError('STORE_CORRUPT', `the server password of OMA DM bootstrap for ${r.device_id} does not open with the store's secret key`);
    const serverPassword = plain.toString('utf8');
    plain.fill(0);
    const nonce = r.server_nonce ?? b.server_nonce ?? Buffer.alloc(0);
    return { serverId: b.server_id, serverPassword, serverNonce: new Uint8Array(nonce), serverCredentialsFrom: 'bootstrap' };
  }

  /**
   * Sets (or with null clears) Depot's own server credentials towards a device; false if there is no
   * such account. Without a nonce the first digest is over an empty one, which the device answers
   * with a Chal carrying the nonce to use (OMA-TS-DM_Security-V1_2).
   */
  setServerCredentials(deviceId: string, input: OmaDmServerCredentialsInput | null, now: TimeInput): Promise<boolean> {
    return run('set OMA DM server credentials', () => {
      const t = toMs(now, 'now');
      if (input === null) return this.s.transaction(() => this.s.get(SQL.clearServer).run({ device_id: deviceId, now: t }).changes > 0);
      checkText(input.serverId, 'serverId', MAX_ID);
      if (typeof input.serverPassword !== 'string' || input.serverPassword.length === 0 || input.serverPassword.length > MAX_SECRET) throw invalid(`serverPassword must be 1 to ${MAX_SECRET} characters`);
      if (input.serverNonce !== undefined && input.serverNonce.length > MAX_SECRET) throw invalid(`serverNonce must be at most ${MAX_SECRET} bytes`);
      const sealed = this.secrets.seal(Buffer.from(input.serverPassword, 'utf8'), serverContext(deviceId));
      return this.s.transaction(() => this.s.get(SQL.setServer).run({ device_id: deviceId, server_id: input.serverId, server_password: sealed, server_nonce: Buffer.from(input.serverNonce ?? new Uint8Array()), now: t }).changes > 0);
    });
  }

  /**
   * Durable: the nonce a device gave Depot in its Chal (server authentication, NextNonce); Depot's
   * next Cred is over it. The bootstrap's copy follows, so notification digests use it too.
   */
  setServerNonce(deviceId: string, nonce: Uint8Array, now: TimeInput): Promise<boolean> {
    let params: { device_id: string; nonce: Buffer; now: number };
    try {
      if (nonce.length > MAX_SECRET) throw invalid(`a server nonce must be at most ${MAX_SECRET} bytes`);
      params = { device_id: deviceId, nonce: Buffer.from(nonce), now: toMs(now, 'now') };
    } catch (error) {
      return run('set OMA DM server nonce', () => { throw error; });
    }
    // Group-committed with the other writes of this turn, on disk (FULL) before the promise settles.
    return durableWrite(this.s, 'set OMA DM server nonce', () => {
      this.s.get(SQL.setBootstrapNonce).run(params);
      return this.s.get(SQL.setServerNonce).run(params).changes > 0;
    });
  }

  /** Adds or replaces an account; a new account's first nonce is random (the device learns it from the first 401's Chal). */
  put(input: OmaDmAccountInput, initialNonce: Uint8Array, now: TimeInput): Promise<OmaDmAccount> {
    return run('put OMA DM account', () => {
      const deviceId = checkText(input.deviceId, 'deviceId', MAX_ID);
      checkText(input.clientUsername, 'clientUsername', MAX_ID);
      if (typeof input.clientPassword !== 'string' || input.clientPassword.length === 0 || input.clientPassword.length > MAX_SECRET) throw invalid(`clientPassword must be 1 to ${MAX_SECRET} characters`);
      const t = toMs(now, 'now');
      const sealed = this.secrets.seal(Buffer.from(input.clientPassword, 'utf8'), context(deviceId));
      return this.s.transaction(() => {
        this.s.get(SQL.upsert).run({ device_id: deviceId, client_username: input.clientUsername, client_password: sealed, client_nonce: Buffer.from(initialNonce), now: t });
        return this.fromRow(this.s.get(SQL.get).get(deviceId) as Row);
      });
    });
  }

  get(deviceId: string): Promise<OmaDmAccount | null> {
    return run('get OMA DM account', () => {
      const row = this.s.get(SQL.get).get(deviceId) as Row | undefined;
      return row ? this.fromRow(row) : null;
    });
  }

  /** Durable: the device's next digest is over this nonce, so it must be stored before the reply that carries it goes out. */
  setNonce(deviceId: string, nonce: Uint8Array, now: TimeInput): Promise<boolean> {
    let params: { device_id: string; nonce: Buffer; now: number };
    try {
      params = { device_id: deviceId, nonce: Buffer.from(nonce), now: toMs(now, 'now') };
    } catch (error) {
      return run('set OMA DM nonce', () => { throw error; });
    }
    // Group-committed with the other writes of this turn (every session's nonce in one fsync), on disk before the promise settles.
    return durableWrite(this.s, 'set OMA DM nonce', () => this.s.get(SQL.setNonce).run(params).changes > 0);
  }

  list(after = '', limit = 100): Promise<OmaDmAccount[]> {
    return run('list OMA DM accounts', () => (this.s.get(SQL.list).all(after, Math.min(Math.max(1, limit), 1000)) as Row[]).map((r) => this.fromRow(r)));
  }

  remove(deviceId: string): Promise<boolean> {
    return run('remove OMA DM account', () => this.s.transaction(() => this.s.get(SQL.remove).run(deviceId).changes > 0));
  }
}
