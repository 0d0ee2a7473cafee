// `npm run bench`: throughput of tapedeck's paths, each as a ratio to a baseline measured in
// the same run on the same machine (the machines are shared and noisy, so absolute figures
// vary; ratios travel better). Prints a table, then one JSON object as the last line.
//
//   npm run bench -- [--events N] [--reps N] [--only name,name] [--long-events N] [--kafka-events N]
//
// --only takes case names, plus `long-run` (the RSS run) and `kafka` (the broker cases).
//
// Baseline: engine-ceiling, the `world` engine applying pre-decoded events held in memory,
// with a digest every 10,000 events (the default checkpoint cadence). Later issues add their
// cases (and their own raw baselines) to CASES. A case runs in rounds with its baseline and the
// cases measured against either (rounds.ts), and its CPU time is measured beside its wall time
// (cpu.ts).

import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createReadStream, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { NdjsonSource } from '../recorder/sources/ndjson.js';
import { formatEventLine } from '../tape/ndjson.js';
import { TapeReader } from '../tape/reader.js';
import { measureLongRun, type RssReport } from './rss.js';
import { caseGroups, measureRounds, ratiosByRound, type RoundResult } from './rounds.js';
import { runKafkaBench, type KafkaBenchRow } from './kafka.js';
import { Socket } from 'node:net';
import { worldCodec } from '../engine/world/codec.js';
import { RunContext } from '../engine/context.js';
import { worldEngine, WorldTraffic, type TrafficRecord } from '../engine/world/index.js';
import { DEFAULT_BLOCK_EVENTS, recordTape } from '../recorder/record.js';
import { WorldTrafficSource } from '../recorder/sources/synthetic.js';
import { WorldTrafficPacker } from '../recorder/sources/world-traffic-packer.js';
import { trafficOptions } from '../engine/world/traffic.js';
import { parseServiceTime } from '../replayer/latency/service-time.js';
import { replayTape } from '../replayer/replay.js';
import { simulate } from '../simulator/simulate.js';
import { FAULT_KINDS } from '../simulator/faults.js';
import type { Engine } from '../engine/types.js';
import { replayTapeSharded } from '../replayer/shards.js';

/** What a case measured (wall and CPU time of each run), with its description. */
interface CaseResult extends RoundResult {
  readonly description: string;
}

/** Cores this process may run on: no schedule of a case's threads finishes sooner than its CPU time divided by these. */
const CORES = availableParallelism();

/**
 * The most a case could reach against its baseline if its CPU time were spread perfectly over
 * CORES cores, said with the CPU time it comes from: a bound set by the work the case does,
 * whatever threads do it. When it is below a goal too, no spreading of the same work over
 * this machine's cores can meet that goal.
 */
function cpuBound(row: { events: number; cpuMs: number }, baseline: { eventsPerSec: number }): string {
  const best = (row.events * 1000) / (row.cpuMs / CORES) / baseline.eventsPerSec;
  return `at most ${best.toFixed(3)} for its ${Math.round(row.cpuMs).toLocaleString('en-US')} ms of CPU a run on ${CORES} cores`;
}

interface BenchContext {
  readonly events: number;
  readonly seed: number;
  /** Pre-generated events in memory, built only for the cases that need them. */
  records: readonly TrafficRecord[];
  readonly dir: string;
  /** A tape of `events` events, recorded once for the replay cases. */
  readonly tape: string;
  /** The same events as NDJSON (what `export` writes). */
  readonly ndjson: string;
  /** The tape's block rows, in memory, for the raw SQLite ceiling. */
  readonly blockRows: readonly unknown[][];
  /** The same events, one SQLite row each with a JSON payload, for the naive replay baseline. */
  readonly naiveDb: string;
}

