/**
 * The direct phase of bench/campaign.ts in a campaign's shape: the same wave sizes as the
 * campaign (waveSizes), a wave's devices started as room allows under a concurrency limit, and
 * the next wave admitted once a share of the current one has succeeded (the campaign's success
 * threshold), as CampaignEngine does; so direct Object 9 installs run the same schedule without
 * the campaign and chain layers.
 */
import { waveSizes } from '../../src/fleet/campaigns.js';

export class DirectWaves {
  /** Cumulative end (exclusive device index) of each wave. */
  readonly bounds: readonly number[];
  private wave = 0;
  /** Devices [0, next) have been started. */
  next = 0;

  constructor(
    readonly total: number,
    percents: readonly number[],
    private readonly concurrency: number,
    private readonly threshold: number,
  ) {
    let end = 0;
    this.bounds = waveSizes(total, percents.map((percent) => ({ percent }))).map((size) => (end += size));
  }

  /**
   * How many devices to start now (devices [next, next + n) — next moves on): `open` jobs are
   * running, `succeededIn(from, to)` counts the succeeded jobs of devices [from, to).
   */
  take(open: number, succeededIn: (from: number, to: number) => number): number {
    while (this.wave < this.bounds.length - 1 && this.next >= this.bounds[this.wave]!) {
      const start = this.wave === 0 ? 0 : this.bounds[this.wave - 1]!;
      const end = this.bounds[this.wave]!;
      if (end > start && succeededIn(start, end) < Math.ceil(this.threshold * (end - start))) break;
      this.wave++;
    }
    const n = Math.max(0, Math.min((this.bounds[this.wave] ?? this.total) - this.next, this.concurrency - open));
    this.next += n;
    return n;
  }

  /** The wave devices are being started from (0-based). */
  get currentWave(): number {
    return this.wave;
  }
}
