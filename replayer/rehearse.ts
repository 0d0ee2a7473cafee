// Capacity rehearsal: the tape's recorded traffic at several multiples of its rate, through the
// latency model, against a budget. One full-speed replay verifies the tape, measures the
// engine's throughput (capacity = throughput / recorded peak rate) and, with measured service
// times, times every event once; the same service times then serve every speed, so the rows
// differ only by load. Each speed is then a pass over the tape's timestamps, and the headroom
// (the largest multiple within budget) is refined between the last passing and the first
// failing speed, three probes per pass.

import type { Engine } from '../engine/types.js';
import { TapedeckError } from '../engine/errors.js';
import { TapeReader } from '../tape/reader.js';
import { checkBudget, withinBudget, type Budget, type BudgetCheck } from './latency/budget.js';
import { createModel, latencySetup, type LatencyOptions, type LatencySetup } from './latency/index.js';
import type { QueueStats } from './latency/model.js';
import { rangeTiming, runModels, type RangeTiming } from './latency/pass.js';
import { meanServiceUs, type EmpiricalServiceTimes } from './latency/service-time.js';
import { replayTape, type ReplayResult } from './replay.js';

export const DEFAULT_SPEEDS = [1, 1.5, 2, 2.5, 3];
/** Refinement stops when the bracket is narrower than this fraction of its lower end. */
const REFINE_TOLERANCE = 0.005;
const REFINE_PASSES = 4;

export interface RehearseOptions extends LatencyOptions {
  readonly speeds?: readonly number[];
  readonly engine?: Engine;
  /** Refine the headroom between the last passing and first failing speed (default true). */
  readonly refine?: boolean;
  readonly onProgress?: (phase: string, done: number, total: number) => void;
}

export interface RehearsalRow extends QueueStats {
  readonly budget: readonly BudgetCheck[];
  /** True when every limit held; true as well when no budget was given. */
  readonly withinBudget: boolean;
}

export interface Headroom {
  /** The largest multiple of the recorded rate found within budget; null when even the lowest speed fails. */
  readonly speed: number | null;
  /** The bracket it was refined in: passing at `low`, failing at `high` (null: every tested speed passed). */
  readonly low: number | null;
  readonly high: number | null;
  readonly note: string;
}

/** Everything that follows from the tape, the seed and the options: the same, byte for byte, from run to run with a model service time. */
export interface RehearsalReport extends LatencySetup {
  readonly tape: string;
  readonly engine: { readonly name: string; readonly version: string };
  readonly events: number;
  readonly recorded: RangeTiming;
  readonly budgetLimits: Budget | null;
  readonly rows: readonly RehearsalRow[];
  readonly headroom: Headroom | null;
  /** With a model service time: 1 / mean service time, over the recorded peak rate. */
  readonly modelCapacity: number | null;
}

export interface RehearseResult {
  /** The tape verified, and (with a budget) the recorded rate (1x) within it. */
  readonly ok: boolean;
  readonly report: RehearsalReport;
  /** The full-speed replay: verification and wall-clock throughput. */
  readonly replay: Pick<ReplayResult, 'ok' | 'events' | 'eventsPerSec' | 'elapsedMs' | 'checkpointsVerified' | 'checkpointsTotal' | 'mismatches' | 'invariantViolations' | 'firstDivergentSeq'>;
  /**
   * Full-speed throughput of the whole replay on this tape (reading blocks, decoding, the
   * engine, checkpoints) over the recorded peak rate (wall clock: varies from run to run).
   */
  readonly measuredCapacity: number;
  /**
   * What the rows' server can take, over the recorded peak rate: 1 / the mean service time,
   * of the engine calls as the full-speed replay timed them (measured; wall clock), or of the
   * model (the report's modelCapacity). Null for a tape whose recorded peak is 0.
   */
  readonly serviceCapacity: number | null;
  readonly serviceTimes?: EmpiricalServiceTimes;
}

