/**
 * OMA DM accounts: per device (DevId), the client credentials the device proves and the nonce
 * Depot last gave it (OMA-TS-DM_Security-V1_2). The password is sealed at rest with the store's
 * secret key like PSK keys (secret-box.ts), bound to its row; the nonce is not a secret.
 */
import { StoreError } from '../errors.js';
import type { SecretBox } from '../secret-box.js';
import type { TimeInput } from '../types.js';
import { type Statements, invalid, requireText, run, toMs } from './common.js';

export interface OmaDmAccount {
  readonly deviceId: string;
  readonly clientUsername: string;
  readonly clientPassword: string;
  readonly clientNonce: Uint8Array;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface OmaDmAccountInput {
  readonly deviceId: string;
  readonly clientUsername: string;
  readonly clientPassword: string;
}

interface Row {
  device_id: string;
  client_username: string;
  client_password: Buffer;
  client_nonce: Buffer;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'device_id, client_username, client_password, client_nonce, created_at, updated_at';
/** DevIds are IMEI/MEID/serial numbers: short printable text. */
const MAX_ID = 128;
const MAX_SECRET = 256;

const SQL = {
  get: `SELECT ${COLUMNS} FROM omadm_accounts WHERE device_id = ?`,
  upsert: `INSERT INTO omadm_accounts (${COLUMNS}) VALUES (@device_id, @client_username, @client_password, @client_nonce, @now, @now)
    ON CONFLICT (device_id) DO UPDATE SET client_username = excluded.client_username, client_password = excluded.client_password,
    updated_at = excluded.updated_at`,
  setNonce: 'UPDATE omadm_accounts SET client_nonce = @nonce, updated_at = @now WHERE device_id = @device_id',
  list: `SELECT ${COLUMNS} FROM omadm_accounts WHERE device_id > ? ORDER BY device_id LIMIT ?`,
  remove: 'DELETE FROM omadm_accounts WHERE device_id = ?',
} as const;

function context(deviceId: string): string {
  return `omadm_accounts/client/${deviceId}`;
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
    return { deviceId: r.device_id, clientUsername: r.client_username, clientPassword, clientNonce: new Uint8Array(r.client_nonce), createdAt: r.created_at, updatedAt: r.updated_at };
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
    return run('set OMA DM nonce', () => this.s.transaction(() => this.s.get(SQL.setNonce).run({ device_id: deviceId, nonce: Buffer.from(nonce), now: toMs(now, 'now') }).changes > 0));
  }

  list(after = '', limit = 100): Promise<OmaDmAccount[]> {
    return run('list OMA DM accounts', () => (this.s.get(SQL.list).all(after, Math.min(Math.max(1, limit), 1000)) as Row[]).map((r) => this.fromRow(r)));
  }

  remove(deviceId: string): Promise<boolean> {
    return run('remove OMA DM account', () => this.s.transaction(() => this.s.get(SQL.remove).run(deviceId).changes > 0));
  }
}
