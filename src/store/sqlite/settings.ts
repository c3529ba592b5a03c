import type { KnownSettings, SettingKey, SettingsRepository, TimeInput } from '../types.js';
import { type Statements, invalid, requireText, run, toMs } from './common.js';

const SQL = {
  get: 'SELECT value FROM settings WHERE key = ?',
  set: `INSERT INTO settings (key, value, updated_at) VALUES (@key, @value, @now)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  delete: 'DELETE FROM settings WHERE key = ?',
} as const;

/** Settings as JSON text, one row per key. */
export class SqliteSettingsRepository implements SettingsRepository {
  constructor(private readonly s: Statements) {}

  get<K extends SettingKey>(key: K): Promise<KnownSettings[K] | null> {
    return run('get setting', () => {
      const text = this.s.get(SQL.get).pluck().get(key) as string | undefined;
      return text === undefined ? null : (JSON.parse(text) as KnownSettings[K]);
    });
  }

  set<K extends SettingKey>(key: K, value: KnownSettings[K], now: TimeInput): Promise<void> {
    return run('set setting', () => {
      requireText(key, 'key');
      if (value === undefined || value === null) throw invalid(`setting ${key} needs a value (use delete to remove it)`);
      const text = JSON.stringify(value);
      this.s.get(SQL.set).run({ key, value: text, now: toMs(now, 'now') });
    });
  }

  delete(key: SettingKey): Promise<boolean> {
    return run('delete setting', () => this.s.get(SQL.delete).run(key).changes > 0);
  }
}
