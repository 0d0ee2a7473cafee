// The properties `tapedeck simulate` checks on each simulated stream. Each takes the stream as
// delivered (faults applied) and returns null when it holds, or what went wrong.
//
//   invariants    the engine's invariants hold after every event
//   determinism   two runs of the stream (fresh states, the determinism guard on) reach the same
//                 digest, and engine code never reads the wall clock, Math.random or timers;
//                 simulate also compares the digests of a whole sample of streams with a
//                 second process
//   snapshot      snapshot at a drawn point, restore, continue: the restored state has the
//                 snapshot's digest, and the run ends with the digest of a straight run
//   idempotence   (engines that claim it) re-deliveries change nothing: the stream with extra
//                 duplicate deliveries ends in the digest of its first deliveries only
//   convergence   (engines that claim it) any interleaving of the partitions (each partition's
//                 order kept) ends in the same digest
//   transient-events  (engines that claim `transientEvents`) decoding every event into one
//                 object (the codec's decodeInto, as recording and replay then do) ends in the
//                 digest of decoding each into an object of its own
//   latency       the stream's arrivals through the latency model (a service-time model, not
//                 measured) stay within the budget
//
// Every run applies events as a replay does: RunContext with the simulation's run seed, the
// virtual clock following the records' timestamps, seq = position in the delivered stream.

import { RunContext } from '../engine/context.js';
import type { Engine, InvariantViolation } from '../engine/types.js';
import { DeterminismGuard, DeterminismViolationError } from '../replayer/guard.js';
import { checkBudget, type Budget } from '../replayer/latency/budget.js';
import { QueueModel, type WhenFull } from '../replayer/latency/model.js';
import { samplerFor, type ServiceTimeSpec } from '../replayer/latency/service-time.js';
import { applyFaults, firstDeliveries, interleave, type Fault, type SimRecord } from './faults.js';

import { PROPERTY_NAMES, type PropertyName } from './options.js';

export { PROPERTY_NAMES, type PropertyName };

/** The run seed of simulated runs (the per-event randomness engines draw), also stored in counterexample tapes. */
export const SIM_RUN_SEED = 1;

export interface PropertyFailure {
  readonly property: PropertyName;
  readonly message: string;
  /** The event (position in the delivered stream) where it went wrong, when there is one. */
  readonly seq: number | null;
  readonly violations?: readonly InvariantViolation[];
}

export interface LatencyCheck {
  readonly serviceTime: ServiceTimeSpec;
  readonly seed: number;
  readonly budget: Budget;
  readonly queueCapacity: number;
  readonly whenFull: WhenFull;
}

export interface CheckContext {
  readonly engine: Engine;
  readonly engineOptions: unknown;
  readonly properties: readonly PropertyName[];
  readonly latency: LatencyCheck | null;
  /** Counts the events applied (for the throughput figure). */
  applied: number;
  /** Counts the events delivered (stream lengths after faults). */
  delivered: number;
}

/** What fast-check draws beside the stream: where to snapshot, how to interleave, which extra duplicates. */
export interface CaseExtras {
  readonly snapshotAt: number;
  readonly interleaveSeed: number;
  readonly extraDups: readonly Fault[];
}

interface RunOutcome {
  state: unknown;
  digest: string;
  violation: { seq: number; violations: InvariantViolation[] } | null;
}

/** How run() hands events to the engine: the records' own, or decoded from their encoding, each into a new object or all into one. */
type Decoding = 'none' | 'fresh' | 'reused';

function run(c: CheckContext, records: readonly SimRecord[], options: { invariants?: boolean; from?: { state: unknown; ctx: RunContext; seq: number }; decoding?: Decoding } = {}): RunOutcome {
  const engine = c.engine;
  const codec = engine.codec;
  const decoding = options.decoding ?? 'none';
  const ctx = options.from?.ctx ?? new RunContext(SIM_RUN_SEED);
  let state = options.from?.state ?? engine.init(c.engineOptions);
  let reused: unknown = null;
  for (let seq = options.from?.seq ?? 0; seq < records.length; seq++) {
    const r = records[seq];
    let event = r.event;
    if (decoding !== 'none') {
      const bytes = codec.encode(event);
      event = decoding === 'fresh' ? codec.decode(bytes) : (reused = codec.decodeInto!(bytes, 0, bytes.length, reused));
    }
    ctx.prepare(seq, r.timestampUs, r.partition);
    state = engine.apply(state, event, ctx);
    c.applied++;
    if (options.invariants) {
      const violations = engine.checkInvariants(state);
      if (violations.length > 0) return { state, digest: engine.digest(state), violation: { seq, violations } };
    }
  }
  return { state, digest: engine.digest(state), violation: null };
}

