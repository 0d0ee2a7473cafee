// The determinism guard: while engine code runs during a replay, the APIs that let it see the
// world outside the tape (the wall clock, ambient randomness, timers) are replaced by traps.
// A trap records which API was called and throws a DeterminismViolationError into the engine;
// the replayer reports the API and the event even if the engine swallows the error. Learned
// from Temporal's workflow sandbox, in the small: no separate context, just traps on globals,
// installed around engine calls only (the replayer's own timing and progress run unguarded).

import { TapedeckError } from '../engine/errors.js';

export class DeterminismViolationError extends TapedeckError {
  readonly api: string;
  constructor(api: string) {
    super('E_NONDETERMINISTIC', `engine code called ${api} during replay; use ctx.nowUs and ctx.random instead`);
    this.name = 'DeterminismViolationError';
    this.api = api;
  }
}

type Globals = {
  Date: DateConstructor;
  mathRandom: () => number;
  performanceNow: () => number;
  setTimeout: typeof setTimeout;
  setInterval: typeof setInterval;
  setImmediate: typeof setImmediate;
};

export class DeterminismGuard {
  /** The first forbidden API called since the last take(), or null. */
  private called: string | null = null;
  private saved: Globals | null = null;

  private trap(api: string): never {
    if (this.called === null) this.called = api;
    throw new DeterminismViolationError(api);
  }

  /** Install the traps (idempotent). */
  install(): void {
    if (this.saved !== null) return;
    const g = globalThis as unknown as Record<string, unknown>;
    this.saved = {
      Date,
      mathRandom: Math.random,
      performanceNow: performance.now,
      setTimeout,
      setInterval,
      setImmediate,
    };
    const RealDate = this.saved.Date;
    const trap = (api: string) => this.trap(api);
    // new Date(value) is deterministic and allowed; new Date() and Date.now() read the clock.
    const GuardedDate = function (this: unknown, ...args: unknown[]) {
      if (args.length === 0) trap('new Date()');
      return new (RealDate as unknown as new (...a: unknown[]) => Date)(...args);
    } as unknown as DateConstructor;
    Object.setPrototypeOf(GuardedDate, RealDate);
    (GuardedDate as unknown as { prototype: Date }).prototype = RealDate.prototype;
    (GuardedDate as unknown as { now: () => number }).now = () => trap('Date.now()');
    g.Date = GuardedDate;
    Math.random = () => trap('Math.random()');
    performance.now = () => trap('performance.now()');
    g.setTimeout = () => trap('setTimeout()');
    g.setInterval = () => trap('setInterval()');
    g.setImmediate = () => trap('setImmediate()');
  }

  /** Put the real APIs back (idempotent). */
  uninstall(): void {
    const saved = this.saved;
    if (saved === null) return;
    const g = globalThis as unknown as Record<string, unknown>;
    g.Date = saved.Date;
    Math.random = saved.mathRandom;
    performance.now = saved.performanceNow;
    g.setTimeout = saved.setTimeout;
    g.setInterval = saved.setInterval;
    g.setImmediate = saved.setImmediate;
    this.saved = null;
  }

  /** Whether a forbidden API was called since the last take(). */
  get violated(): boolean {
    return this.called !== null;
  }

  /** The API called since the last take() (null if none), and forget it. */
  take(): string | null {
    const api = this.called;
    this.called = null;
    return api;
  }
}