export function rehearseTape(path: string, options: RehearseOptions = {}): RehearseResult {
  const speeds = [...(options.speeds ?? DEFAULT_SPEEDS)].sort((a, b) => a - b);
  if (speeds.length === 0 || speeds.some((s) => !(s > 0 && Number.isFinite(s)))) {
    throw new TapedeckError('E_USAGE', `--speeds must be positive numbers, got ${speeds.join(',')}`);
  }
  const measured = (options.serviceTime?.kind ?? 'measured') === 'measured';
  const reader = TapeReader.open(path);
  try {
    const summary = reader.summary();
    const total = summary.events;
    if (total === 0) throw new TapedeckError('E_USAGE', `${path}: the tape holds no events; there is nothing to rehearse`);
    const setup = latencySetup(reader, 0, options);
    options.onProgress?.('timestamps', 0, total);
    const recorded = rangeTiming(reader, 0, total - 1, summary.minTsUs!, summary.maxTsUs!, setup.tickUs);
    const spanUs = recorded.maxTsUs - recorded.minTsUs;

    // The full-speed replay: verification, throughput and (measured) the service times.
    const serviceUs = measured ? new Float32Array(total) : null;
    const replay = replayTape(path, {
      engine: options.engine,
      latency: measured ? { ...options, tickUs: setup.tickUs, budget: undefined, serviceTimesOut: serviceUs! } : undefined,
      onProgress: (done, all) => options.onProgress?.('replay', done, all),
    });
    const fixedOptions = { ...options, tickUs: setup.tickUs, keepServiceTimes: false };

    const run = (at: readonly number[], phase: string): QueueStats[] => {
      const models = at.map((speed) => createModel(setup, fixedOptions, speed, spanUs));
      runModels(reader, 0, total - 1, models, serviceUs, (done) => options.onProgress?.(phase, done, total));
      return models.map((m) => m.finish());
    };
    const rowOf = (stats: QueueStats): RehearsalRow => {
      const checks = options.budget === undefined ? [] : checkBudget(stats.latencyMs, options.budget);
      return { ...stats, budget: checks, withinBudget: withinBudget(checks) };
    };
    const rows = run(speeds, 'speeds').map(rowOf);

    let headroom: Headroom | null = null;
    if (options.budget !== undefined) headroom = findHeadroom(rows, options.refine !== false, (at) => run(at, 'refining').map(rowOf));

    const meanUs = options.serviceTime === undefined ? null : meanServiceUs(options.serviceTime);
    const report: RehearsalReport = {
      tape: path,
      engine: replay.engine,
      events: total,
      ...setup,
      recorded,
      budgetLimits: options.budget ?? null,
      rows,
      headroom,
      modelCapacity: meanUs === null ? null : capacityOf(meanUs, recorded.peakRatePerSec),
    };
    const atOne = rows.find((r) => r.speed === 1) ?? null;
    const budgetOk = options.budget === undefined || (headroom !== null && headroom.speed !== null && headroom.speed >= 1) || (atOne !== null && atOne.withinBudget);
    return {
      ok: replay.ok && budgetOk,
      report,
      replay: {
        ok: replay.ok,
        events: replay.events,
        eventsPerSec: replay.eventsPerSec,
        elapsedMs: replay.elapsedMs,
        checkpointsVerified: replay.checkpointsVerified,
        checkpointsTotal: replay.checkpointsTotal,
        mismatches: replay.mismatches,
        invariantViolations: replay.invariantViolations,
        firstDivergentSeq: replay.firstDivergentSeq,
      },
      measuredCapacity: recorded.peakRatePerSec === 0 ? 0 : round3(replay.eventsPerSec / recorded.peakRatePerSec),
      serviceCapacity: serviceUs === null ? report.modelCapacity : capacityOf(meanOf(serviceUs), recorded.peakRatePerSec),
      ...(replay.serviceTimes === undefined ? {} : { serviceTimes: replay.serviceTimes }),
    };
  } finally {
    reader.close();
  }
}

/** 1 / a mean service time, over a rate; null when either is 0. */
function capacityOf(meanUs: number, peakRatePerSec: number): number | null {
  return meanUs > 0 && peakRatePerSec > 0 ? round3(1e6 / meanUs / peakRatePerSec) : null;
}

function meanOf(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return values.length === 0 ? 0 : sum / values.length;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * The largest speed within budget. Rows are sorted by speed; a speed passes when every limit
 * holds. The bracket is the last passing row before the first failing one; three evenly spaced
 * probes per pass narrow it until it is within REFINE_TOLERANCE.
 */
function findHeadroom(rows: readonly RehearsalRow[], refine: boolean, probe: (speeds: number[]) => RehearsalRow[]): Headroom {
  const firstFail = rows.findIndex((r) => !r.withinBudget);
  if (firstFail < 0) {
    const top = rows[rows.length - 1].speed;
    return { speed: top, low: top, high: null, note: `within budget at every tested speed, up to ${top}x; test higher speeds to find the limit` };
  }
  if (firstFail === 0) {
    return { speed: null, low: null, high: rows[0].speed, note: `over budget already at the lowest tested speed (${rows[0].speed}x); test lower speeds, or the budget is below the service time itself` };
  }
  let low = rows[firstFail - 1].speed;
  let high = rows[firstFail].speed;
  if (refine) {
    for (let pass = 0; pass < REFINE_PASSES && (high - low) / low > REFINE_TOLERANCE; pass++) {
      const at = [1, 2, 3].map((k) => low + ((high - low) * k) / 4);
      const probed = probe(at);
      for (const row of probed) {
        if (row.withinBudget) low = row.speed;
        else {
          high = row.speed;
          break;
        }
      }
    }
  }
  // Rounded outwards, so that the reported speed is one that passed.
  low = Math.floor(low * 1000) / 1000;
  high = Math.ceil(high * 1000) / 1000;
  return { speed: low, low, high, note: `within budget up to ${low}x the recorded rate; over it at ${high}x` };
}
