// `npm run bench`: throughput of tapedeck's paths, each as a ratio to a baseline measured in
// the same run on the same machine (the machines are shared and noisy, so absolute figures
// vary; ratios travel better). Prints a table, then one JSON object as the last line.
//
//   npm run bench -- [--events N] [--reps N] [--only name,name]
//
// Baseline: engine-ceiling, the `world` engine applying pre-decoded events held in memory,
// with a digest every 10,000 events (the default checkpoint cadence). Later issues add their
// cases (and their own raw baselines) to CASES.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { RunContext } from '../engine/context.js';
import { worldEngine, WorldTraffic, type TrafficRecord } from '../engine/world/index.js';
import { recordTape } from '../recorder/record.js';
import { WorldTrafficSource } from '../recorder/sources/synthetic.js';
import { replayTape } from '../replayer/replay.js';

interface BenchContext {
  readonly events: number;
  readonly seed: number;
  /** Pre-generated events in memory, built only for the cases that need them. */
  records: readonly TrafficRecord[];
  readonly dir: string;
  /** A tape of `events` events, recorded once for the replay cases. */
  readonly tape: string;
}

interface Case {
  readonly name: string;
  readonly description: string;
  /** Needs ctx.records. These cases run last, so that the other cases do not pay for a heap holding them. */
  readonly inMemory?: boolean;
  /** Runs once and returns the number of events processed. */
  run(ctx: BenchContext): number | Promise<number>;
}

const CHECKPOINT_EVERY = 10_000;

function applyAll(ctx: BenchContext, digestEvery: number, invariantsEvery: number): number {
  const run = new RunContext(ctx.seed);
  const state = worldEngine.init();
  const records = ctx.records;
  let sink = '';
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    run.prepare(i, r.timestampUs, r.partition);
    worldEngine.apply(state, r.event, run);
    const n = i + 1;
    if (n % digestEvery === 0) sink = worldEngine.digest(state);
    if (n % invariantsEvery === 0 && worldEngine.checkInvariants(state).length > 0) throw new Error('invariant violated in bench');
  }
  if (sink === '') throw new Error('no digest taken');
  return records.length;
}

const CASES: readonly Case[] = [
  {
    name: 'engine-ceiling',
    inMemory: true,
    description: 'world engine on pre-decoded events in memory, digest every 10k (baseline)',
    run: (ctx) => applyAll(ctx, CHECKPOINT_EVERY, Infinity),
  },
  {
    name: 'engine-digest-every-event',
    inMemory: true,
    description: 'the same with a digest after every event (the digest is O(1))',
    run: (ctx) => applyAll(ctx, 1, Infinity),
  },
  {
    name: 'engine-invariants-every-10k',
    inMemory: true,
    description: 'the same as the ceiling plus the O(state) invariant check every 10k',
    run: (ctx) => applyAll(ctx, CHECKPOINT_EVERY, CHECKPOINT_EVERY),
  },
  {
    name: 'generate-world-traffic',
    description: 'the synthetic generator alone',
    run: (ctx) => {
      const traffic = new WorldTraffic({ seed: ctx.seed, events: ctx.events });
      let n = 0;
      while (traffic.next() !== null) n++;
      return n;
    },
  },
  {
    name: 'record-synthetic',
    description: 'generate + encode + apply with live checkpoints + write blocks to a tape',
    run: async (ctx) => {
      const path = join(ctx.dir, 'record-bench.tape');
      const result = await recordTape(new WorldTrafficSource({ seed: ctx.seed, events: ctx.events }), {
        path,
        overwrite: true,
        engine: worldEngine,
        runSeed: ctx.seed,
      });
      return result.events;
    },
  },
  {
    name: 'replay-verify',
    description: 'full-speed replay of a tape, every block checksummed, every checkpoint verified',
    run: (ctx) => {
      const result = replayTape(ctx.tape, { engine: worldEngine });
      if (!result.ok) throw new Error('bench replay failed verification');
      return result.events;
    },
  },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      reps: { type: 'string', default: '5' },
      only: { type: 'string' },
      seed: { type: 'string', default: '1' },
    },
  });
  const events = Number(values.events);
  const reps = Number(values.reps);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(events) || events < 10_000) throw new Error(`--events must be an integer of at least 10000, got ${values.events}`);
  if (!Number.isSafeInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got ${values.reps}`);
  const only = values.only === undefined ? null : new Set(values.only.split(','));
  const selected = CASES.filter((c) => only === null || only.has(c.name) || c.name === 'engine-ceiling');
  const cases = [...selected.filter((c) => !c.inMemory), ...selected.filter((c) => c.inMemory)];

  const dir = mkdtempSync(join(tmpdir(), 'tapedeck-bench-'));
  try {
    process.stderr.write(`preparing a tape of ${events} events (seed ${seed})...\n`);
    const tape = join(dir, 'replay-bench.tape');
    await recordTape(new WorldTrafficSource({ seed, events }), { path: tape, engine: worldEngine, runSeed: seed });
    const ctx: BenchContext = { events, seed, records: [], dir, tape };

    const results: { name: string; description: string; events: number; medianMs: number; eventsPerSec: number; runsMs: number[] }[] = [];
    for (const c of cases) {
      if (c.inMemory && ctx.records.length === 0) {
        const traffic = new WorldTraffic({ seed, events });
        const records: TrafficRecord[] = [];
        for (let r = traffic.next(); r !== null; r = traffic.next()) records.push(r);
        ctx.records = records;
      }
      process.stderr.write(`${c.name}: warm-up + ${reps} runs\n`);
      await c.run(ctx); // warm-up: JIT and page cache
      const runsMs: number[] = [];
      let n = 0;
      for (let i = 0; i < reps; i++) {
        const started = performance.now();
        n = await c.run(ctx);
        runsMs.push(performance.now() - started);
      }
      const medianMs = median(runsMs);
      results.push({ name: c.name, description: c.description, events: n, medianMs, eventsPerSec: (n * 1000) / medianMs, runsMs });
    }
    const ceiling = results.find((r) => r.name === 'engine-ceiling')!.eventsPerSec;
    const rows = results.map((r) => ({ ...r, ratioToCeiling: r.eventsPerSec / ceiling }));

    const header = ['case', 'events', 'median ms', 'events/s', 'x ceiling'];
    const table = rows.map((r) => [r.name, r.events.toLocaleString('en-US'), r.medianMs.toFixed(1), Math.round(r.eventsPerSec).toLocaleString('en-US'), r.ratioToCeiling.toFixed(3)]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
    const format = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    console.log(`tapedeck bench: node ${process.version}, ${events.toLocaleString('en-US')} events, median of ${reps} runs, seed ${seed}`);
    console.log(format(header));
    for (const t of table) console.log(format(t));
    console.log('');
    for (const r of rows) console.log(`  ${r.name}: ${r.description}`);
    console.log(JSON.stringify({ node: process.version, events, reps, seed, baseline: 'engine-ceiling', cases: rows }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
