/**
 * Group commit for soft-state writes (registrations, device facts), and for durable writes that
 * many concurrent requests each make before they answer (OMA DM: the nonce a session's reply
 * carries, see durableWrite).
 *
 * A commit is the dearest part of a small write: with WAL it appends the frames and the commit
 * record, and switching `synchronous` to NORMAL and back costs two more statements. A burst of
 * registrations therefore paid one commit each. Here the soft writes asked for in one turn of
 * the event loop are queued and run together at the end of that turn (setImmediate: after the
 * poll phase has delivered every datagram that was waiting), or under sustained load within a
 * window of GROUP_WINDOW_MS, in one IMMEDIATE transaction, committed once with synchronous=NORMAL.
 *
 * Semantics kept:
 * - Each write still succeeds or fails on its own: when one throws, the batch is rolled back and
 *   run again with a savepoint per write, so the others commit. Its promise settles only after the commit, so a caller that answers a
 *   device after awaiting the write answers after the write is as durable as it was before
 *   (soft: survives a crash of the process).
 * - Writes run in the order they were asked for. A read that runs before the batch commits
 *   does not see the queued writes, as it would not have seen a write that had not run yet:
 *   nobody has been told the write happened.
 * - A batch is bounded (MAX_BATCH writes); more wait for the next turn.
 * - Closing the store flushes the queue first (flushSoftWrites).
 * - A batch holding a durable write commits with the connection's configured level (FULL): one
 *   fsync for every write in it, the soft ones riding along (they become durable a little early,
 *   which they may). A durable write's promise settles after that fsync, exactly as when it
 *   committed alone: what was promised to be on disk before a reply goes out still is.
 */
import { toStoreError } from '../errors.js';
import type { Statements } from './common.js';

/** Writes committed together at most; a bound on the time one turn of the event loop spends in SQLite. */
const MAX_BATCH = 512;
/**
 * Under sustained load (the previous commit was less than this long ago) the next commit waits
 * this long for more writes instead of running at the end of the turn: one turn holds only a few
 * Registers, and a commit's cost hardly depends on how many writes it carries (measured: 62 µs
 * of CPU per registration committed alone, 31 in groups of 16, 19 in groups of 64). A lone
 * write, after a quiet moment, is still committed at the end of its turn.
 */
const GROUP_WINDOW_MS = 2;

interface Pending {
  what: string;
  durable: boolean;
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface Outcome {
  ok: boolean;
  value: unknown;
}

/** Counters of the group commit (bench and tests read them: commits per registration). */
export interface SoftWriteStats {
  /** Writes run. */
  writes: number;
  /** Transactions committed for them. */
  commits: number;
  /** Largest batch seen. */
  largestBatch: number;
}

const stats: SoftWriteStats = { writes: 0, commits: 0, largestBatch: 0 };

class SoftWriteBatch {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(private readonly s: Statements) {}

  enqueue<T>(what: string, fn: () => T, durable = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ what, durable, fn, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        if (performance.now() - this.lastFlush < 2 * GROUP_WINDOW_MS) setTimeout(this.flushScheduled, GROUP_WINDOW_MS);
        else setImmediate(this.flushScheduled);
      }
    });
  }

  private lastFlush = -Infinity;

  private readonly flushScheduled = (): void => {
    this.scheduled = false;
    this.flush();
    this.lastFlush = performance.now();
  };

  /** Runs every queued write now (in batches of MAX_BATCH), each settled after its batch committed. */
  flush(): void {
    while (this.queue.length > 0) {
      const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
      this.queue = this.queue.length <= MAX_BATCH ? [] : this.queue.slice(MAX_BATCH);
      this.commit(batch);
    }
  }

  private commit(batch: Pending[]): void {
    // Optimistic: every write straight in the one transaction (no savepoint each: a savepoint and
    // its release cost about as much as a small write). If one fails, the whole transaction is
    // rolled back and the batch run again with a savepoint per write, so that only the failed
    // write is lost (the writes are functions of the database state: running them again is safe).
    let outcomes: Outcome[] | undefined;
    const durability = batch.some((p) => p.durable) ? 'durable' : 'soft';
    try {
      outcomes = this.s.transaction(() => batch.map((p): Outcome => ({ ok: true, value: p.fn() })), durability);
    } catch {
      outcomes = undefined;
    }
    if (!outcomes) {
      try {
        outcomes = this.s.transaction(
          () =>
            batch.map((p): Outcome => {
              try {
                return { ok: true, value: this.s.transaction(p.fn, 'soft') };
              } catch (error) {
                return { ok: false, value: error };
              }
            }),
          durability,
        );
      } catch (error) {
        // The commit itself failed (disk full, store closed ...): none of the batch was written.
        for (const p of batch) p.reject(toStoreError(error, p.what));
        return;
      }
    }
    stats.writes += batch.length;
    stats.commits++;
    if (batch.length > stats.largestBatch) stats.largestBatch = batch.length;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.value);
      else p.reject(toStoreError(o.value, p.what));
    }
  }
}

const batches = new WeakMap<Statements, SoftWriteBatch>();

function batchOf(s: Statements): SoftWriteBatch {
  let b = batches.get(s);
  if (!b) {
    b = new SoftWriteBatch(s);
    batches.set(s, b);
  }
  return b;
}

/**
 * Runs `fn` (synchronous SQLite work) in the next group commit of soft writes; the promise
 * settles once that commit is done, with `fn`'s result or its error as a StoreError.
 */
export function softWrite<T>(s: Statements, what: string, fn: () => T): Promise<T> {
  return batchOf(s).enqueue(what, fn);
}

/**
 * Runs `fn` in the next group commit, committed durably (synchronous at the connection's level,
 * FULL by default): the promise settles once the write is on disk, as a `transaction` of its own
 * would, but the fsync is shared with every other write asked for in the same turn of the event
 * loop (or the same GROUP_WINDOW_MS under load). For durable writes that many concurrent requests
 * each make before they answer, where one fsync per request would serialise them on the disk.
 */
export function durableWrite<T>(s: Statements, what: string, fn: () => T): Promise<T> {
  return batchOf(s).enqueue(what, fn, true);
}

/** Commits the queued soft writes now (before the store closes). */
export function flushSoftWrites(s: Statements): void {
  batches.get(s)?.flush();
}

/** The group commit's counters, over every connection of this process (a copy). */
export function softWriteStats(): SoftWriteStats {
  return { ...stats };
}
