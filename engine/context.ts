// The context a runner hands to Engine.apply. One instance is reused for every event, so the
// hot loop allocates nothing for it; `prepare` moves it to the next event.

import { VirtualClock } from './clock.js';
import { EventRandom, type Random } from './random.js';
import type { ApplyContext } from './types.js';

/** Receives each update the engine emits, with the seq and partition of the event being applied. */
export type UpdateSink<U> = (update: U, seq: number, partition: number) => void;

export class RunContext<U = unknown> implements ApplyContext<U> {
  seq = 0;
  timestampUs = 0;
  partition = 0;
  /** Updates emitted so far in this run. */
  emitted = 0;
  readonly clock: VirtualClock;
  private readonly eventRandom = new EventRandom();
  private readonly sink: UpdateSink<U> | null;

  constructor(readonly runSeed: number, options: { startUs?: number; sink?: UpdateSink<U> } = {}) {
    this.clock = new VirtualClock(options.startUs ?? 0);
    this.sink = options.sink ?? null;
  }

  get nowUs(): number {
    return this.clock.nowUs;
  }

  get random(): Random {
    return this.eventRandom;
  }

  /** Point the context at event `seq` and advance the virtual clock to its timestamp. */
  prepare(seq: number, timestampUs: number, partition: number): this {
    this.seq = seq;
    this.timestampUs = timestampUs;
    this.partition = partition;
    this.clock.advanceTo(timestampUs);
    this.eventRandom.reset(this.runSeed, seq);
    return this;
  }

  emit(update: U): void {
    this.emitted++;
    if (this.sink !== null) this.sink(update, this.seq, this.partition);
  }
}
