// Resuming a recording: find where the tape ends, rebuild the engine's state there (from the
// last snapshot, then the events after it, checking the checkpoints on the way), and hand
// back the source position stored with the last commit.

import { RunContext } from '../engine/context.js';
import { eventDecoder } from '../engine/decode.js';
import { TapedeckError } from '../engine/errors.js';
import type { Engine } from '../engine/types.js';
import { TapeCorruptError } from '../tape/errors.js';
import { TapeReader } from '../tape/reader.js';
import type { TapeMeta } from '../tape/schema.js';

export interface ResumePoint<S = unknown> {
  readonly meta: TapeMeta;
  /** Events in the tape: the next event gets this sequence number. */
  readonly nextSeq: number;
  readonly nextBlockNo: number;
  /** The engine state after the last event, and the virtual clock then. */
  readonly state: S;
  readonly nowUs: number;
  /** Stored position of the source, or null when nothing was committed yet. */
  readonly position: unknown;
  readonly read: number;
  readonly rejected: number;
}

export function openResume<S, E>(path: string, engine: Engine<S, E>, sourceName: string): ResumePoint<S> {
  const reader = TapeReader.open(path);
  try {
    const meta = reader.meta;
    if (meta.engineName !== engine.name) {
      throw new TapedeckError('E_RESUME_MISMATCH', `${path} was recorded with engine "${meta.engineName}"; resume it with --engine ${meta.engineName} (or its module path)`);
    }
    if (meta.codec !== engine.codec.name) {
      throw new TapedeckError('E_RESUME_MISMATCH', `${path} was recorded with codec ${meta.codec}, but engine ${engine.name} now uses ${engine.codec.name}`);
    }
    const sourceKind = (meta.source as { kind?: string } | null)?.kind;
    if (sourceKind !== sourceName) {
      throw new TapedeckError('E_RESUME_MISMATCH', `${path} was recorded from a ${sourceKind ?? 'unknown'} source, not ${sourceName}`);
    }
    const summary = reader.summary();
    const stored = reader.sourcePositions().find((p) => p.source === sourceName) ?? null;
    const nextSeq = stored?.nextSeq ?? 0;
    // A position short of the blocks' end cannot be: they are committed together. Blocks that
    // end short of the position (missing, or with a gap) are named by the pass over them below.
    if (nextSeq < summary.events) {
      throw new TapeCorruptError(path, `its blocks hold ${summary.events} events, but its source position is at event ${nextSeq}: where to resume is unknown`);
    }
    const checkpoints = reader.checkpoints();
    const snapshot = reader.snapshotAtOrBefore(nextSeq);
    let state: S;
    let from: number;
    const ctx = new RunContext(meta.runSeed, { startUs: snapshot?.nowUs ?? 0 });
    if (snapshot !== null) {
      state = engine.restore(snapshot.state);
      const digest = engine.digest(state);
      if (digest !== snapshot.digest) {
        throw new TapedeckError('E_RESUME_MISMATCH', `${path}: the snapshot at event ${snapshot.nextSeq} restores to digest ${digest}, not the recorded ${snapshot.digest}; is this the engine that recorded it?`);
      }
      from = snapshot.nextSeq;
    } else {
      state = engine.init(meta.engineOptions ?? undefined);
      from = 0;
    }
    let ci = checkpoints.findIndex((c) => c.nextSeq > from);
    if (ci < 0) ci = checkpoints.length;
    const decode = eventDecoder(engine);
    // Every block is read and checked (its checksum, its place in the sequence), those before
    // the snapshot too, though only the events after it are applied again: a tape with a
    // damaged block is refused, as every other command refuses it, rather than grown.
    for (const cursor of reader.blocks(0)) {
      if (cursor.header.firstSeq + cursor.header.eventCount <= from) continue;
      while (reader.advance(cursor)) {
        if (cursor.seq < from) continue;
        ctx.prepare(cursor.seq, cursor.timestampUs, cursor.partition);
        state = engine.apply(state, decode(cursor.bytes, cursor.payloadOffset, cursor.payloadLength), ctx);
        if (ci < checkpoints.length && checkpoints[ci].nextSeq === cursor.seq + 1) {
          const digest = engine.digest(state);
          if (digest !== checkpoints[ci].digest) {
            throw new TapedeckError('E_RESUME_MISMATCH', `${path}: rebuilding the state, the digest after event ${cursor.seq} is ${digest}, not the recorded ${checkpoints[ci].digest}`);
          }
          ci++;
        }
      }
    }
    return {
      meta,
      nextSeq,
      nextBlockNo: summary.blocks,
      state,
      nowUs: ctx.nowUs,
      position: stored?.position ?? null,
      read: stored?.read ?? 0,
      rejected: stored?.rejected ?? 0,
    };
  } finally {
    reader.close();
  }
}
