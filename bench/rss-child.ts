// Child process of bench/rss.ts. `record N PATH`: records N synthetic events; `replay N PATH`:
// replays the tape, then times a seek into its middle. RSS is sampled every 100 ms, in
// megabytes of 10^6 bytes, the unit the goals are stated in (until the twenty-second session
// it was mebibytes labelled MB, which let a goal of 200 MB pass at up to 209.7 MB).

import { performance } from 'node:perf_hooks';
import { worldEngine } from '../engine/world/index.js';
import { recordTape } from '../recorder/record.js';
import { WorldTrafficSource } from '../recorder/sources/synthetic.js';
import { replayTape } from '../replayer/replay.js';
import type { PhaseRss } from './rss.js';

/** A megabyte: the goals' unit. */
const MB = 1_000_000;

const mode = process.argv[2] as 'record' | 'replay';
const events = Number(process.argv[3]);
const path = process.argv[4];

async function sampled(run: (progress: (done: number) => void) => Promise<void> | void): Promise<PhaseRss> {
  const samples: { events: number; rssMb: number }[] = [];
  let done = 0;
  // Replay is synchronous, so its samples are taken from its progress callback instead.
  const sample = () => samples.push({ events: done, rssMb: process.memoryUsage().rss / MB });
  let lastSampleMs = 0;
  const timer = setInterval(sample, 100);
  const started = performance.now();
  await run((n) => {
    done = n;
    const now = performance.now();
    if (now - lastSampleMs >= 100) {
      lastSampleMs = now;
      sample();
    }
  });
  clearInterval(timer);
  done = events;
  sample();
  const at = (fraction: number) => samples.find((s) => s.events >= fraction * events)?.rssMb ?? samples[samples.length - 1].rssMb;
  return {
    elapsedMs: performance.now() - started,
    peakRssMb: Math.max(...samples.map((s) => s.rssMb)),
    rssMbAtQuarters: [0.1, 0.25, 0.5, 0.75, 1].map(at),
  };
}

if (mode === 'record') {
  const record = await sampled(async (progress) => {
    await recordTape(new WorldTrafficSource({ seed: 1, events }), {
      path,
      overwrite: true,
      engine: worldEngine,
      runSeed: 1,
      onProgress: (p) => progress(p.events),
    });
  });
  process.send!({ record });
} else {
  // A fresh process: what the replay holds, not what recording left behind.
  const replay = await sampled((progress) => {
    const result = replayTape(path, { onProgress: (n) => progress(n) });
    if (!result.ok) throw new Error('bench replay failed verification');
  });
  const seekStarted = performance.now();
  const seek = replayTape(path, { fromSeq: Math.floor(events / 2), toSeq: Math.floor(events / 2) });
  const seekMs = performance.now() - seekStarted;
  if (!seek.ok || seek.events !== 1) throw new Error('bench seek failed');
  process.send!({ replay, seekMs });
}