interface Case {
  readonly name: string;
  readonly description: string;
  /** Needs ctx.records. These cases run last, so that the other cases do not pay for a heap holding them. */
  readonly inMemory?: boolean;
  /** The case this one is measured against (same run), besides the engine ceiling. */
  readonly baseline?: string;
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
    description: 'the JavaScript generator alone (advance()): the recorder\'s below 200,000 events, and for options the WebAssembly one does not take',
    run: (ctx) => {
      const traffic = new WorldTraffic({ seed: ctx.seed, events: ctx.events });
      let n = 0;
      while (traffic.advance()) n++;
      return n;
    },
  },
  {
    name: 'pack-world-traffic',
    description: "record-synthetic's source thread: the WebAssembly generator's blocks, with their position index and checksum",
    run: (ctx) => {
      const packer = new WorldTrafficPacker(trafficOptions({ seed: ctx.seed, events: ctx.events }), DEFAULT_BLOCK_EVENTS, 0);
      let n = 0;
      for (let blockNo = 0, block; (block = packer.packBlock(n, DEFAULT_BLOCK_EVENTS, blockNo)) !== null; blockNo++) n += block.eventCount;
      return n;
    },
  },
  {
    name: 'sqlite-raw-ceiling',
    description: 'the same blocks inserted by a bare better-sqlite3 loop, one transaction per block (baseline)',
    run: (ctx) => {
      const path = join(ctx.dir, 'raw.sqlite');
      rmSync(path, { force: true });
      const db = new Database(path);
      db.pragma('page_size = 65536');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec('CREATE TABLE blocks (block_no INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL UNIQUE, event_count INTEGER NOT NULL, first_ts_us INTEGER NOT NULL, min_ts_us INTEGER NOT NULL, max_ts_us INTEGER NOT NULL, byte_length INTEGER NOT NULL, checksum INTEGER NOT NULL, data BLOB NOT NULL)');
      const insert = db.prepare('INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      const one = db.transaction((row: unknown[]) => insert.run(...row));
      let n = 0;
      for (const row of ctx.blockRows) {
        one(row);
        n += row[2] as number;
      }
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      return n;
    },
  },
  {
    name: 'record-synthetic',
    baseline: 'sqlite-raw-ceiling',
    description: 'generate + encode (on a worker thread, the default from 200,000 events, kept between a process\'s recordings: the measured runs find it started) + apply with live checkpoints + write blocks to a tape',
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
    name: 'ndjson-bare-parse',
    description: 'a bare loop over the NDJSON file: readline + JSON.parse per line (baseline)',
    run: async (ctx) => {
      const lines = createInterface({ input: createReadStream(ctx.ndjson), crlfDelay: Infinity });
      let n = 0;
      for await (const text of lines) {
        if (JSON.parse(text) !== null) n++;
      }
      return n;
    },
  },
  {
    name: 'record-ndjson',
    baseline: 'ndjson-bare-parse',
    description: 'record the NDJSON file: split, validate, parse, encode (two parse workers, the default from 16 MiB) + apply with live checkpoints, write',
    run: async (ctx) => {
      const result = await recordTape(new NdjsonSource({ input: ctx.ndjson, codec: worldEngine.codec }), {
        path: join(ctx.dir, 'record-ndjson.tape'),
        overwrite: true,
        engine: worldEngine,
        runSeed: ctx.seed,
      });
      return result.events;
    },
  },
  {
    name: 'replay-naive-baseline',
    description: 'naive replay: one SQLite row per event, JSON payload parsed per event, same engine and checkpoints (baseline)',
    run: (ctx) => {
      const db = new Database(ctx.naiveDb, { readonly: true });
      const state = worldEngine.init();
      const run = new RunContext(ctx.seed);
      let n = 0;
      let digest = '';
      for (const row of db.prepare('SELECT seq, ts, partition, payload FROM events ORDER BY seq').iterate() as IterableIterator<{ seq: number; ts: number; partition: number; payload: string }>) {
        run.prepare(row.seq, row.ts, row.partition);
        worldEngine.apply(state, worldCodec.fromJSON(JSON.parse(row.payload)), run);
        n++;
        if (n % CHECKPOINT_EVERY === 0) digest = worldEngine.digest(state);
      }
      db.close();
      if (digest === '') throw new Error('naive baseline took no digest');
      return n;
    },
  },
  {
    name: 'replay-verify',
    baseline: 'replay-naive-baseline',
    description: 'full-speed replay of a tape, every block checksummed, every checkpoint verified',
    run: (ctx) => {
      const result = replayTape(ctx.tape, { engine: worldEngine });
      if (!result.ok) throw new Error('bench replay failed verification');
      return result.events;
    },
  },
  {
    name: 'replay-latency-model',
    baseline: 'replay-verify',
    description: 'replay-verify with the latency model on: exp:0.15us service times drawn per event, 1x, queue 1024 (goal: at most 15% more time)',
    run: (ctx) => {
      const result = replayTape(ctx.tape, { engine: worldEngine, latency: { serviceTime: parseServiceTime('exp:0.15us'), seed: 1 } });
      if (!result.ok || result.latency?.events !== result.events) throw new Error('bench latency replay failed');
      return result.events;
    },
  },
  {
    name: 'replay-latency-measured',
    baseline: 'replay-verify',
    description: 'replay-verify with the latency model on and service times measured around every engine call (two clock reads per event)',
    run: (ctx) => {
      const result = replayTape(ctx.tape, { engine: worldEngine, latency: {} });
      if (!result.ok || result.latency?.events !== result.events) throw new Error('bench latency replay failed');
      return result.events;
    },
  },
  {
    name: 'simulate-world',
    description: 'simulate: fast-check streams of world events (up to 60), every fault kind, determinism + snapshot + invariants checked; events delivered per second',
    run: async (ctx) => {
      const result = await simulate({ engine: worldEngine as unknown as Engine, seed: ctx.seed, runs: 2000, faults: [...FAULT_KINDS], twoProcesses: false });
      if (!result.ok) throw new Error('bench simulation found a failure in the reference engine');
      return result.eventsDelivered;
    },
  },
  {
    name: 'replay-verify-2-workers',
    baseline: 'replay-verify',
    description: 'the same on 2 worker threads, sharded by partition (includes starting the workers)',
    run: async (ctx) => {
      const result = await replayTapeSharded(ctx.tape, { workers: 2 });
      if (!result.ok) throw new Error('bench sharded replay failed verification');
      return result.events;
    },
  },
];

