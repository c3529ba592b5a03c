/**
 * Structured JSON logs (pino): one object per line with a level, a time and a message.
 * Secrets never reach them: Depot logs no request bodies, headers or query strings, and as a
 * second line of defence every record passes `scrub` (keys named like secrets are replaced,
 * token-shaped strings in any text are masked) and pino's own redaction of known paths.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Keys whose values are secrets wherever they appear. */
const SECRET_KEY = /^(password|passwd|current|token|apiToken|secret|secretHash|key|keyHex|psk|pskKey|pin|csrfToken|authorization|cookie|set-cookie|clientPassword|privateKey|signature)$/i;
export const REDACTED = '[redacted]';

/** Token-shaped substrings: API tokens, download tokens in package URLs, bearer credentials, session cookies. */
const SECRET_TEXT: [RegExp, string][] = [
  [/dpt_[A-Za-z0-9_-]+/g, 'dpt_[redacted]'],
  [/(\/pkg\/)(?!:token\b)[^\s"'?#]+/g, '$1[redacted]'],
  [/(Bearer\s+)\S+/gi, '$1[redacted]'],
  [/(depot_session=)[^\s;"']+/g, '$1[redacted]'],
];

export function scrubText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_TEXT) out = out.replace(pattern, replacement);
  return out;
}

/** A copy of `value` with secret-named keys replaced and token-shaped text masked (depth-bounded). */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: scrubText(value.message) };
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? REDACTED : scrub(v, depth + 1);
  return out;
}

export interface LoggerConfig {
  level?: LogLevel;
  /** Where lines go (default stdout). */
  destination?: DestinationStream;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    base: { service: 'depot' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => scrub(object) as Record<string, unknown>,
    },
    hooks: {
      // Messages are text too: masked like any other string.
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>);
      },
    },
    redact: { paths: ['*.password', '*.token', '*.psk', '*.pin', '*.key', '*.secret', '*.authorization', '*.cookie', 'headers.authorization', 'headers.cookie'], censor: REDACTED },
  };
  return config.destination ? pino(options, config.destination) : pino(options);
}

/** The level named by DEPOT_LOG_LEVEL or a flag; throws naming the choices. */
export function logLevelOf(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  if (value === undefined || value === '') return fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) throw new Error(`log level is one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return value as LogLevel;
}