/** Check the selected properties on one delivered stream; the first that fails, or null. */
export function checkStream(c: CheckContext, records: readonly SimRecord[], extras: CaseExtras): PropertyFailure | null {
  const picked = new Set(c.properties);
  let straight: RunOutcome | null = null;
  const straightRun = (): RunOutcome => (straight ??= run(c, records));

  if (picked.has('invariants')) {
    const outcome = run(c, records, { invariants: true });
    if (outcome.violation !== null) {
      const v = outcome.violation;
      return {
        property: 'invariants',
        seq: v.seq,
        violations: v.violations,
        message: `after event ${v.seq}, ${v.violations.map((x) => `${x.code}: ${x.message}`).join('; ')}`,
      };
    }
    straight = outcome;
  }

  if (picked.has('determinism')) {
    const guard = new DeterminismGuard();
    let first: RunOutcome;
    let second: RunOutcome;
    const before = c.applied;
    guard.install();
    try {
      first = run(c, records);
      second = run(c, records);
    } catch (error) {
      if (!(error instanceof DeterminismViolationError)) throw error;
      const api = guard.take() ?? error.api;
      return { property: 'determinism', seq: null, message: `engine code called ${api} while applying an event (after ${c.applied - before} events of the two runs); engines must take time from ctx.nowUs and randomness from ctx.random` };
    } finally {
      guard.uninstall();
    }
    if (guard.violated) return { property: 'determinism', seq: null, message: `engine code called ${guard.take()} (and swallowed the error)` };
    if (first.digest !== second.digest) {
      return { property: 'determinism', seq: null, message: `two runs of the same ${records.length} events ended in different digests: ${first.digest} and ${second.digest}` };
    }
  }

  if (picked.has('snapshot')) {
    const k = extras.snapshotAt % (records.length + 1);
    const ctx = new RunContext(SIM_RUN_SEED);
    const head = run(c, records.slice(0, k), { from: { state: c.engine.init(c.engineOptions), ctx, seq: 0 } });
    const restored = c.engine.restore(c.engine.snapshot(head.state));
    const restoredDigest = c.engine.digest(restored);
    if (restoredDigest !== head.digest) {
      return { property: 'snapshot', seq: k, message: `the state after ${k} events has digest ${head.digest}, but restoring its snapshot gives ${restoredDigest}` };
    }
    const tail = run(c, records, { from: { state: restored, ctx, seq: k } });
    const whole = straightRun();
    if (tail.digest !== whole.digest) {
      return { property: 'snapshot', seq: k, message: `snapshot after ${k} events, restore, continue: the run ends in ${tail.digest}, a straight run in ${whole.digest}` };
    }
  }

  if (picked.has('idempotence')) {
    const delivered = applyFaults(records, extras.extraDups);
    const once = firstDeliveries(delivered);
    const a = run(c, delivered);
    const b = run(c, once);
    if (a.digest !== b.digest) {
      return {
        property: 'idempotence',
        seq: null,
        message: `with ${delivered.length - once.length} re-deliveries the run ends in ${a.digest}; with each record delivered once, in ${b.digest}`,
      };
    }
  }

  if (picked.has('convergence')) {
    const other = interleave(records, extras.interleaveSeed);
    const a = straightRun();
    const b = run(c, other);
    if (a.digest !== b.digest) {
      return { property: 'convergence', seq: null, message: `another interleaving of the partitions (each partition's order kept) ends in ${b.digest}, the delivered order in ${a.digest}` };
    }
  }

  if (picked.has('transient-events')) {
    const fresh = run(c, records, { decoding: 'fresh' });
    const reused = run(c, records, { decoding: 'reused' });
    if (fresh.digest !== reused.digest) {
      return {
        property: 'transient-events',
        seq: null,
        message: `decoding every event into one object (codec.decodeInto, as recording and replay do for an engine that declares transientEvents) ends in ${reused.digest}; decoding each into its own, in ${fresh.digest}: apply keeps events it is given, so the engine must not declare transientEvents`,
      };
    }
  }

  if (picked.has('latency') && c.latency !== null && records.length > 0) {
    const l = c.latency;
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of records) {
      if (r.timestampUs < lo) lo = r.timestampUs;
      if (r.timestampUs > hi) hi = r.timestampUs;
    }
    const model = new QueueModel({ speed: 1, capacity: l.queueCapacity, whenFull: l.whenFull, tickUs: 1, spanUs: hi - lo, sampler: samplerFor(l.serviceTime, l.seed) });
    for (const r of records) model.push(r.timestampUs, 0);
    const stats = model.finish();
    const over = checkBudget(stats.latencyMs, l.budget).filter((x) => !x.ok);
    if (over.length > 0) {
      return { property: 'latency', seq: null, message: `over budget under ${l.serviceTime.text}: ${over.map((x) => `${x.percentile} ${x.actualMs} ms > ${x.limitMs} ms`).join(', ')}` };
    }
  }
  return null;
}

/** The final digest of a straight run (for the two-process determinism comparison). */
export function finalDigest(c: CheckContext, records: readonly SimRecord[]): string {
  return run(c, records).digest;
}