interface Goal {
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean;
}

/** The figures the issues ask for, checked against what this run measured. */
function evaluateGoals(rows: { name: string; events: number; eventsPerSec: number; cpuMs: number; ratioToBaseline: number | null }[], rss: RssReport | null, kafkaRows: KafkaBenchRow[] | null): Goal[] {
  const goals: Goal[] = [];
  const krow = (name: string) => kafkaRows?.find((r) => r.name === name);
  const recordKafka = krow('record-kafka');
  if (recordKafka?.ratioToBaseline != null) goals.push({ goal: 'record-kafka >= 0.9 of kafka-bare-consumer', measured: recordKafka.ratioToBaseline.toFixed(3), met: recordKafka.ratioToBaseline >= 0.9 });
  // The same goal for a process's first recording (a new reader thread), so that neither hides the other.
  const recordKafkaCold = krow('record-kafka-cold');
  if (recordKafkaCold?.ratioToBaseline != null) {
    goals.push({ goal: 'record-kafka-cold >= 0.9 of kafka-bare-consumer', measured: recordKafkaCold.ratioToBaseline.toFixed(3), met: recordKafkaCold.ratioToBaseline >= 0.9 });
  }
  const republish = krow('republish-max');
  if (republish?.ratioToBaseline != null) goals.push({ goal: 'republish-max >= 0.9 of kafka-bare-producer', measured: republish.ratioToBaseline.toFixed(3), met: republish.ratioToBaseline >= 0.9 });
  const row = (name: string) => rows.find((r) => r.name === name);
  const synthetic = row('record-synthetic');
  if (synthetic !== undefined) {
    goals.push({ goal: 'record-synthetic >= 3,000,000 events/s', measured: `${Math.round(synthetic.eventsPerSec).toLocaleString('en-US')} events/s`, met: synthetic.eventsPerSec >= 3_000_000 });
    const raw = row('sqlite-raw-ceiling');
    if (synthetic.ratioToBaseline !== null && raw !== undefined) {
      goals.push({ goal: 'record-synthetic >= 0.6 of sqlite-raw-ceiling', measured: `${synthetic.ratioToBaseline.toFixed(3)} (${cpuBound(synthetic, raw)})`, met: synthetic.ratioToBaseline >= 0.6 });
    }
  }
  const ndjson = row('record-ndjson');
  if (ndjson?.ratioToBaseline != null) {
    goals.push({ goal: 'record-ndjson >= 0.7 of ndjson-bare-parse', measured: ndjson.ratioToBaseline.toFixed(3), met: ndjson.ratioToBaseline >= 0.7 });
  }
  const replay = row('replay-verify');
  if (replay !== undefined) {
    goals.push({ goal: 'replay-verify >= 5,000,000 events/s', measured: `${Math.round(replay.eventsPerSec).toLocaleString('en-US')} events/s`, met: replay.eventsPerSec >= 5_000_000 });
    const ceiling = row('engine-ceiling');
    if (ceiling !== undefined) {
      const ratio = replay.eventsPerSec / ceiling.eventsPerSec;
      goals.push({ goal: 'replay-verify >= 0.5 of engine-ceiling', measured: `${ratio.toFixed(3)} (${cpuBound(replay, ceiling)})`, met: ratio >= 0.5 });
    }
    const naive = row('replay-naive-baseline');
    if (naive !== undefined) {
      const ratio = replay.eventsPerSec / naive.eventsPerSec;
      goals.push({ goal: 'replay-verify >= 10x replay-naive-baseline', measured: `${ratio.toFixed(1)}x`, met: ratio >= 10 });
    }
  }
  const model = row('replay-latency-model');
  if (model?.ratioToBaseline != null) {
    const extra = 1 / model.ratioToBaseline - 1;
    goals.push({ goal: 'latency model costs <= 15% of full-speed replay time', measured: `${(extra * 100).toFixed(1)}%`, met: extra <= 0.15 });
  }
  if (rss !== null) {
    const n = rss.events.toLocaleString('en-US');
    goals.push({ goal: `peak RSS recording ${n} events <= 200 MB`, measured: `${rss.record.peakRssMb.toFixed(1)} MB`, met: rss.record.peakRssMb <= 200 });
    goals.push({ goal: `peak RSS replaying ${n} events <= 256 MB`, measured: `${rss.replay.peakRssMb.toFixed(1)} MB`, met: rss.replay.peakRssMb <= 256 });
    goals.push({ goal: `--from into the middle of ${n} events starts within 200 ms`, measured: `${rss.seekMs.toFixed(1)} ms`, met: rss.seekMs <= 200 });
  }
  return goals;
}

