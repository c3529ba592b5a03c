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
import { TRUST_MIGRATION_SQL } from './sqlite/trust.js';
import { OMADM_BOOTSTRAP_MIGRATION_SQL } from './sqlite/omadm-bootstrap.js';
import { SMS_MIGRATION_SQL, SMS_PACING_MIGRATION_SQL } from './sqlite/sms-outbox.js';

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
  // ---- OMA DM bootstrap over Client Provisioning (issue 15). SQL in sqlite/omadm-bootstrap.ts.
  {
    version: 9,
    name: 'omadm-bootstrap',
    sql: OMADM_BOOTSTRAP_MIGRATION_SQL,
  },
  // ---- install chain learning (issue 16): what worked per (make, model, OS version, method),
  // and the operator's pin or forbid of a method per model.
  {
    version: 10,
    name: 'install-method-stats',
    sql: `
CREATE TABLE install_method_stats (
  make            TEXT    NOT NULL,
  model           TEXT    NOT NULL,
  os_version      TEXT    NOT NULL,
  method          TEXT    NOT NULL,
  successes       INTEGER NOT NULL CHECK (successes >= 0),
  failures        INTEGER NOT NULL CHECK (failures >= 0),
  last_success_at INTEGER,
  last_failure_at INTEGER,
  last_reason     TEXT,
  last_result     TEXT,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (make, model, os_version, method)
) STRICT;
CREATE TABLE install_method_rules (
  make       TEXT    NOT NULL,
  model      TEXT    NOT NULL,
  method     TEXT    NOT NULL,
  rule       TEXT    NOT NULL CHECK (rule IN ('pin', 'forbid')),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (make, model, method)
) STRICT;
`,
  },
  // ---- install chain attempts: chain position, bytes, progress time, retries; one running attempt per
  // job and one open job per device, refused by the file itself.
  {
    version: 11,
    name: 'install-chain-retries',
    sql: `
ALTER TABLE install_chain_jobs ADD COLUMN plan TEXT;
ALTER TABLE install_chain_jobs ADD COLUMN retry_at INTEGER;
ALTER TABLE install_chain_attempts ADD COLUMN position INTEGER;
ALTER TABLE install_chain_attempts ADD COLUMN bytes INTEGER;
ALTER TABLE install_chain_attempts ADD COLUMN progress_at INTEGER;
-- A file from before this migration could hold two open jobs of one device (only the process
-- refused them): the later ones end, saying why, before the file refuses them.
UPDATE install_chain_jobs SET state = 'failed', finished_at = updated_at,
  message = 'Ended by the store upgrade: the device had an older open install job (one open job per device).'
  WHERE state = 'running' AND EXISTS (SELECT 1 FROM install_chain_jobs o WHERE o.endpoint = install_chain_jobs.endpoint AND o.state = 'running'
    AND (o.created_at < install_chain_jobs.created_at OR (o.created_at = install_chain_jobs.created_at AND o.id < install_chain_jobs.id)));
UPDATE install_chain_attempts SET outcome = 'cancelled', ended_at = started_at, message = 'ended by the store upgrade (its job ended)'
  WHERE outcome = 'running' AND job_id IN (SELECT id FROM install_chain_jobs WHERE state <> 'running');
CREATE UNIQUE INDEX install_chain_attempts_one_running ON install_chain_attempts (job_id) WHERE outcome = 'running';
CREATE UNIQUE INDEX install_chain_jobs_one_open ON install_chain_jobs (endpoint) WHERE state = 'running';
CREATE INDEX install_chain_jobs_retry ON install_chain_jobs (retry_at) WHERE state = 'running' AND retry_at IS NOT NULL;
`,
  },
  // ---- SMS (issue 15): outbox, concatenation references, SMS secrets, numbers, SMS link tokens.
  { version: 12, name: 'sms-outbox', sql: SMS_MIGRATION_SQL },
  // ---- inventory, package targets and campaigns (issue 16).
  {
    version: 13,
    name: 'inventory-and-campaigns',
    sql: `
CREATE TABLE inventory_devices (
  id               TEXT    NOT NULL PRIMARY KEY,
  lwm2m_endpoint   TEXT    UNIQUE,
  omadm_dev_id     TEXT    UNIQUE,
  imei             TEXT    UNIQUE,
  msisdn           TEXT    UNIQUE,
  make             TEXT,
  model            TEXT,
  os               TEXT,
  os_version       TEXT,
  firmware         TEXT,
  expected_make    TEXT,
  expected_model   TEXT,
  time_zone        TEXT,
  lwm2m_last_at    INTEGER,
  omadm_last_at    INTEGER,
  sms_last_at      INTEGER,
  bootstrap_state  TEXT    NOT NULL DEFAULT 'unknown' CHECK (bootstrap_state IN ('unknown', 'not-bootstrapped', 'pending', 'bootstrapped', 'failed')),
  trust_state      TEXT    NOT NULL DEFAULT 'unknown' CHECK (trust_state IN ('unknown', 'yes', 'no')),
  software         TEXT    NOT NULL DEFAULT '[]',
  source           TEXT    NOT NULL CHECK (source IN ('seen', 'imported')),
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX inventory_devices_make_model ON inventory_devices (make COLLATE NOCASE, model COLLATE NOCASE, id);
CREATE TABLE inventory_labels (
  device_id TEXT NOT NULL REFERENCES inventory_devices (id) ON DELETE CASCADE,
  kind      TEXT NOT NULL CHECK (kind IN ('tag', 'group')),
  name      TEXT NOT NULL,
  PRIMARY KEY (device_id, kind, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX inventory_labels_by_name ON inventory_labels (kind, name, device_id);
CREATE TABLE inventory_history (
  device_id TEXT    NOT NULL REFERENCES inventory_devices (id) ON DELETE CASCADE,
  seq       INTEGER NOT NULL CHECK (seq > 0),
  at        INTEGER NOT NULL,
  source    TEXT    NOT NULL,
  changes   TEXT    NOT NULL,
  PRIMARY KEY (device_id, seq)
) STRICT;
-- What a package targets (selection): set once, like the package itself.
CREATE TABLE package_targets (
  sha256   TEXT    NOT NULL PRIMARY KEY,
  targets  TEXT    NOT NULL,
  set_at   INTEGER NOT NULL
) STRICT;
CREATE TABLE campaigns (
  id            TEXT    NOT NULL PRIMARY KEY,
  name          TEXT    NOT NULL,
  spec          TEXT    NOT NULL,
  state         TEXT    NOT NULL CHECK (state IN ('running', 'paused', 'awaiting-approval', 'completed', 'cancelled')),
  current_wave  INTEGER NOT NULL CHECK (current_wave >= 0),
  pause_reason  TEXT,
  paused_models TEXT    NOT NULL DEFAULT '{}',
  -- Failures the operator accepted by resuming (overall and per model): rates count from there.
  accepted      TEXT    NOT NULL DEFAULT '{"overall":{"failed":0,"ended":0},"models":{}}',
  retry_of      TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  finished_at   INTEGER
) STRICT;
CREATE INDEX campaigns_active ON campaigns (created_at) WHERE state IN ('running', 'paused', 'awaiting-approval');
CREATE TABLE campaign_waves (
  campaign_id  TEXT    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  wave         INTEGER NOT NULL CHECK (wave >= 0),
  size         INTEGER NOT NULL CHECK (size >= 0),
  state        TEXT    NOT NULL CHECK (state IN ('pending', 'awaiting-approval', 'running', 'done')),
  approved_at  INTEGER,
  started_at   INTEGER,
  ended_at     INTEGER,
  PRIMARY KEY (campaign_id, wave)
) STRICT;
CREATE TABLE campaign_members (
  campaign_id    TEXT    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  device_id      TEXT    NOT NULL,
  position       INTEGER NOT NULL,
  wave           INTEGER NOT NULL,
  endpoint       TEXT    NOT NULL,
  model_key      TEXT    NOT NULL,
  package_sha256 TEXT,
  state          TEXT    NOT NULL CHECK (state IN ('pending', 'no-package', 'starting', 'started', 'succeeded', 'failed', 'cancelled')),
  job_id         TEXT,
  method         TEXT,
  message        TEXT,
  started_at     INTEGER,
  ended_at       INTEGER,
  PRIMARY KEY (campaign_id, device_id)
) STRICT;
CREATE INDEX campaign_members_wave ON campaign_members (campaign_id, wave, state, position);
CREATE INDEX campaign_members_package ON campaign_members (package_sha256) WHERE state IN ('pending', 'starting', 'started');
`,
  },
  // ---- operator surfaces (issue 17): users, API tokens, console sessions, the audit log.
  {
    version: 14,
    name: 'users-tokens-audit',
    sql: `
-- Operators. password_hash is "scrypt$N$r$p$salt$hash" (base64url), never the password.
CREATE TABLE users (
  id            TEXT    NOT NULL PRIMARY KEY,
  username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
  role          TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  password_hash TEXT    NOT NULL,
  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;
-- API tokens: "dpt_<id>_<secret>"; only SHA-256 of the secret is kept (the secret has 192 bits).
CREATE TABLE api_tokens (
  id          TEXT    NOT NULL PRIMARY KEY,
  user_id     TEXT    REFERENCES users (id) ON DELETE CASCADE,
  name        TEXT    NOT NULL,
  role        TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  secret_hash BLOB    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  revoked_at  INTEGER,
  last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id, created_at);
-- Console sessions (cookie "<id>.<secret>", SHA-256 of the secret kept), with the CSRF token of each.
CREATE TABLE console_sessions (
  id          TEXT    NOT NULL PRIMARY KEY,
  user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  secret_hash BLOB    NOT NULL,
  csrf_token  TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX console_sessions_user ON console_sessions (user_id);
-- Every change made through the API: who, what, when, on what.
CREATE TABLE audit_log (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  at      INTEGER NOT NULL,
  actor   TEXT    NOT NULL,
  role    TEXT,
  action  TEXT    NOT NULL,
  target  TEXT,
  outcome TEXT    NOT NULL,
  source  TEXT,
  detail  TEXT
) STRICT;
CREATE INDEX audit_log_at ON audit_log (at);
`,
  },
  // ---- OMA DM SCOMO jobs (issue 14).
  {
    version: 15,
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
  // ---- OMA DM server authentication (issue 14): Depot's credentials towards each device.
  {
    version: 16,
    name: 'omadm-server-credentials',
    // server_password is sealed (secret-box.ts, context omadm_accounts/server/<device_id>); server_nonce is
    // the nonce the device gave Depot in its last Chal (Depot's next digest or MAC is over it), not a secret.
    sql: `
ALTER TABLE omadm_accounts ADD COLUMN server_id TEXT;
ALTER TABLE omadm_accounts ADD COLUMN server_password BLOB;
ALTER TABLE omadm_accounts ADD COLUMN server_nonce BLOB;
`,
  },
  // ---- Send SSL certificate (issue 16 "Trust first"): what Depot pushed of its root to each device, and when.
  {
    version: 17,
    name: 'device-trust',
    sql: TRUST_MIGRATION_SQL,
  },
  { version: 18, name: 'sms-send-pacing', sql: SMS_PACING_MIGRATION_SQL },
  // ---- OMA DM command expiry (issue 14): a queued command not sent by expires_at is failed, never sent late.
  {
    version: 20,
    name: 'omadm-command-expiry',
    sql: `
ALTER TABLE omadm_commands ADD COLUMN expires_at INTEGER;
`,
  },
  // ---- operator surfaces (issue 17): the inventory's make/model filters use an index; campaign progress over time.
  {
    version: 22,
    name: 'console-progress-and-filters',
    // The inventory filters compare COALESCE(make, expected_make) (imported devices not seen yet count by
    // what the list said): indexes on those very expressions, with the id for the cursor order.
    sql: `
CREATE INDEX inventory_devices_eff_make ON inventory_devices (COALESCE(make, expected_make) COLLATE NOCASE, id);
CREATE INDEX inventory_devices_eff_model ON inventory_devices (COALESCE(model, expected_model) COLLATE NOCASE, id);
CREATE INDEX inventory_devices_eff_make_model ON inventory_devices (COALESCE(make, expected_make) COLLATE NOCASE, COALESCE(model, expected_model) COLLATE NOCASE, id);
-- Campaign totals over time, one row per change (the console's rollout chart), kept with the campaign.
CREATE TABLE campaign_progress_samples (
  campaign_id TEXT    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
  at          INTEGER NOT NULL,
  succeeded   INTEGER NOT NULL CHECK (succeeded >= 0),
  failed      INTEGER NOT NULL CHECK (failed >= 0),
  running     INTEGER NOT NULL CHECK (running >= 0),
  pending     INTEGER NOT NULL CHECK (pending >= 0),
  ended       INTEGER NOT NULL CHECK (ended >= 0),
  total       INTEGER NOT NULL CHECK (total >= 0),
  PRIMARY KEY (campaign_id, at)
) STRICT;
`,
  },
];
