// Passes over a tape's timestamps for the latency model: the timestamp resolution (tick), the
// recorded peak rate, and the model runs themselves. They read blocks (checksums checked) but
// never decode payloads, so a pass costs a fraction of a replay.

import type { TapeReader } from '../../tape/reader.js';
import type { QueueModel } from './model.js';

/** Events sampled from the start of the range to decide the tick. */
const TICK_SAMPLE = 4096;

/**
 * The resolution of the tape's timestamps: 1 s, 1 ms or 1 µs, the coarsest that divides every
 * timestamp among the first 4096 events of the range. Kafka stamps are whole milliseconds; the
 * synthetic generator's are microseconds.
 */
export function timestampTickUs(reader: TapeReader, fromSeq: number): number {
  let all = 0;
  let n = 0;
  for (const cursor of reader.blocks(fromSeq)) {
    while (reader.advance(cursor)) {
      if (cursor.seq < fromSeq) continue;
      const ts = cursor.timestampUs;
      all |= ts % 1_000_000 === 0 ? 0 : ts % 1000 === 0 ? 1 : 2;
      if (++n >= TICK_SAMPLE) return tickOf(all);
    }
  }
  return n === 0 ? 1 : tickOf(all);
}

function tickOf(flags: number): number {
  return flags >= 2 ? 1 : flags === 1 ? 1000 : 1_000_000;
}

export interface RangeTiming {
  readonly events: number;
  readonly firstTsUs: number;
  readonly minTsUs: number;
  readonly maxTsUs: number;
  /** The window the peak rate is measured over. */
  readonly peakWindowMs: number;
  /** The most events in one window, per second. */
  readonly peakRatePerSec: number;
  /** Events over the recorded span, per second. */
  readonly meanRatePerSec: number;
}

/**
 * Recorded rates of a range: the mean, and the peak over windows of 100 ms (a tenth of the span
 * for a range shorter than 1 s, but at least one tick): short enough to see a burst, which
 * one-second windows would average away, long enough to hold thousands of events at the
 * rates this is for.
 */
export function rangeTiming(reader: TapeReader, fromSeq: number, toSeq: number, minTsUs: number, maxTsUs: number, tickUs: number): RangeTiming {
  const spanUs = Math.max(maxTsUs - minTsUs, 0);
  const windowUs = Math.max(tickUs, spanUs >= 1_000_000 ? 100_000 : Math.floor(spanUs / 10));
  const counts = new Map<number, number>();
  let events = 0;
  let firstTsUs = Number.NaN;
  let lo = Infinity;
  let hi = -Infinity;
  let window = Number.NaN;
  let inWindow = 0;
  blocks: for (const cursor of reader.blocks(fromSeq)) {
    while (reader.advance(cursor)) {
      if (cursor.seq < fromSeq) continue;
      if (cursor.seq > toSeq) break blocks;
      const ts = cursor.timestampUs;
      if (events++ === 0) firstTsUs = ts;
      if (ts < lo) lo = ts;
      if (ts > hi) hi = ts;
      const w = Math.floor((ts - minTsUs) / windowUs);
      if (w !== window) {
        if (inWindow > 0) counts.set(window, (counts.get(window) ?? 0) + inWindow);
        window = w;
        inWindow = 0;
      }
      inWindow++;
    }
  }
  if (inWindow > 0) counts.set(window, (counts.get(window) ?? 0) + inWindow);
  let peak = 0;
  for (const c of counts.values()) if (c > peak) peak = c;
  const rangeSpanUs = events > 1 ? hi - lo : 0;
  return {
    events,
    firstTsUs,
    minTsUs: events === 0 ? minTsUs : lo,
    maxTsUs: events === 0 ? maxTsUs : hi,
    peakWindowMs: windowUs / 1000,
    peakRatePerSec: Math.round((peak * 1e6) / windowUs),
    meanRatePerSec: rangeSpanUs > 0 ? Math.round(((events - 1) * 1e6) / rangeSpanUs) : 0,
  };
}

/**
 * Feed the range's timestamps to each model. `serviceUs` holds the measured service time of
 * each event of the range (index = seq - fromSeq), or is null when the models draw their own.
 */
export function runModels(reader: TapeReader, fromSeq: number, toSeq: number, models: readonly QueueModel[], serviceUs: Float32Array | null, onBlock?: (done: number) => void): void {
  let done = 0;
  let ts = new Float64Array(8192);
  const feed = (n: number): void => {
    const service = serviceUs === null ? null : serviceUs.subarray(done - n, done);
    for (const model of models) model.pushMany(ts, service, n);
  };
  for (const cursor of reader.blocks(fromSeq)) {
    let n = 0;
    let past = false;
    while (reader.advance(cursor)) {
      if (cursor.seq < fromSeq) continue;
      if (cursor.seq > toSeq) {
        past = true;
        break;
      }
      if (n === ts.length) {
        const bigger = new Float64Array(ts.length * 2);
        bigger.set(ts);
        ts = bigger;
      }
      ts[n++] = cursor.timestampUs;
      done++;
    }
    if (n > 0) feed(n);
    onBlock?.(done);
    if (past) break;
  }
}