function benchHelp(): string {
  const width = Math.max(...CASES.map((c) => c.name.length), 'long-run'.length);
  const cases = CASES.map((c) => `  ${c.name.padEnd(width)}  ${c.description}${c.baseline === undefined ? '' : ` (vs ${c.baseline})`}\n`).join('');
  return (
    'Usage: npm run bench -- [--events N] [--reps N] [--only name,name] [--seed S]\n' +
    '                        [--long-events N] [--kafka-events N]\n\n' +
    "Measures tapedeck's paths, each against a baseline measured in the same run (the machines\n" +
    'are shared and noisy: the ratios travel better than the absolute figures), then prints a\n' +
    'table, the goals with the figure measured for each, and one JSON object as the last line.\n' +
    'A case, its baseline and the cases measured against either run in rounds: warm-up\n' +
    'rounds for 10 s (at least one, at most ten: V8 optimizes the code a run calls per block\n' +
    'only after several runs), then --reps rounds (default 5), each running every case of\n' +
    'the group once in turn, so that a case and its baseline share the machine\'s slow\n' +
    'spells; the median run of each case is reported, and each round\'s ratio to the\n' +
    'baseline is printed too. The Kafka cases are measured the same way (the consumer\n' +
    'cases, then the producer cases). Each case\'s CPU time (all threads) is printed beside\n' +
    'its wall time, and on Linux its CPU time by thread.\n\n' +
    'Options:\n' +
    '  --events N        events in the tape the cases use (default 1,000,000)\n' +
    '  --reps N          measured runs per case (default 5)\n' +
    '  --only a,b        only these cases (engine-ceiling always runs: the ratios need it)\n' +
    '  --seed S          seed of the generated traffic (default 1)\n' +
    '  --long-events N   events of the long run: peak RSS while recording and replaying,\n' +
    '                    and the time --from takes into its middle (default 50,000,000)\n' +
    '  --kafka-events N  events of the Kafka cases (default 500,000); they need the broker\n' +
    '                    (scripts/kafka/broker.sh start) and are left out without it\n\n' +
    `Cases:\n${cases}` +
    `  ${'long-run'.padEnd(width)}  the long run (see --long-events)\n` +
    `  ${'kafka'.padEnd(width)}  record from and republish to the broker, against bare kafkajs clients, and kcat\n`
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '1000000' },
      reps: { type: 'string', default: '5' },
      only: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'long-events': { type: 'string', default: '50000000' },
      'kafka-events': { type: 'string', default: '500000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(benchHelp());
    return;
  }
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
    const ndjson = join(dir, 'bench.ndjson');
    const reader = TapeReader.open(tape);
    const blockRows: unknown[][] = [];
    const lines: string[] = [];
    for (const cursor of reader.blocks(0)) {
      const h = cursor.header;
      blockRows.push([h.blockNo, h.firstSeq, h.eventCount, h.firstTsUs, h.minTsUs, h.maxTsUs, cursor.bytes.length, 0, Buffer.from(cursor.bytes)]);
      while (cursor.next()) {
        const event = worldEngine.codec.decode(cursor.payload());
        lines.push(formatEventLine({ timestampUs: cursor.timestampUs, partition: cursor.partition, key: cursor.key(), headers: [] }, event, worldEngine.codec));
      }
    }
    reader.close();
    writeFileSync(ndjson, lines.join('\n') + '\n');
    const naiveDb = join(dir, 'naive.sqlite');
    const naive = new Database(naiveDb);
    naive.exec('CREATE TABLE events (seq INTEGER PRIMARY KEY, ts INTEGER, partition INTEGER, key TEXT, payload TEXT)');
    const insertNaive = naive.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?)');
    naive.transaction(() => {
      lines.forEach((text, seq) => {
        const o = JSON.parse(text) as { timestampUs: number; partition: number; key: string | null; type: string; payload: unknown };
        insertNaive.run(seq, o.timestampUs, o.partition, o.key, JSON.stringify({ type: o.type, payload: o.payload }));
      });
    })();
    naive.close();
    lines.length = 0;
    const ctx: BenchContext = { events, seed, records: [], dir, tape, ndjson, blockRows, naiveDb };

    const results: CaseResult[] = [];
    for (const group of caseGroups(cases)) {
      if (group[0].inMemory && ctx.records.length === 0) {
        const traffic = new WorldTraffic({ seed, events });
        const records: TrafficRecord[] = [];
        for (let r = traffic.next(); r !== null; r = traffic.next()) records.push(r);
        ctx.records = records;
      }
      const measured = await measureRounds(
        group.map((c) => ({ name: c.name, run: () => c.run(ctx) })),
        reps,
      );
      results.push(...measured.map((r, i) => ({ ...r, description: group[i].description })));
    }
    // The events held for the in-memory cases go: the Kafka cases' recorder runs on this thread,
    // with a heap as a recording process's would be.
    ctx.records = [];
    const ceiling = results.find((r) => r.name === 'engine-ceiling')!.eventsPerSec;
    const byName = new Map(results.map((r) => [r.name, r]));
    const rows = results.map((r) => {
      const baseline = CASES.find((c) => c.name === r.name)?.baseline;
      const base = baseline === undefined ? undefined : byName.get(baseline);
      return { ...r, ratioToCeiling: r.eventsPerSec / ceiling, baseline: base === undefined ? null : baseline!, ratioToBaseline: base === undefined ? null : r.eventsPerSec / base.eventsPerSec };
    });

    // Kafka cases need the broker (scripts/kafka/broker.sh start); without it they are reported as not run.
    const kafkaBrokers = (process.env.TAPEDECK_KAFKA_BROKERS ?? `127.0.0.1:${process.env.TAPEDECK_KAFKA_PORT ?? '19092'}`).split(',');
    let kafkaRows: KafkaBenchRow[] | null = null;
    let kafkaNote: string | null = null;
    if (only === null || only.has('kafka')) {
      if (await reachable(kafkaBrokers[0])) {
        const kafka = await runKafkaBench(kafkaBrokers, Number(values['kafka-events']), reps, dir);
        kafkaRows = kafka.rows;
        kafkaNote = kafka.notes.length === 0 ? null : kafka.notes.join('; ');
      } else {
        kafkaNote = `not run: no broker at ${kafkaBrokers.join(',')} (start one with scripts/kafka/broker.sh start)`;
      }
    }

    let rss: RssReport | null = null;
    if (only === null || only.has('long-run')) {
      const rssEvents = Number(values['long-events']);
      process.stderr.write(`long-run: recording and replaying ${rssEvents} events in a child process, sampling RSS...\n`);
      rss = await measureLongRun(rssEvents, dir);
    }

    const header = ['case', 'events', 'median ms', 'cpu ms', 'cores', 'events/s', 'x ceiling', 'x baseline'];
    const table = rows.map((r) => [
      r.name,
      r.events.toLocaleString('en-US'),
      r.medianMs.toFixed(1),
      r.cpuMs.toFixed(1),
      (r.cpuMs / r.medianMs).toFixed(2),
      Math.round(r.eventsPerSec).toLocaleString('en-US'),
      r.ratioToCeiling.toFixed(3),
      r.ratioToBaseline === null ? '' : `${r.ratioToBaseline.toFixed(3)} of ${r.baseline}`,
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
    const format = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    console.log(`tapedeck bench: node ${process.version}, ${CORES} cores, ${events.toLocaleString('en-US')} events, median of ${reps} runs, seed ${seed}`);
    console.log(format(header));
    for (const t of table) console.log(format(t));
    console.log('  cpu ms: CPU time of a run, all threads (median); cores: cpu ms / median ms');
    console.log('');
    for (const r of rows) console.log(`  ${r.name}: ${r.description}`);
    // A case ran in the same rounds as its baseline (caseGroups): each round's ratio shows the spread.
    const paired = rows.filter((r) => r.baseline !== null);
    if (paired.length > 0) {
      console.log('');
      console.log('each round, a case against its baseline:');
      for (const r of paired) {
        const base = byName.get(r.baseline!)!;
        const perRound = ratiosByRound(r, base);
        if (perRound !== null) console.log(`  ${r.name} / ${base.name}: ${perRound.map((x) => x.toFixed(3)).join(' ')}`);
      }
    }
    // Where the CPU time of the cases that run on several threads went. (A case counts as
    // threaded when another thread did a quarter of the main thread's work, and 20 ms or more:
    // the garbage collector's helpers alone stay below that.)
    const busy = (ms: number, main: number): boolean => ms >= 20 && ms >= 0.25 * main;
    const threaded = rows.filter((r) => r.threadCpuMs !== null && (busy(r.threadCpuMs.ended, r.threadCpuMs.main) || r.threadCpuMs.others.some((ms) => busy(ms, r.threadCpuMs!.main))));
    if (threaded.length > 0) {
      console.log('');
      console.log('CPU a run by thread (from /proc/self/task; other threads: workers, SQLite checkpoints, the garbage collector):');
      for (const r of threaded) {
        const t = r.threadCpuMs!;
        const ended = t.ended > 0 ? `; threads started and ended by the run ${t.ended.toFixed(0)} ms` : '';
        console.log(`  ${r.name}: main ${t.main.toFixed(0)} ms; others ${t.others.map((ms) => ms.toFixed(0)).join(', ') || 'none'} ms${ended}`);
      }
    }
    if (rss !== null) {
      const mb = (xs: number[]) => xs.map((m) => m.toFixed(1)).join(' / ');
      console.log('');
      console.log(`long-run, ${rss.events.toLocaleString('en-US')} events (child process, RSS sampled every 100 ms):`);
      console.log(`  record: ${(rss.record.elapsedMs / 1000).toFixed(1)} s, peak RSS ${rss.record.peakRssMb.toFixed(1)} MB; at 10/25/50/75/100%: ${mb(rss.record.rssMbAtQuarters)} MB`);
      console.log(`  replay: ${(rss.replay.elapsedMs / 1000).toFixed(1)} s, peak RSS ${rss.replay.peakRssMb.toFixed(1)} MB; at 10/25/50/75/100%: ${mb(rss.replay.rssMbAtQuarters)} MB`);
      console.log(`  seek:   --from the middle applied its first event after ${rss.seekMs.toFixed(1)} ms`);
    }
    if (kafkaRows !== null) {
      console.log('');
      console.log(`kafka, against the broker at ${kafkaBrokers.join(',')} (${kafkaRows[0]?.events.toLocaleString('en-US') ?? 0} events, 12 partitions, JSON values, median of ${reps} rounds, a case and its baseline in each):`);
      const kw = Math.max(...kafkaRows.map((r) => r.name.length));
      for (const r of kafkaRows) {
        const ratio = r.ratioToBaseline === null ? '' : `  ${r.ratioToBaseline.toFixed(3)} of ${r.baseline}`;
        // The CPU time is this process's: kcat's and the broker's are not in it.
        const cpu = `cpu ${Math.round(r.cpuMs).toLocaleString('en-US').padStart(6)} ms (${(r.cpuMs / r.medianMs).toFixed(2)} cores)`;
        console.log(`  ${r.name.padEnd(kw)}  ${Math.round(r.eventsPerSec).toLocaleString('en-US').padStart(10)} events/s  ${cpu}${ratio}`);
      }
      // A case and its baseline ran in the same rounds: each round's ratio shows the spread.
      for (const r of kafkaRows) {
        const base = kafkaRows.find((b) => b.name === r.baseline);
        const perRound = base === undefined ? null : ratiosByRound(r, base);
        if (perRound !== null) console.log(`  ${r.name} / ${base!.name}, round by round: ${perRound.map((x) => x.toFixed(2)).join(' ')}`);
      }
      const republish = kafkaRows.find((r) => r.name === 'republish-max');
      const threaded = kafkaRows.find((r) => r.name.startsWith('kafka-bare-producers-'));
      if (republish !== undefined && threaded !== undefined) {
        console.log(`  republish-max is ${(republish.eventsPerSec / threaded.eventsPerSec).toFixed(3)} of ${threaded.name} (the same number of producer threads)`);
      }
      const recordKafka = kafkaRows.find((r) => r.name === 'record-kafka');
      const fastBare = kafkaRows.find((r) => r.name === 'kafka-bare-consumer-fast-decoder');
      if (recordKafka !== undefined && fastBare !== undefined) {
        console.log(`  record-kafka is ${(recordKafka.eventsPerSec / fastBare.eventsPerSec).toFixed(3)} of ${fastBare.name} (the same decoder)`);
      }
      for (const r of kafkaRows) console.log(`  ${r.name}: ${r.description}`);
      if (kafkaNote !== null) console.log(`  ${kafkaNote}`);
    } else if (kafkaNote !== null) {
      console.log('');
      console.log(`kafka: ${kafkaNote}`);
    }
    const goals = evaluateGoals(rows, rss, kafkaRows);
    console.log('');
    console.log('goals:');
    for (const g of goals) console.log(`  ${g.met ? 'MET ' : 'MISS'} ${g.goal}: ${g.measured}`);
    console.log(JSON.stringify({ node: process.version, cores: CORES, events, reps, seed, baseline: 'engine-ceiling', cases: rows, rss, kafka: kafkaRows, kafkaNote, goals }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});

function reachable(hostPort: string): Promise<boolean> {
  const at = hostPort.lastIndexOf(':');
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(Number(hostPort.slice(at + 1)), hostPort.slice(0, at), () => done(true));
  });
}
