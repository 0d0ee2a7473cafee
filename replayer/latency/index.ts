// The latency model as the replayer and `rehearse` use it: options, one model per speed, and the
// report (percentiles, queue, budget). See model.ts for the queue and docs/latency.md for the
// whole contract.

import type { TapeReader } from '../../tape/reader.js';
import { checkBudget, withinBudget, type Budget, type BudgetCheck } from './budget.js';
import { DEFAULT_QUEUE_CAPACITY, QueueModel, type QueueStats, type WhenFull } from './model.js';
import { samplerFor, type ServiceTimeSpec } from './service-time.js';
import { timestampTickUs } from './pass.js';

export interface LatencyOptions {
  /** Default: measured. */
  readonly serviceTime?: ServiceTimeSpec;
  /** Seed of the service-time draws; default: the tape's run seed. */
  readonly seed?: number;
  /** Channel slots; default 1024. */
  readonly queueCapacity?: number;
  /** Default: block (backpressure). */
  readonly whenFull?: WhenFull;
  /** Timestamp resolution; default: decided from the tape (timestampTickUs). */
  readonly tickUs?: number;
  readonly budget?: Budget;
  /** Keep the service-time distribution, for --save-service-times. */
  readonly keepServiceTimes?: boolean;
}

/** How the model was set up: the part of a report that says what the figures mean. */
export interface LatencySetup {
  readonly serviceTime: string;
  /** The seed of the draws; null for measured service times. */
  readonly seed: number | null;
  readonly queueCapacity: number;
  readonly whenFull: WhenFull;
  readonly tickUs: number;
}

export interface LatencyReport extends QueueStats, LatencySetup {
  readonly budget: readonly BudgetCheck[];
  readonly withinBudget: boolean;
}

export function latencySetup(reader: TapeReader, fromSeq: number, options: LatencyOptions): LatencySetup {
  const spec = options.serviceTime ?? { kind: 'measured', text: 'measured' };
  return {
    serviceTime: spec.text,
    seed: spec.kind === 'measured' ? null : (options.seed ?? reader.meta.runSeed),
    queueCapacity: options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY,
    whenFull: options.whenFull ?? 'block',
    tickUs: options.tickUs ?? timestampTickUs(reader, fromSeq),
  };
}

export function createModel(setup: LatencySetup, options: LatencyOptions, speed: number, spanUs: number): QueueModel {
  const spec = options.serviceTime ?? { kind: 'measured', text: 'measured' };
  return new QueueModel({
    speed,
    capacity: setup.queueCapacity,
    whenFull: setup.whenFull,
    tickUs: setup.tickUs,
    spanUs,
    sampler: samplerFor(spec, setup.seed ?? 0),
    keepServiceTimes: options.keepServiceTimes,
  });
}

export function latencyReport(setup: LatencySetup, stats: QueueStats, budget: Budget | undefined): LatencyReport {
  const checks = budget === undefined ? [] : checkBudget(stats.latencyMs, budget);
  return { ...setup, ...stats, budget: checks, withinBudget: withinBudget(checks) };
}

export { type Budget, type BudgetCheck } from './budget.js';
export { type WhenFull } from './model.js';
