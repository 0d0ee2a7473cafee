// `tapedeck simulate`: fast-check generates event streams for an engine (or windows of a
// recorded tape), applies transport faults, and checks properties on every run. A failure is
// shrunk by fast-check to a minimal stream and fault list, written as a tape that
// `tapedeck replay` reproduces, and reported with the seed and path that re-run it exactly.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { TapedeckError } from '../engine/errors.js';
import type { Engine, EngineSimulation, SimulatedEvent } from '../engine/types.js';
import { recordTape } from '../recorder/record.js';
import { ArraySource } from '../recorder/sources/array.js';
import { sameFile } from '../tape/private.js';
import { TapeReader } from '../tape/reader.js';
import { DEFAULT_QUEUE_CAPACITY } from '../replayer/latency/model.js';
import { applyFaults, describeFaults, faultsArbitrary, renumber, toRecords, type Fault, type FaultKind, type SimRecord } from './faults.js';
import { checkStream, finalDigest, SIM_RUN_SEED, type CaseExtras, type CheckContext, type LatencyCheck, type PropertyFailure, type PropertyName } from './properties.js';
import { worldSimulation } from './world.js';

import { DEFAULT_MAX_EVENTS, DEFAULT_MAX_FAULTS, DEFAULT_RUNS } from './options.js';

export { DEFAULT_MAX_EVENTS, DEFAULT_MAX_FAULTS, DEFAULT_RUNS };
/** Streams compared with a second process for the determinism property. */
const CROSS_PROCESS_SAMPLES = 50;

export interface SimulateOptions {
  readonly engine: Engine;
  /** How another process loads the engine (a built-in name or a module path); without it, no two-process check. */
  readonly engineSpec?: string;
  readonly seed: number;
  readonly runs?: number;
  readonly faults?: readonly FaultKind[];
  /** Default: determinism, snapshot, invariants, plus what the engine claims, plus latency when given. */
  readonly properties?: readonly PropertyName[];
  readonly maxEvents?: number;
  readonly maxFaults?: number;
  /** fast-check's path of a counterexample: re-run exactly that case. */
  readonly path?: string;
  /** Where the counterexample tape goes; none is written without it. */
  readonly outDir?: string;
  /** Mutate windows of this recorded tape instead of generating streams. */
  readonly fromTape?: string;
  /** With fromTape: how many of its first events the windows are cut from (default 10,000). */
  readonly fromTapeEvents?: number;
  readonly latency?: LatencyCheck | null;
  /** Compare digests with a second process (default: when determinism is checked and engineSpec is known). */
  readonly twoProcesses?: boolean;
}

export interface SimulationFailure extends PropertyFailure {
  /** fast-check's seed and path: `--seed S --path P` re-runs exactly this case. */
  readonly seed: number;
  readonly path: string | null;
  readonly shrinks: number;
  /** The delivered stream of the counterexample. */
  readonly events: number;
  readonly faults: readonly string[];
  readonly tape: string | null;
  readonly commands: { readonly rerun: string; readonly replay: string | null };
}

export interface SimulateResult {
  readonly ok: boolean;
  readonly engine: { readonly name: string; readonly version: string };
  readonly seed: number;
  readonly runs: number;
  readonly runsDone: number;
  readonly properties: readonly PropertyName[];
  readonly faults: readonly FaultKind[];
  readonly source: string;
  /** Events delivered in all runs (generated, faulted, then applied and checked by each property). */
  readonly eventsDelivered: number;
  /** Events applied to the engine in all runs: each property runs the stream once or more. */
  readonly eventsApplied: number;
  readonly elapsedMs: number;
  /** Delivered events per second: the rate at which simulation explores streams. */
  readonly eventsPerSec: number;
  readonly twoProcesses: { readonly compared: number; readonly ok: boolean; readonly firstDifference: number | null } | null;
  readonly failure: SimulationFailure | null;
}

export interface Case extends CaseExtras {
  readonly stream: readonly SimRecord[];
  readonly faults: readonly Fault[];
}

/** The simulation support of an engine: its own, or the built-in one for `world` (and builds of it). */
export function simulationOf(engine: Engine): EngineSimulation<unknown> | null {
  if (engine.simulation !== undefined) return engine.simulation as EngineSimulation<unknown>;
  if (engine.name === 'world') return worldSimulation as EngineSimulation<unknown>;
  return null;
}

