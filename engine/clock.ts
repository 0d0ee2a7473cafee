// The virtual clock. Runners advance it to each event's recorded timestamp; it never goes
// backwards (timestamps from different partitions interleave out of order), so engines can
// treat `nowUs` like a real monotonic clock. Units: microseconds since the Unix epoch, which
// stay exact in a JS number until the year 2255.

export class VirtualClock {
  private currentUs: number;

  constructor(startUs = 0) {
    this.currentUs = startUs;
  }

  get nowUs(): number {
    return this.currentUs;
  }

  /** Move to `timestampUs` unless the clock is already past it; returns the new now. */
  advanceTo(timestampUs: number): number {
    if (timestampUs > this.currentUs) this.currentUs = timestampUs;
    return this.currentUs;
  }
}
