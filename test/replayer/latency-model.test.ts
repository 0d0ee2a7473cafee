// The latency model beside a replay, on its own thread: with drawn service times the thread
// reads the events' timestamps from the tape itself, as far as the replay has gone. Its
// figures must be those of the model run here over the same events, one push at a time,
// whatever range the replay covers.

import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { replayTape } from '../../replayer/replay.js';
import { createModel, latencySetup, type LatencyOptions } from '../../replayer/latency/index.js';
import { modelWorkerUrl } from '../../replayer/latency/remote.js';
import { parseServiceTime } from '../../replayer/latency/service-time.js';
import { TapeReader } from '../../tape/reader.js';
import { tempDir } from '../support/cli.js';

let tape = '';

beforeAll(async () => {
  tape = join(tempDir(), 'model.tape');
  // Blocks of 1,000 events: a range starts and ends inside blocks, and the replay reports many.
  await recordTape(new WorldTrafficSource({ seed: 11, events: 60_000 }), { path: tape, engine: worldEngine, runSeed: 11, blockEvents: 1_000, pipeline: 'off' });
});

/** The model run on this thread over the tape's events fromSeq..toSeq, one push each. */
function modelHere(options: LatencyOptions, fromSeq: number, toSeq: number, speed: number): unknown {
  const reader = TapeReader.open(tape);
  try {
    const setup = latencySetup(reader, fromSeq, options);
    const summary = reader.summary();
    const model = createModel(setup, options, speed, Math.max(0, (summary.maxTsUs ?? 0) - (summary.minTsUs ?? 0)));
    for (const cursor of reader.blocks(fromSeq)) {
      while (reader.advance(cursor)) {
        if (cursor.seq >= fromSeq && cursor.seq <= toSeq) model.push(cursor.timestampUs, 0);
      }
    }
    return model.finish();
  } finally {
    reader.close();
  }
}

describe('the latency model on its own thread', () => {
  it('reads the timestamps from the tape and gives the figures of the model run in the replay\'s thread, for any range', () => {
    // Without the compiled worker the model runs in the replay's thread: nothing to compare.
    expect(modelWorkerUrl(), 'the compiled model worker (npm run build)').not.toBeNull();
    const options: LatencyOptions = { serviceTime: parseServiceTime('exp:12us'), seed: 3, queueCapacity: 64 };
    for (const [fromSeq, toSeq] of [
      [0, 59_999],
      [12_345, 59_999],
      [500, 41_001],
      [59_999, 59_999],
    ]) {
      const replay = replayTape(tape, { engine: worldEngine, fromSeq, toSeq, latency: options });
      expect(replay.ok).toBe(true);
      const { budget: _b, withinBudget: _w, serviceTime: _s, seed: _d, queueCapacity: _q, whenFull: _f, tickUs: _t, ...figures } = replay.latency!;
      expect(figures.events, `${fromSeq}..${toSeq}`).toBe(toSeq - fromSeq + 1);
      expect(figures, `${fromSeq}..${toSeq}`).toEqual(modelHere(options, fromSeq, toSeq, 1));
    }
  });
});
