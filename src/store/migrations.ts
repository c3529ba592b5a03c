/**
 * The SQLite schema, as an ordered list of migrations. A migration is never edited
 * once released: changes go into a new one at the end. Each runs in its own
 * transaction together with its row in schema_migrations, so a file is always at
 * exactly one migration.
 *
 * Tables are STRICT (values must match the declared column types) and every
 * enumeration has a CHECK, so the file itself refuses rows the code would not
 * write. Times are INTEGER ms since the epoch.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE registrations (
  id                TEXT    NOT NULL PRIMARY KEY,
  endpoint          TEXT    NOT NULL UNIQUE,
  lifetime_sec      INTEGER NOT NULL CHECK (lifetime_sec > 0),
  lwm2m_version     TEXT    NOT NULL,
  binding           TEXT    NOT NULL,
  sms_number        TEXT,
  queue_mode        INTEGER NOT NULL CHECK (queue_mode IN (0, 1)),
  object_links      TEXT    NOT NULL,
  transport_scheme  TEXT    NOT NULL,
  transport_address TEXT    NOT NULL,
  transport_port    INTEGER NOT NULL CHECK (transport_port BETWEEN 0 AND 65535),
  identity_kind     TEXT    CHECK (identity_kind IN ('psk', 'x509', 'rpk')),
  identity_value    TEXT,
  registered_at     INTEGER NOT NULL,
  last_update_at    INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  CHECK ((identity_kind IS NULL) = (identity_value IS NULL))
) STRICT;

CREATE TABLE device_facts (
  endpoint          TEXT    NOT NULL PRIMARY KEY,
  manufacturer      TEXT,
  model_number      TEXT,
  serial_number     TEXT,
  firmware_version  TEXT,
  device_type       TEXT,
  hardware_version  TEXT,
  software_version  TEXT,
  os_version        TEXT,
  extra             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(extra) AND json_type(extra) = 'object'),
  updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE queued_operations (
  id                    INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint              TEXT    NOT NULL,
  kind                  TEXT    NOT NULL CHECK (kind IN ('read', 'read-composite', 'discover', 'write',
                          'write-composite', 'write-attributes', 'execute', 'create', 'delete', 'observe',
                          'observe-composite', 'cancel-observe')),
  path                  TEXT    NOT NULL,
  payload               BLOB,
  content_format        INTEGER CHECK (content_format BETWEEN 0 AND 65535),
  status                TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'succeeded', 'failed', 'expired', 'cancelled')),
  created_at            INTEGER NOT NULL,
  updated_at            INTEGER NOT NULL,
  expires_at            INTEGER,
  result_code           TEXT,
  result_payload        BLOB,
  result_content_format INTEGER CHECK (result_content_format BETWEEN 0 AND 65535),
  diagnostic            TEXT,
  attempts              INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0)
) STRICT;

CREATE TABLE bootstrap_endpoints (
  endpoint          TEXT    NOT NULL PRIMARY KEY,
  state             TEXT    NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected')),
  first_seen_at     INTEGER NOT NULL,
  last_seen_at      INTEGER NOT NULL,
  decided_at        INTEGER,
  decided_by        TEXT,
  request_count     INTEGER NOT NULL CHECK (request_count >= 0),
  last_peer_address TEXT
) STRICT;

CREATE TABLE credentials (
  kind        TEXT    NOT NULL CHECK (kind IN ('psk', 'x509-subject', 'x509-sha256', 'rpk-sha256')),
  identity    TEXT    NOT NULL,
  endpoint    TEXT    NOT NULL,
  secret      BLOB,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (kind, identity),
  CHECK ((kind = 'psk') = (secret IS NOT NULL))
) STRICT;

CREATE TABLE settings (
  key         TEXT    NOT NULL PRIMARY KEY,
  value       TEXT    NOT NULL CHECK (json_valid(value)),
  updated_at  INTEGER NOT NULL
) STRICT;
`,
  },
  {
    version: 2,
    name: 'lookup-indexes',
    sql: `
CREATE INDEX registrations_expires_at ON registrations (expires_at, endpoint);
CREATE INDEX device_facts_model ON device_facts (manufacturer, model_number, endpoint);
CREATE INDEX queued_operations_endpoint ON queued_operations (endpoint, status, id);
CREATE INDEX queued_operations_status ON queued_operations (status, id);
CREATE INDEX queued_operations_deadline ON queued_operations (expires_at) WHERE status IN ('queued', 'sent');
CREATE INDEX bootstrap_endpoints_state ON bootstrap_endpoints (state, endpoint);
CREATE INDEX credentials_endpoint ON credentials (endpoint, kind);
`,
  },
  {
    version: 3,
    name: 'packages-and-install-jobs',
    sql: `
CREATE TABLE packages (
  sha256      TEXT    NOT NULL PRIMARY KEY CHECK (length(sha256) = 64),
  name        TEXT    NOT NULL,
  version     TEXT    NOT NULL,
  size        INTEGER NOT NULL CHECK (size >= 0),
  key_id      TEXT    NOT NULL,
  manifest    TEXT    NOT NULL CHECK (json_valid(manifest)),
  added_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX packages_name ON packages (name, version);

CREATE TABLE install_jobs (
  id                  TEXT    NOT NULL PRIMARY KEY,
  kind                TEXT    NOT NULL CHECK (kind IN ('install', 'uninstall', 'activate', 'deactivate')),
  endpoint            TEXT    NOT NULL,
  package_sha256      TEXT,
  instance_id         INTEGER CHECK (instance_id BETWEEN 0 AND 65534),
  method              TEXT    NOT NULL CHECK (method IN ('pull', 'push')),
  activate            INTEGER NOT NULL CHECK (activate IN (0, 1)),
  state               TEXT    NOT NULL CHECK (state IN ('queued', 'downloading', 'delivered', 'installing', 'installed', 'activating', 'succeeded', 'failed', 'cancelled')),
  attempts            INTEGER NOT NULL CHECK (attempts >= 0),
  download_token      TEXT    UNIQUE,
  token_expires_at    INTEGER,
  last_update_state   INTEGER,
  last_update_result  INTEGER,
  result_name         TEXT,
  retry               TEXT    CHECK (retry IN ('retry', 'retry-resume', 'no-retry')),
  message             TEXT,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  phase_started_at    INTEGER NOT NULL,
  finished_at         INTEGER
) STRICT;
CREATE INDEX install_jobs_endpoint ON install_jobs (endpoint, created_at);
CREATE INDEX install_jobs_open ON install_jobs (state) WHERE state NOT IN ('succeeded', 'failed', 'cancelled');

CREATE TABLE install_transitions (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id      TEXT    NOT NULL REFERENCES install_jobs (id) ON DELETE CASCADE,
  at          INTEGER NOT NULL,
  from_state  TEXT,
  to_state    TEXT    NOT NULL,
  detail      TEXT
) STRICT;
CREATE INDEX install_transitions_job ON install_transitions (job_id, seq);
`,
  },
  {
    version: 4,
    name: 'install-method-chosen-by-depot',
    // 1: Depot chose the method (learned for the model, or the default) and may fall back to the other.
    sql: `ALTER TABLE install_jobs ADD COLUMN method_auto INTEGER NOT NULL DEFAULT 0 CHECK (method_auto IN (0, 1));`,
  },
  {
    version: 5,
    name: 'sealed-secrets',
    // sealed = 1: the secret is AES-256-GCM sealed (secret-box.ts). Rows of older files are
    // sealed by code right after this migration (sqlite.ts), once a key is at hand.
    sql: `
ALTER TABLE credentials ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1));
CREATE TABLE secret_key_check (
  id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  sealed      BLOB    NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
`,
  },
  {
    version: 6,
    name: 'bootstrap-credentials-and-limits',
    sql: `
CREATE TABLE bootstrap_credentials (
  kind        TEXT    NOT NULL CHECK (kind IN ('psk', 'x509-subject')),
  identity    TEXT    NOT NULL,
  scope       TEXT    NOT NULL CHECK (scope IN ('device', 'batch')),
  endpoint    TEXT,
  secret      BLOB,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (kind, identity),
  CHECK ((kind = 'psk') = (secret IS NOT NULL)),
  CHECK ((scope = 'device') = (endpoint IS NOT NULL))
) STRICT;
CREATE INDEX bootstrap_credentials_endpoint ON bootstrap_credentials (endpoint) WHERE endpoint IS NOT NULL;
ALTER TABLE bootstrap_endpoints ADD COLUMN source_host TEXT;
ALTER TABLE bootstrap_endpoints ADD COLUMN last_transport TEXT CHECK (last_transport IN ('coap', 'coaps'));
ALTER TABLE bootstrap_endpoints ADD COLUMN bound_identity TEXT;
ALTER TABLE bootstrap_endpoints ADD COLUMN bootstrap_count INTEGER NOT NULL DEFAULT 0 CHECK (bootstrap_count >= 0);
ALTER TABLE bootstrap_endpoints ADD COLUMN last_bootstrap_at INTEGER;
ALTER TABLE bootstrap_endpoints ADD COLUMN rotate_key INTEGER NOT NULL DEFAULT 0 CHECK (rotate_key IN (0, 1));
ALTER TABLE bootstrap_endpoints ADD COLUMN refused_count INTEGER NOT NULL DEFAULT 0 CHECK (refused_count >= 0);
ALTER TABLE bootstrap_endpoints ADD COLUMN last_refusal TEXT;
ALTER TABLE bootstrap_endpoints ADD COLUMN last_refused_at INTEGER;
CREATE INDEX bootstrap_endpoints_undecided_source ON bootstrap_endpoints (source_host) WHERE state = 'pending' AND decided_at IS NULL;
CREATE INDEX bootstrap_endpoints_undecided_seen ON bootstrap_endpoints (last_seen_at) WHERE state = 'pending' AND decided_at IS NULL;
`,
  },
  // ---- OMA DM accounts (issue 14): one self-contained block, renumbered at merge if needed.
  {
    version: 7,
    name: 'omadm-accounts',
    // client_password is sealed (secret-box.ts, context omadm_accounts/client/<device_id>).
    sql: `
CREATE TABLE omadm_accounts (
  device_id        TEXT    NOT NULL PRIMARY KEY,
  client_username  TEXT    NOT NULL,
  client_password  BLOB    NOT NULL,
  client_nonce     BLOB    NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
-- Operator commands for a DM device's next session. 'sent' while a session holds them; an Exec
-- whose session ended without the device's Status is 'unknown', never sent again by itself.
CREATE TABLE omadm_commands (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  device_id        TEXT    NOT NULL,
  kind             TEXT    NOT NULL CHECK (kind IN ('Get', 'Replace', 'Exec')),
  uri              TEXT    NOT NULL,
  data             TEXT,
  format           TEXT,
  status           TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'succeeded', 'failed', 'unknown')),
  result_code      INTEGER,
  result_data      TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX omadm_commands_device ON omadm_commands (device_id, status, id);
`,
  },
  // ---- install method chain (issue 16, the seam): jobs across methods and their attempts.
  {
    version: 8,
    name: 'install-chain-jobs',
    sql: `
CREATE TABLE install_chain_jobs (
  id             TEXT    NOT NULL PRIMARY KEY,
  endpoint       TEXT    NOT NULL,
  package_sha256 TEXT    NOT NULL,
  activate       INTEGER NOT NULL CHECK (activate IN (0, 1)),
  methods        TEXT    NOT NULL,
  state          TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
  message        TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  finished_at    INTEGER
) STRICT;
CREATE INDEX install_chain_jobs_open ON install_chain_jobs (created_at) WHERE state = 'running';
CREATE INDEX install_chain_jobs_endpoint ON install_chain_jobs (endpoint, created_at);
CREATE TABLE install_chain_attempts (
  job_id     TEXT    NOT NULL REFERENCES install_chain_jobs (id) ON DELETE CASCADE,
  seq        INTEGER NOT NULL CHECK (seq > 0),
  method     TEXT    NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  outcome    TEXT    NOT NULL CHECK (outcome IN ('running', 'skipped', 'succeeded', 'failed', 'cancelled')),
  message    TEXT,
  result     TEXT,
  state      TEXT    NOT NULL,
  PRIMARY KEY (job_id, seq),
  CHECK ((outcome = 'running') = (ended_at IS NULL))
) STRICT;
`,
  },
  // Placeholders so this branch's SCOMO migration can keep its assigned number 13 (the lead renumbers at merge).
  { version: 9, name: 'reserved-9', sql: '' },
  { version: 10, name: 'reserved-10', sql: '' },
  { version: 11, name: 'reserved-11', sql: '' },
  { version: 12, name: 'reserved-12', sql: '' },
  // ---- OMA DM SCOMO jobs (issue 14): one self-contained block, renumbered at merge if needed.
  {
    version: 13,
    name: 'omadm-scomo-jobs',
    // One SCOMO operation on one DM device. 'sent' is written before the reply carrying the Exec
    // goes out, so a restart never sends it again blind: the next session asks the device first.
    sql: `
CREATE TABLE omadm_scomo_jobs (
  id               TEXT    NOT NULL PRIMARY KEY,
  device_id        TEXT    NOT NULL,
  operation        TEXT    NOT NULL CHECK (operation IN ('Download', 'DownloadInstall', 'DownloadInstallInactive', 'Install', 'InstallInactive', 'Activate', 'Deactivate', 'Remove')),
  package_sha256   TEXT,
  package_name     TEXT,
  package_version  TEXT,
  node             TEXT    NOT NULL,
  ask_user         TEXT,
  root             TEXT,
  state            TEXT    NOT NULL CHECK (state IN ('queued', 'taken', 'sent', 'executing', 'verifying', 'succeeded', 'failed', 'cancelled')),
  correlator       TEXT    NOT NULL UNIQUE,
  token            TEXT    UNIQUE,
  token_expires_at INTEGER,
  result_code      INTEGER,
  result_name      TEXT,
  identifier       TEXT,
  component_state  TEXT,
  message          TEXT,
  retry            TEXT,
  sends            INTEGER NOT NULL DEFAULT 0 CHECK (sends >= 0),
  download_bytes   INTEGER,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  finished_at      INTEGER,
  CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
) STRICT;
CREATE INDEX omadm_scomo_jobs_open ON omadm_scomo_jobs (device_id, created_at) WHERE finished_at IS NULL;
CREATE INDEX omadm_scomo_jobs_device ON omadm_scomo_jobs (device_id, created_at);
`,
  },
];
