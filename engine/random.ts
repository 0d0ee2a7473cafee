// Seeded randomness. The generator is pure-rand's xoroshiro128+ (pinned version): the same
// seed gives the same sequence on every platform, and a golden test holds it to that.

import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { hashFinish, hashStart, hashStep, highWord, lowWord } from './hash.js';

type Generator = ReturnType<typeof xoroshiro128plus>;

/** The randomness an engine or generator may use. */
export interface Random {
  /** Uniform integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** Uniform float in [0, 1), with 53 bits of randomness. */
  float(): number;
  /** Uniform 32-bit unsigned integer. */
  uint32(): number;
}

/** A seeded generator whose state can be saved and restored. */
export class SeededRandom implements Random {
  private generator: Generator;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
    this.generator = xoroshiro128plus(seed | 0);
  }

  static fromState(state: readonly number[]): SeededRandom {
    const random = new SeededRandom(0);
    random.generator = xoroshiro128plusFromState(state);
    return random;
  }

  state(): number[] {
    return [...this.generator.getState()];
  }

  int(min: number, max: number): number {
    if (min !== (min | 0) || max !== (max | 0) || max < min) {
      // Bounds that are not 32-bit integers, or an empty range: pure-rand as it is (a value in
      // 32 bits as an integer, as below).
      const value = uniformInt(this.generator, min, max);
      return min >= -2147483648 && max <= 2147483647 ? value | 0 : value;
    }
    // Bounds that are 32-bit integers (every draw the generator and the engines make): pure-rand's
    // uniformInt drawn here step by step, for the same value from the same draws. Its
    // `deltaV % rangeSize` on a double is a call to fmod in V8, more than half the cost of a
    // draw; the quotient below is exact (both operands are integers below 2^32, so the
    // division cannot round up to the next integer), and so is the remainder. A property test
    // holds it equal to uniformInt (test/engine/random.test.ts).
    //
    // A draw is taken when it lies below `allowed`, the largest multiple of the range that fits
    // in 2^32, which is more than 2^32 - range: any draw below that is taken without working
    // `allowed` out (a division), and for the ranges drawn here (at most 65,536 values) that is
    // every draw but about one in 65,000.
    const range = max - min + 1;
    const generator = this.generator;
    let draw = generator.next() + 2147483648;
    if (draw >= 4294967296 - range) {
      const allowed = range > 2 ? Math.floor(4294967296 / range) * range : 4294967296;
      while (draw >= allowed) draw = generator.next() + 2147483648;
    }
    // As a small integer (| 0): an event object holding a double in a field makes V8 widen that
    // field for every object of the same shape in the thread (the codec's decoded events too),
    // which cost a replay or a recording in the same process a third of its speed.
    return (draw - Math.floor(draw / range) * range + min) | 0;
  }

  float(): number {
    return uniformFloat64(this.generator);
  }

  uint32(): number {
    return this.generator.next() >>> 0;
  }
}

/**
 * The seed of the randomness an engine gets for event `seq` in a run seeded with `runSeed`.
 * Derived, not carried, so that seeking to a snapshot needs no generator state.
 */
export function eventSeed(runSeed: number, seq: number): number {
  let h = hashStart(0x7a9ede, 3);
  h = hashStep(h, runSeed);
  h = hashStep(h, lowWord(seq));
  h = hashStep(h, highWord(seq));
  return hashFinish(h) | 0;
}

/**
 * Per-event randomness that only builds its generator when the engine draws from it, so
 * engines that never use randomness pay nothing per event.
 */
export class EventRandom implements Random {
  private generator: SeededRandom | null = null;
  private runSeed = 0;
  private seq = 0;

  /** Point at event `seq`; the next draw starts that event's sequence. */
  reset(runSeed: number, seq: number): void {
    this.runSeed = runSeed;
    this.seq = seq;
    this.generator = null;
  }

  private current(): SeededRandom {
    if (this.generator === null) this.generator = new SeededRandom(eventSeed(this.runSeed, this.seq));
    return this.generator;
  }

  int(min: number, max: number): number {
    return this.current().int(min, max);
  }

  float(): number {
    return this.current().float();
  }

  uint32(): number {
    return this.current().uint32();
  }
}
