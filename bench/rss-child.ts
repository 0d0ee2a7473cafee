// Child process of bench/rss.ts: records N synthetic events and reports its RSS samples.

import { performance } from 'node:perf_hooks';
import { worldEngine } from '../engine/world/index.js';
import { recordTape } from '../recorder/record.js';
import { WorldTrafficSource } from '../recorder/sources/synthetic.js';

const events = Number(process.argv[2]);
const path = process.argv[3];
const samples: { events: number; rssMb: number }[] = [];
let done = 0;
const timer = setInterval(() => samples.push({ events: done, rssMb: process.memoryUsage().rss / 1048576 }), 100);
const started = performance.now();
await recordTape(new WorldTrafficSource({ seed: 1, events }), {
  path,
  overwrite: true,
  engine: worldEngine,
  runSeed: 1,
  onProgress: (p) => (done = p.events),
});
clearInterval(timer);
samples.push({ events, rssMb: process.memoryUsage().rss / 1048576 });
const at = (fraction: number) => samples.find((s) => s.events >= fraction * events)?.rssMb ?? samples[samples.length - 1].rssMb;
process.send!({
  events,
  elapsedMs: performance.now() - started,
  peakRssMb: Math.max(...samples.map((s) => s.rssMb)),
  rssMbAtQuarters: [0.1, 0.25, 0.5, 0.75, 1].map(at),
});
