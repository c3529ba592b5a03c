/**
 * Injected time. Protocol cores take a Clock instead of calling Date.now/setTimeout,
 * so retransmission, lifetimes and timeouts are testable without sleeping.
 */
export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  /** Housekeeping that must not keep the process alive by itself (an unref'd timer). */
  background?: boolean;
}

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  now(): number;
  setTimer(delayMs: number, fn: () => void, options?: TimerOptions): Timer;
}

/** A setTimeout handle as a Timer: one small object per timer, where a closure would add two. */
class SystemTimer implements Timer {
  constructor(private readonly handle: NodeJS.Timeout) {}

  cancel(): void {
    clearTimeout(this.handle);
  }
}

/** The real clock: performance.now() and setTimeout. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(delayMs, fn, options) {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    if (options?.background) handle.unref();
    return new SystemTimer(handle);
  },
};

interface PendingTimer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. Timers fire in due order (ties in creation
 * order) during advance(), including timers created by other timers' callbacks.
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(start = 0) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const timer: PendingTimer = { due: this.current + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      let next: PendingTimer | undefined;
      for (const t of this.timers) {
        if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.current = Math.max(this.current, next.due);
      next.cancelled = true;
      next.fn();
    }
    this.current = target;
  }

  /** Number of timers still waiting. */
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}
