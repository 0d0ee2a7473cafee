// The latency model as the replayer and `rehearse` use it: options, one model per speed, and the
// report (percentiles, queue, budget). See model.ts for the queue and docs/latency.md for the
// whole contract.

import type { TapeReader } from '../../tape/reader.js';
import { checkBudget, withinBudget, type Budget, type BudgetCheck } from './budget.js';
import { DEFAULT_QUEUE_CAPACITY, QueueModel, type QueueModelOptions, type QueueStats, type WhenFull } from './model.js';
import { samplerFor, type ServiceTimeSpec } from './service-time.js';
import { timestampTickUs } from './pass.js';
import { modelWorkerUrl, RemoteModel, type ModelTape } from './remote.js';
import type { EmpiricalServiceTimes } from './service-time.js';

const MEASURED: ServiceTimeSpec = { kind: 'measured', text: 'measured' };

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
  const spec = options.serviceTime ?? MEASURED;
  return {
    serviceTime: spec.text,
    seed: spec.kind === 'measured' ? null : (options.seed ?? reader.meta.runSeed),
    queueCapacity: options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY,
    whenFull: options.whenFull ?? 'block',
    tickUs: options.tickUs ?? timestampTickUs(reader, fromSeq),
  };
}

/** The model's options but its sampler (which the worker thread builds for itself). */
function modelOptions(setup: LatencySetup, options: LatencyOptions, speed: number, spanUs: number): Omit<QueueModelOptions, 'sampler'> {
  return { speed, capacity: setup.queueCapacity, whenFull: setup.whenFull, tickUs: setup.tickUs, spanUs, keepServiceTimes: options.keepServiceTimes };
}

export function createModel(setup: LatencySetup, options: LatencyOptions, speed: number, spanUs: number): QueueModel {
  return new QueueModel({ ...modelOptions(setup, options, speed, spanUs), sampler: samplerFor(options.serviceTime ?? MEASURED, setup.seed ?? 0) });
}

/** Where the replay loop sends each event: the model on a worker thread, or in this one. */
export interface ModelSink {
  /**
   * True: the model reads the events' timestamps from the tape itself; the replay calls
   * reached() now and then instead of push() for every event.
   */
  readonly readsTape: boolean;
  push(timestampUs: number, serviceUs: number): void;
  /** The replay has applied `events` events of its range. */
  reached(events: number): void;
  /** `events`: how many events of its range the replay applied in all. */
  finish(events: number): { stats: QueueStats; serviceTimes?: EmpiricalServiceTimes };
  abandon(): void;
}

/**
 * Start a model for a replay: on its own thread when the compiled worker is at hand, else in
 * this thread. On its thread, with service times drawn from a distribution, the model reads
 * the timestamps of the events from `tape.fromSeq` on from the tape at `tape.path` (when given):
 * the replay thread then does nothing per event. Otherwise the replay push()es each event (a
 * few stores, on a thread of the model's own).
 */
export function startModel(setup: LatencySetup, options: LatencyOptions, speed: number, spanUs: number, source: string, tape: ModelTape | null = null): ModelSink {
  const url = modelWorkerUrl();
  const spec = options.serviceTime ?? MEASURED;
  if (url !== null) {
    const measured = spec.kind === 'measured';
    return new RemoteModel(
      url,
      {
        model: modelOptions(setup, options, speed, spanUs),
        serviceTime: spec,
        seed: setup.seed ?? 0,
        source,
      },
      measured,
      measured ? null : tape,
    );
  }
  const model = createModel(setup, options, speed, spanUs);
  return {
    readsTape: false,
    push: (ts, s) => model.push(ts, s),
    reached: () => undefined,
    finish: () => {
      const stats = model.finish();
      return options.keepServiceTimes ? { stats, serviceTimes: model.serviceTimes(source) } : { stats };
    },
    abandon: () => undefined,
  };
}

export function latencyReport(setup: LatencySetup, stats: QueueStats, budget: Budget | undefined): LatencyReport {
  const checks = budget === undefined ? [] : checkBudget(stats.latencyMs, budget);
  return { ...setup, ...stats, budget: checks, withinBudget: withinBudget(checks) };
}

export { type Budget, type BudgetCheck } from './budget.js';
export { type WhenFull } from './model.js';