export function defaultProperties(engine: Engine, latency: boolean): PropertyName[] {
  const sim = simulationOf(engine);
  const props: PropertyName[] = ['determinism', 'snapshot', 'invariants'];
  if (sim?.idempotent) props.push('idempotence');
  if (sim?.convergent) props.push('convergence');
  if (engine.transientEvents === true && engine.codec.decodeInto !== undefined) props.push('transient-events');
  if (latency) props.push('latency');
  return props;
}

function streamArbitrary(engine: Engine, options: SimulateOptions): { arb: fc.Arbitrary<readonly SimRecord[]>; source: string; engineOptions: unknown } {
  const sim = simulationOf(engine);
  const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
  if (options.fromTape !== undefined) {
    const base = readTape(options.fromTape, engine, options.fromTapeEvents ?? 10_000);
    if (base.records.length === 0) throw new TapedeckError('E_USAGE', `--from-tape ${options.fromTape}: the tape holds no events`);
    const n = base.records.length;
    // A window of the recorded stream: shrinking moves it to the start and shortens it.
    const arb = fc
      .record({ start: fc.nat({ max: n - 1 }), length: fc.integer({ min: 1, max: Math.min(maxEvents, n) }) })
      .map(({ start, length }) => renumber(base.records.slice(start, start + length)));
    return { arb, source: `windows of up to ${Math.min(maxEvents, n)} events of ${options.fromTape} (its first ${n})`, engineOptions: base.engineOptions };
  }
  return { arb: generatedStreams(engine, maxEvents, ', or use --from-tape FILE'), source: `generated streams of up to ${maxEvents} events`, engineOptions: sim?.options };
}

/** Streams of up to `maxEvents` from the engine's simulation support (`hint` ends the error when it has none). */
export function generatedStreams(engine: Engine, maxEvents = DEFAULT_MAX_EVENTS, hint = ''): fc.Arbitrary<SimRecord[]> {
  const sim = simulationOf(engine);
  if (sim === null) {
    throw new TapedeckError('E_USAGE', `engine ${engine.name} has no simulation support: export a \`simulation\` object with an \`events(fc)\` arbitrary (docs/simulate.md)${hint}`);
  }
  const events = sim.events(fc) as fc.Arbitrary<SimulatedEvent<unknown>>;
  if (events === null || typeof events !== 'object' || typeof (events as { generate?: unknown }).generate !== 'function') {
    throw new TapedeckError('E_USAGE', `engine ${engine.name}: simulation.events(fc) must return a fast-check arbitrary`);
  }
  return fc.array(events, { minLength: 1, maxLength: maxEvents, size: 'medium' }).map((list) => toRecords(list));
}

function readTape(path: string, engine: Engine, limit: number): { records: SimRecord[]; engineOptions: unknown } {
  const reader = TapeReader.open(path);
  try {
    const records: SimRecord[] = [];
    const decoder = new TextDecoder();
    blocks: for (const cursor of reader.blocks(0)) {
      while (reader.advance(cursor)) {
        if (records.length >= limit) break blocks;
        const key = cursor.key();
        records.push({
          event: engine.codec.decode(cursor.payload()),
          partition: cursor.partition,
          key: key === null ? null : decoder.decode(key),
          timestampUs: cursor.timestampUs,
          offset: 0,
        });
      }
    }
    // Offsets are numbered per window (renumber), not here.
    return { records, engineOptions: reader.meta.engineOptions ?? undefined };
  } finally {
    reader.close();
  }
}

/** What each run draws: the stream, its faults, and the extras some properties need. */
export function caseArbitrary(stream: fc.Arbitrary<readonly SimRecord[]>, kinds: readonly FaultKind[], maxFaults: number): fc.Arbitrary<Case> {
  return fc.record({
    stream,
    faults: faultsArbitrary(kinds, maxFaults),
    snapshotAt: fc.nat({ max: 10_000 }),
    interleaveSeed: fc.nat(),
    extraDups: faultsArbitrary(['dup'], 4),
  });
}

function evaluate(ctx: CheckContext, c: Case): PropertyFailure | null {
  try {
    const delivered = applyFaults(c.stream, c.faults);
    ctx.delivered += delivered.length;
    return checkStream(ctx, delivered, c);
  } catch (error) {
    return { property: 'invariants', seq: null, message: `the engine threw: ${(error as Error).stack ?? String(error)}` };
  }
}

