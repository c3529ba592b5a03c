import { StoreError } from '../errors.js';
import { SecretKey } from '../secret.js';
import { type SecretBox, secretContext } from '../secret-box.js';
import type { BootstrapCredential, BootstrapCredentialInput, BootstrapCredentialRepository, Page, PageRequest, TimeInput } from '../types.js';
import { type Statements, invalid, limitOf, pageOf, requireText, run, toMs } from './common.js';

interface Row {
  kind: BootstrapCredential['kind'];
  identity: string;
  scope: BootstrapCredential['scope'];
  endpoint: string | null;
  secret: Buffer | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'kind, identity, scope, endpoint, secret, created_at, updated_at';
const KINDS: readonly BootstrapCredential['kind'][] = ['psk', 'x509-subject'];

const SQL = {
  find: `SELECT ${COLUMNS} FROM bootstrap_credentials WHERE kind = ? AND identity = ?`,
  insert: `INSERT INTO bootstrap_credentials (${COLUMNS}) VALUES (@kind, @identity, @scope, @endpoint, @secret, @now, @now)
    RETURNING ${COLUMNS}`,
  devicePsk: "SELECT 1 FROM credentials WHERE kind = 'psk' AND identity = ?",
  // kind has no '/': the joined key sorts as (kind, identity) and is the page cursor.
  list: `SELECT ${COLUMNS} FROM bootstrap_credentials WHERE kind || '/' || identity > @after
    ORDER BY kind || '/' || identity LIMIT @limit`,
  remove: 'DELETE FROM bootstrap_credentials WHERE kind = ? AND identity = ?',
} as const;

function checkKind(kind: BootstrapCredential['kind']): BootstrapCredential['kind'] {
  if (!KINDS.includes(kind)) throw invalid(`a bootstrap credential is a psk or an x509-subject, not ${String(kind)}`);
  return kind;
}

export class SqliteBootstrapCredentialRepository implements BootstrapCredentialRepository {
  constructor(
    private readonly s: Statements,
    private readonly secrets: SecretBox,
  ) {}

  add(credential: BootstrapCredentialInput, now: TimeInput): Promise<BootstrapCredential> {
    return run('add bootstrap credential', () => {
      const kind = checkKind(credential.kind);
      const identity = requireText(credential.identity, 'identity');
      const endpoint = credential.endpoint === undefined || credential.endpoint === null ? null : requireText(credential.endpoint, 'endpoint');
      let plain: Buffer | null = null;
      if (credential.kind === 'psk') {
        plain = Buffer.from(credential.key instanceof SecretKey ? credential.key.reveal() : credential.key);
        if (plain.length === 0) throw invalid('a PSK key must be non-empty bytes');
      }
      const t = toMs(now, 'now');
      try {
        return this.s.transaction(() => {
          if (this.s.get(SQL.find).get(kind, identity)) throw new StoreError('CONFLICT', `bootstrap credential ${kind} "${identity}" exists already; remove it first to replace it`);
          if (kind === 'psk' && this.s.get(SQL.devicePsk).get(identity)) {
            throw new StoreError('CONFLICT', `PSK identity "${identity}" is a device credential; a bootstrap credential needs another identity`);
          }
          const secret = plain ? this.secrets.seal(plain, secretContext('bootstrap_credentials', kind, identity)) : null;
          const row = this.s.get(SQL.insert).get({ kind, identity, scope: endpoint === null ? 'batch' : 'device', endpoint, secret, now: t }) as Row;
          return this.fromRow(row);
        });
      } finally {
        plain?.fill(0);
      }
    });
  }

  find(kind: BootstrapCredential['kind'], identity: string): Promise<BootstrapCredential | null> {
    return run('find bootstrap credential', () => {
      const row = this.s.get(SQL.find).get(checkKind(kind), identity) as Row | undefined;
      return row ? this.fromRow(row) : null;
    });
  }

  list(page: PageRequest = {}): Promise<Page<BootstrapCredential>> {
    return run('list bootstrap credentials', () => {
      const limit = limitOf(page);
      const rows = this.s.get(SQL.list).all({ after: page.after ?? '', limit: limit + 1 }) as Row[];
      return pageOf(rows, limit, (r) => this.fromRow(r), (r) => `${r.kind}/${r.identity}`);
    });
  }

  remove(kind: BootstrapCredential['kind'], identity: string): Promise<boolean> {
    return run('remove bootstrap credential', () => this.s.get(SQL.remove).run(checkKind(kind), identity).changes > 0);
  }

  private fromRow(r: Row): BootstrapCredential {
    let key: SecretKey | null = null;
    if (r.secret !== null) {
      const plain = this.secrets.open(r.secret, secretContext('bootstrap_credentials', r.kind, r.identity));
      if (!plain) throw new StoreError('STORE_CORRUPT', `the key of bootstrap credential "${r.identity}" does not open with the store's secret key: the row was altered or copied from another row or store`);
      key = new SecretKey(plain);
      plain.fill(0);
    }
    return { kind: r.kind, identity: r.identity, scope: r.scope, endpoint: r.endpoint, key, createdAt: r.created_at, updatedAt: r.updated_at };
  }
}
