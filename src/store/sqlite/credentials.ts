import { StoreError } from '../errors.js';
import { SecretKey } from '../secret.js';
import { type SecretBox, secretContext } from '../secret-box.js';
import {
  CREDENTIAL_KINDS,
  type Credential,
  type CredentialInput,
  type CredentialKind,
  type CredentialRepository,
  type PskCredential,
  type TimeInput,
} from '../types.js';
import { type Statements, invalid, requireText, run, toMs } from './common.js';

interface Row {
  kind: CredentialKind;
  identity: string;
  endpoint: string;
  secret: Buffer | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'kind, identity, endpoint, secret, created_at, updated_at';

const SQL = {
  find: `SELECT ${COLUMNS} FROM credentials WHERE kind = ? AND identity = ?`,
  endpointOf: 'SELECT endpoint FROM credentials WHERE kind = ? AND identity = ?',
  insert: `INSERT INTO credentials (${COLUMNS}, sealed) VALUES (@kind, @identity, @endpoint, @secret, @now, @now, 1)
    RETURNING ${COLUMNS}`,
  /** Only ever for the same endpoint: the caller has checked the holder. */
  updateSecret: `UPDATE credentials SET secret = @secret, sealed = 1, updated_at = @now
    WHERE kind = @kind AND identity = @identity AND endpoint = @endpoint RETURNING ${COLUMNS}`,
  byEndpoint: `SELECT ${COLUMNS} FROM credentials WHERE endpoint = ? ORDER BY kind, identity`,
  remove: 'DELETE FROM credentials WHERE kind = ? AND identity = ?',
  removeEndpoint: 'DELETE FROM credentials WHERE endpoint = ?',
  removeOtherPsks: "DELETE FROM credentials WHERE endpoint = ? AND kind = 'psk' AND identity <> ?",
  hasAny: `SELECT EXISTS (SELECT 1 FROM credentials WHERE endpoint = @endpoint)
    OR EXISTS (SELECT 1 FROM bootstrap_credentials WHERE endpoint = @endpoint)`,
  bootstrapPsk: "SELECT 1 FROM bootstrap_credentials WHERE kind = 'psk' AND identity = ?",
} as const;

/** A row as the record the layers above see; the key is opened and wrapped at once. */
function fromRow(r: Row, secrets: SecretBox): Credential {
  const base = { identity: r.identity, endpoint: r.endpoint, createdAt: r.created_at, updatedAt: r.updated_at };
  if (r.kind === 'psk') {
    if (r.secret === null) throw new StoreError('STORE_CORRUPT', `PSK credential ${r.identity} has no key`);
    const plain = secrets.open(r.secret, secretContext('credentials', r.kind, r.identity));
    if (!plain) throw new StoreError('STORE_CORRUPT', `the key of PSK credential ${r.identity} does not open with the store's secret key: the row was altered or copied from another row or store`);
    const key = new SecretKey(plain);
    plain.fill(0);
    return { kind: 'psk', ...base, key };
  }
  return { kind: r.kind, ...base };
}

/** A copy of the key for binding into SQL; the caller zeroes it after use. */
function keyBytes(key: Uint8Array | SecretKey): Buffer {
  if (key instanceof SecretKey) {
    const revealed = key.reveal();
    const copy = Buffer.from(revealed);
    revealed.fill(0);
    if (copy.length === 0) throw invalid('a PSK key must be non-empty bytes');
    return copy;
  }
  if (!(key instanceof Uint8Array) || key.length === 0) throw invalid('a PSK key must be non-empty bytes');
  return Buffer.from(key);
}

function checkKind(kind: CredentialKind): CredentialKind {
  if (!CREDENTIAL_KINDS.includes(kind)) throw invalid(`unknown credential kind ${String(kind)}`);
  return kind;
}

/** Hash identities are compared as lowercase hex, whatever case they were given in. */
function normalizeIdentity(kind: CredentialKind, identity: string): string {
  requireText(identity, 'identity');
  if (kind === 'x509-sha256' || kind === 'rpk-sha256') {
    if (!/^[0-9a-fA-F]{64}$/.test(identity)) throw invalid(`a ${kind} identity must be 64 hex digits`);
    return identity.toLowerCase();
  }
  return identity;
}

function describe(kind: CredentialKind): string {
  switch (kind) {
    case 'psk': return 'PSK identity';
    case 'x509-subject': return 'certificate subject';
    case 'x509-sha256': return 'certificate fingerprint';
    case 'rpk-sha256': return 'raw public key';
  }
}

export class SqliteCredentialRepository implements CredentialRepository {
  constructor(
    private readonly s: Statements,
    private readonly secrets: SecretBox,
  ) {}