export async function simulate(options: SimulateOptions): Promise<SimulateResult> {
  const started = performance.now();
  const engine = options.engine;
  const runs = options.runs ?? DEFAULT_RUNS;
  const kinds = options.faults ?? [];
  const latency = options.latency ?? null;
  const properties = options.properties ?? defaultProperties(engine, latency !== null);
  if (properties.includes('latency') && latency === null) {
    throw new TapedeckError('E_USAGE', 'the latency property needs a model service time and a budget: --service-time exp:20us --p99 8ms');
  }
  if (properties.includes('transient-events') && engine.codec.decodeInto === undefined) {
    throw new TapedeckError('E_USAGE', `the transient-events property needs a codec with decodeInto; engine ${engine.name}'s codec ${engine.codec.name} has none`);
  }
  const { arb: stream, source, engineOptions } = streamArbitrary(engine, options);
  const ctx: CheckContext = { engine, engineOptions, properties, latency, applied: 0, delivered: 0 };
  const arb = caseArbitrary(stream, kinds, options.maxFaults ?? DEFAULT_MAX_FAULTS);
  const details = fc.check(
    fc.property(arb, (c) => evaluate(ctx, c) === null),
    { seed: options.seed, numRuns: runs, path: options.path },
  );

  let failure: SimulationFailure | null = null;
  let twoProcesses: SimulateResult['twoProcesses'] = null;
  if (details.failed && details.counterexample !== null) {
    const c = details.counterexample[0];
    const found = evaluate(ctx, c) ?? { property: properties[0], seq: null, message: details.errorInstance ? String(details.errorInstance) : 'the property failed' };
    failure = await describeFailure(options, engine, engineOptions, c, found, details.seed, details.counterexamplePath, details.numShrinks, kinds, properties);
  } else if (details.failed) {
    throw new Error(`fast-check stopped without a counterexample: ${String(details.errorInstance)}`);
  } else if (properties.includes('determinism') && (options.twoProcesses ?? options.engineSpec !== undefined) && options.path === undefined) {
    if (options.engineSpec === undefined) throw new TapedeckError('E_USAGE', 'comparing with a second process needs the engine as a name or a module path');
    const samples = fc.sample(arb, { seed: options.seed, numRuns: Math.min(runs, CROSS_PROCESS_SAMPLES) });
    const mine = samples.map((c) => finalDigest(ctx, applyFaults(c.stream, c.faults)));
    const theirs = digestsInChild(options, mine.length);
    const first = mine.findIndex((d, i) => d !== theirs[i]);
    twoProcesses = { compared: mine.length, ok: first < 0, firstDifference: first < 0 ? null : first };
    if (first >= 0) {
      const c = samples[first];
      const found: PropertyFailure = { property: 'determinism', seq: null, message: `sample ${first} ends in ${mine[first]} here and in ${theirs[first]} in a second process` };
      failure = await describeFailure(options, engine, engineOptions, c, found, options.seed, null, 0, kinds, properties);
    }
  }
  const elapsedMs = performance.now() - started;
  return {
    ok: failure === null,
    engine: { name: engine.name, version: engine.version },
    seed: options.seed,
    runs,
    runsDone: details.numRuns,
    properties,
    faults: kinds,
    source,
    eventsDelivered: ctx.delivered,
    eventsApplied: ctx.applied,
    elapsedMs,
    eventsPerSec: elapsedMs > 0 ? (ctx.delivered * 1000) / elapsedMs : 0,
    twoProcesses,
    failure,
  };
}

