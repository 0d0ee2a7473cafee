// Locating a divergence: run two engines side by side over the tape's events, from the last
// snapshot at or before a starting point, comparing their digests after every event (the
// built-in digest is O(1) for exactly this). The first event after which they differ is the
// first divergent event; the report shows it and the difference of the two states there.
//
// Both engines restore the same snapshot and must share a digest algorithm for the comparison
// to mean anything (two builds of one engine do).

import { RunContext } from '../engine/context.js';
import type { Engine, JsonEvent } from '../engine/types.js';
import type { TapeReader } from '../tape/reader.js';
import { diffValues, type Difference } from './diff.js';

export interface Divergence {
  /** The first event after which the two digests differ. */
  readonly seq: number;
  readonly event: JsonEvent | null;
  readonly timestampUs: number;
  readonly partition: number;
  readonly expectedDigest: string;
  readonly actualDigest: string;
  /** Where the two states differ (from the engines' view()), when both have one. */
  readonly differences: readonly Difference[];
  readonly differencesTotal: number;
}

export interface LockstepResult {
  /** Null when the engines agree on every event compared. */
  readonly divergence: Divergence | null;
  /** The first event compared (the snapshot's position) and how many were compared. */
  readonly fromSeq: number;
  readonly eventsCompared: number;
}

/**
 * Apply the tape's events from the last snapshot at or before `fromSeq` through `toSeq`
 * (included; the end by default) to `expected` and `actual` in lockstep, and return the
 * first event after which their digests differ.
 */
export function lockstep(reader: TapeReader, expected: Engine, actual: Engine, fromSeq = 0, toSeq = Number.MAX_SAFE_INTEGER): LockstepResult {
  const meta = reader.meta;
  const snapshot = fromSeq > 0 ? reader.snapshotAtOrBefore(fromSeq) : null;
  const start = snapshot?.nextSeq ?? 0;
  let stateA = snapshot === null ? expected.init(meta.engineOptions ?? undefined) : expected.restore(snapshot.state);
  let stateB = snapshot === null ? actual.init(meta.engineOptions ?? undefined) : actual.restore(snapshot.state);
  const ctxA = new RunContext(meta.runSeed, { startUs: snapshot?.nowUs ?? 0 });
  const ctxB = new RunContext(meta.runSeed, { startUs: snapshot?.nowUs ?? 0 });
  let compared = 0;

  const report = (seq: number, event: JsonEvent | null, timestampUs: number, partition: number): Divergence => {
    const viewA = expected.view?.(stateA);
    const viewB = actual.view?.(stateB);
    const diff = viewA !== undefined && viewB !== undefined ? diffValues(viewA, viewB) : { differences: [], total: 0 };
    return {
      seq,
      event,
      timestampUs,
      partition,
      expectedDigest: expected.digest(stateA),
      actualDigest: actual.digest(stateB),
      differences: diff.differences,
      differencesTotal: diff.total,
    };
  };

  if (expected.digest(stateA) !== actual.digest(stateB)) {
    return { divergence: report(start - 1, null, 0, 0), fromSeq: start, eventsCompared: 0 };
  }
  for (const cursor of reader.blocks(start)) {
    while (reader.advance(cursor)) {
      if (cursor.seq < start) continue;
      if (cursor.seq > toSeq) return { divergence: null, fromSeq: start, eventsCompared: compared };
      const payload = cursor.payload();
      const eventA = expected.codec.decode(payload);
      const eventB = actual.codec.decode(payload);
      stateA = expected.apply(stateA, eventA, ctxA.prepare(cursor.seq, cursor.timestampUs, cursor.partition));
      stateB = actual.apply(stateB, eventB, ctxB.prepare(cursor.seq, cursor.timestampUs, cursor.partition));
      compared++;
      if (expected.digest(stateA) !== actual.digest(stateB)) {
        return { divergence: report(cursor.seq, expected.codec.toJSON(eventA), cursor.timestampUs, cursor.partition), fromSeq: start, eventsCompared: compared };
      }
    }
  }
  return { divergence: null, fromSeq: start, eventsCompared: compared };
}