  bind(endpoint: string, credential: CredentialInput, now: TimeInput): Promise<Credential> {
    return run('bind credential', () => {
      requireText(endpoint, 'endpoint');
      const kind = checkKind(credential.kind);
      const identity = normalizeIdentity(kind, credential.identity);
      const secret = credential.kind === 'psk' ? keyBytes(credential.key) : null;
      const t = toMs(now, 'now');
      try {
        return this.s.transaction(() => this.put(endpoint, kind, identity, secret, t));
      } finally {
        secret?.fill(0);
      }
    });
  }

  findPsk(identity: string): Promise<PskCredential | null> {
    return run('find PSK', () => {
      const row = this.s.get(SQL.find).get('psk', identity) as Row | undefined;
      return row ? (fromRow(row, this.secrets) as PskCredential) : null;
    });
  }

  find(kind: CredentialKind, identity: string): Promise<Credential | null> {
    return run('find credential', () => {
      checkKind(kind);
      const id = kind === 'x509-sha256' || kind === 'rpk-sha256' ? identity.toLowerCase() : identity;
      const row = this.s.get(SQL.find).get(kind, id) as Row | undefined;
      return row ? fromRow(row, this.secrets) : null;
    });
  }

  endpointOf(kind: CredentialKind, identity: string): Promise<string | null> {
    return run('find credential', () => {
      checkKind(kind);
      const id = kind === 'x509-sha256' || kind === 'rpk-sha256' ? identity.toLowerCase() : identity;
      const endpoint = this.s.get(SQL.endpointOf).pluck().get(kind, id) as string | undefined;
      return endpoint ?? null;
    });
  }

  listByEndpoint(endpoint: string): Promise<Credential[]> {
    return run('list credentials', () => (this.s.get(SQL.byEndpoint).all(endpoint) as Row[]).map((r) => fromRow(r, this.secrets)));
  }

  rotatePsk(endpoint: string, identity: string, key: Uint8Array | SecretKey, now: TimeInput): Promise<PskCredential> {
    return run('rotate PSK', () => {
      requireText(endpoint, 'endpoint');
      const id = normalizeIdentity('psk', identity);
      const secret = keyBytes(key);
      const t = toMs(now, 'now');
      try {
        return this.s.transaction(() => {
          this.refuseOtherHolder(endpoint, 'psk', id);
          this.s.get(SQL.removeOtherPsks).run(endpoint, id);
          return this.put(endpoint, 'psk', id, secret, t) as PskCredential;
        });
      } finally {
        secret.fill(0);
      }
    });
  }

  hasCredentials(endpoint: string): Promise<boolean> {
    return run('look up credentials', () => this.s.get(SQL.hasAny).pluck().get({ endpoint }) === 1);
  }

  remove(kind: CredentialKind, identity: string): Promise<boolean> {
    return run('remove credential', () => this.s.get(SQL.remove).run(checkKind(kind), identity).changes > 0);
  }

  removeEndpoint(endpoint: string): Promise<number> {
    return run('remove credentials', () => this.s.get(SQL.removeEndpoint).run(endpoint).changes);
  }

  private refuseOtherHolder(endpoint: string, kind: CredentialKind, identity: string): Row | undefined {
    const holder = this.s.get(SQL.find).get(kind, identity) as Row | undefined;
    if (holder) holder.secret?.fill(0);
    if (holder && holder.endpoint !== endpoint) {
      throw new StoreError('CONFLICT', `${describe(kind)} "${identity}" is already bound to endpoint ${holder.endpoint}`);
    }
    return holder;
  }

  private put(endpoint: string, kind: CredentialKind, identity: string, secret: Buffer | null, now: number): Credential {
    const holder = this.refuseOtherHolder(endpoint, kind, identity);
    // One PSK identity names one key for the DTLS server, whichever table holds it.
    if (kind === 'psk' && this.s.get(SQL.bootstrapPsk).get(identity)) {
      throw new StoreError('CONFLICT', `PSK identity "${identity}" is a bootstrap credential; a device credential needs another identity`);
    }
    const sealed = secret ? this.secrets.seal(secret, secretContext('credentials', kind, identity)) : null;
    const row = holder
      ? (this.s.get(SQL.updateSecret).get({ kind, identity, endpoint, secret: sealed, now }) as Row)
      : (this.s.get(SQL.insert).get({ kind, identity, endpoint, secret: sealed, now }) as Row);
    return fromRow(row, this.secrets);
  }
}
