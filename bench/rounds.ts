// Measuring cases in rounds (main.ts's cases and the Kafka cases): warm-up rounds, then `reps`
// rounds, each running every case of a group once in turn. A slow spell of these shared
// machines (or of the broker) then falls on a case and its baseline alike, which runs of one
// case after another did not ensure. Each run's wall time and CPU time (all threads) is kept,
// and on Linux each thread's CPU time (see cpu.ts).
//
// The warm-up lasts WARM_UP.minMs (at least one round, at most WARM_UP.maxRounds), not one
// round: V8 optimizes a function once it has run enough, and the code a run calls per block or
// per message, not per event, gets there only after several runs of 1M events. With one
// warm-up round, `--trace-opt` showed V8 compiling the recorder's code for the first time in
// the second and fourth measured rounds of record-synthetic (50 to 110 ms of its helper threads
// a run), and the measured runs' CPU by thread showed those threads busy: the rounds measured
// V8 settling, not the recording. The replays with the latency model showed the same in their
// first five runs of a process. 10 s gives the replay and NDJSON groups (rounds of about 4 s)
// three rounds, the ten-round cap the short groups; the slowest Kafka group still warms up once.

import { performance } from 'node:perf_hooks';
import { processCpuMs, threadCpuMs, threadShares, type ThreadShares } from './cpu.js';

export interface RoundCase {
  readonly name: string;
  /** Runs once and returns the number of events it handled. */
  readonly run: () => number | Promise<number>;
  /** Runs before each of the case's runs, untimed. */
  readonly before?: () => unknown;
}

/** What a case measured. */
export interface RoundResult {
  readonly name: string;
  readonly events: number;
  readonly medianMs: number;
  readonly eventsPerSec: number;
  /** Each timed run's wall time, in the order run. */
  readonly runsMs: number[];
  /** Median CPU time of a run, every thread of the process (user + system). */
  readonly cpuMs: number;
  readonly cpuRunsMs: number[];
  /** CPU time a run, the main thread and the others (Linux only; null elsewhere). */
  readonly threadCpuMs: ThreadShares | null;
  /** Rounds of the group run before the measured ones (see WarmUp). */
  readonly warmUpRounds: number;
}

/** How long a group warms up: rounds until minMs have gone by, at least one, at most maxRounds. */
export interface WarmUp {
  readonly minMs: number;
  readonly maxRounds: number;
}

export const WARM_UP: WarmUp = { minMs: 10_000, maxRounds: 10 };

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The cases in groups to measure together: a case, its baseline and the cases measured against
 * either (main.ts's replay cases form one group), in the order the cases come. A case whose
 * baseline is not among them starts a group of its own.
 */
export function caseGroups<C extends { readonly name: string; readonly baseline?: string }>(cases: readonly C[]): C[][] {
  const groupOf = new Map<string, C[]>();
  const groups: C[][] = [];
  for (const c of cases) {
    const base = c.baseline === undefined ? undefined : groupOf.get(c.baseline);
    const group = base ?? [];
    if (base === undefined) groups.push(group);
    group.push(c);
    groupOf.set(c.name, group);
  }
  return groups;
}

/** Measure `group` in rounds (see above), saying so on stderr. */
export async function measureRounds(group: readonly RoundCase[], reps: number, warmUp: WarmUp = WARM_UP): Promise<RoundResult[]> {
  const names = group.map((c) => c.name).join(', ');
  const each = group.length > 1 ? 'rounds, one run of each in turn' : 'runs';
  process.stderr.write(`${names}: warm-up (${warmUp.minMs / 1000} s, 1 to ${warmUp.maxRounds} ${group.length > 1 ? 'rounds' : 'runs'}) + ${reps} ${each}\n`);
  const runsMs = group.map((): number[] => []);
  const cpuRunsMs = group.map((): number[] => []);
  const counts = group.map(() => 0);
  /** Per case, CPU time by thread summed over its runs (null: no /proc). */
  const threadSums = group.map((): Map<number, number> | null => new Map());
  const warmUpStarted = performance.now();
  let warmUpRounds = 0;
  while (warmUpRounds === 0 || (warmUpRounds < warmUp.maxRounds && performance.now() - warmUpStarted < warmUp.minMs)) {
    for (const c of group) {
      await c.before?.();
      await c.run();
    }
    warmUpRounds++;
  }
  const unit = group.length > 1 ? 'round' : 'run';
  process.stderr.write(`  warmed up: ${warmUpRounds} ${unit}${warmUpRounds === 1 ? '' : 's'} in ${((performance.now() - warmUpStarted) / 1000).toFixed(1)} s\n`);
  for (let round = 0; round < reps; round++) {
    for (const [i, c] of group.entries()) {
      await c.before?.();
      const threadsBefore = threadCpuMs();
      const cpuStarted = processCpuMs();
      const started = performance.now();
      counts[i] = await c.run();
      const wallMs = performance.now() - started;
      const cpuMs = processCpuMs() - cpuStarted;
      const threadsAfter = threadCpuMs();
      runsMs[i].push(wallMs);
      cpuRunsMs[i].push(cpuMs);
      const sums = threadSums[i];
      if (sums === null || threadsBefore === null || threadsAfter === null) {
        threadSums[i] = null;
        continue;
      }
      for (const [tid, ms] of threadsAfter) sums.set(tid, (sums.get(tid) ?? 0) + ms - (threadsBefore.get(tid) ?? 0));
    }
  }
  return group.map((c, i) => {
    const medianMs = median(runsMs[i]);
    const sums = threadSums[i];
    const processMs = cpuRunsMs[i].reduce((a, b) => a + b, 0);
    return {
      name: c.name,
      events: counts[i],
      medianMs,
      eventsPerSec: (counts[i] * 1000) / medianMs,
      runsMs: runsMs[i],
      cpuMs: median(cpuRunsMs[i]),
      cpuRunsMs: cpuRunsMs[i],
      threadCpuMs: sums === null ? null : threadShares(sums, processMs, reps),
      warmUpRounds,
    };
  });
}

/** Each round's ratio of a case to its baseline (measured in the same rounds), or null when they were not. */
export function ratiosByRound(row: Pick<RoundResult, 'events' | 'runsMs'>, base: Pick<RoundResult, 'events' | 'runsMs'>): number[] | null {
  if (row.runsMs.length !== base.runsMs.length || row.runsMs.length === 0) return null;
  return row.runsMs.map((ms, i) => (row.events / ms) * (base.runsMs[i] / base.events));
}