/** The final digests of the first `count` sampled streams, computed by a second tapedeck process. */
function digestsInChild(options: SimulateOptions, count: number): string[] {
  const args = [binPath(), 'simulate', '--engine', options.engineSpec!, '--seed', String(options.seed), '--runs', String(options.runs ?? DEFAULT_RUNS), '--digests-only', String(count)];
  if ((options.faults ?? []).length > 0) args.push('--faults', options.faults!.join(','));
  if (options.maxEvents !== undefined) args.push('--max-events', String(options.maxEvents));
  if (options.maxFaults !== undefined) args.push('--max-faults', String(options.maxFaults));
  if (options.fromTape !== undefined) args.push('--from-tape', options.fromTape);
  if (options.fromTapeEvents !== undefined) args.push('--from-tape-events', String(options.fromTapeEvents));
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  try {
    const digests = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as unknown;
    if (Array.isArray(digests) && digests.length === count) return digests as string[];
  } catch {
    // reported below
  }
  throw new TapedeckError('E_CHILD_SIMULATE', `the second simulate process failed (exit ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
}

/** For --digests-only (the second process): the final digests of the first `count` sampled streams. */
export function sampleDigests(options: SimulateOptions, count: number): string[] {
  const { arb: stream, engineOptions } = streamArbitrary(options.engine, options);
  const ctx: CheckContext = { engine: options.engine, engineOptions, properties: [], latency: null, applied: 0, delivered: 0 };
  const arb = caseArbitrary(stream, options.faults ?? [], options.maxFaults ?? DEFAULT_MAX_FAULTS);
  return fc.sample(arb, { seed: options.seed, numRuns: count }).map((c) => finalDigest(ctx, applyFaults(c.stream, c.faults)));
}

/** The package's bin/tapedeck.js, from dist/simulator/ or from simulator/ (tests run the sources). */
function binPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'bin', 'tapedeck.js');
    if (existsSync(candidate) && existsSync(join(dir, 'package.json')) && JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'tapedeck') return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find bin/tapedeck.js for the second simulate process');
}

async function describeFailure(
  options: SimulateOptions,
  engine: Engine,
  engineOptions: unknown,
  c: Case,
  found: PropertyFailure,
  seed: number,
  path: string | null,
  shrinks: number,
  kinds: readonly FaultKind[],
  properties: readonly PropertyName[],
): Promise<SimulationFailure> {
  // The tape holds the stream that failed: for idempotence, with the extra re-deliveries.
  const faults = found.property === 'idempotence' ? [...c.faults, ...c.extraDups] : c.faults;
  const delivered = applyFaults(c.stream, faults);
  let tape: string | null = null;
  if (options.outDir !== undefined) {
    mkdirSync(options.outDir, { recursive: true });
    const name = `counterexample-${engine.name}-seed${seed}`;
    tape = resolve(options.outDir, `${name}.tape`);
    // A counterexample tape given back as --from-tape, with its seed and --out, is not replaced
    // by the counterexample found in it: that goes beside it.
    if (options.fromTape !== undefined && sameFile(tape, options.fromTape)) tape = resolve(options.outDir, `${name}-2.tape`);
    await recordTape(new ArraySource(engine, delivered, { kind: 'simulate', seed, path, property: found.property, faults: describeFaults(c.stream, faults) }), {
      path: tape,
      overwrite: true,
      engine,
      engineOptions,
      runSeed: SIM_RUN_SEED,
      checkpointEvery: 1,
      snapshotEvery: 16,
    });
  }
  const spec = options.engineSpec ?? engine.name;
  const rerun = [
    'npx tapedeck simulate',
    `--engine ${shellQuote(spec)}`,
    `--seed ${seed}`,
    `--runs ${options.runs ?? DEFAULT_RUNS}`,
    ...(kinds.length > 0 ? [`--faults ${kinds.join(',')}`] : []),
    `--properties ${properties.join(',')}`,
    ...(options.maxEvents !== undefined ? [`--max-events ${options.maxEvents}`] : []),
    ...(options.maxFaults !== undefined ? [`--max-faults ${options.maxFaults}`] : []),
    ...(options.fromTape !== undefined ? [`--from-tape ${shellQuote(options.fromTape)}`] : []),
    ...(options.latency != null
      ? [
          `--service-time ${shellQuote(options.latency.serviceTime.text)}`,
          ...Object.entries(options.latency.budget).map(([k, ms]) => `--${k} ${ms}ms`),
          ...(options.latency.queueCapacity !== DEFAULT_QUEUE_CAPACITY ? [`--queue-capacity ${options.latency.queueCapacity}`] : []),
        ]
      : []),
    ...(path !== null ? [`--path ${shellQuote(path)}`] : []),
    ...(options.outDir !== undefined ? [`--out ${shellQuote(options.outDir)}`] : []),
  ].join(' ');
  const replay = tape === null ? null : `npx tapedeck replay ${shellQuote(tape)} --engine ${shellQuote(spec)} --paranoid`;
  return { ...found, seed, path, shrinks, events: delivered.length, faults: describeFaults(c.stream, faults), tape, commands: { rerun, replay } };
}

function shellQuote(s: string): string {
  return /^[\w./:=@,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
