// CPU time a bench case uses, beside its wall time. A case that runs on several threads (the
// recorder: a source thread, the main thread, the checkpoint thread) can only finish sooner
// than its CPU time divided by the cores there are; printing both shows whether a case is
// short of a goal because of its work or because of how that work is spread over threads.
//
// process.cpuUsage() counts every thread of the process (any OS). On Linux the bench also
// reads each thread's time from /proc/self/task/<tid>/stat, so that it can say how the CPU
// time of a run was shared out; elsewhere that breakdown is left out.

import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime: USER_HZ, 100 on every Linux ABI Node runs on. */
const USER_HZ = 100;

/** Less CPU time a run than this, unaccounted for by the live threads, is put down to /proc's rounding. */
const ENDED_MIN_MS = 20;

/** CPU milliseconds (user + system) used by the process so far, all threads. */
export function processCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

/** CPU milliseconds used so far by each thread of this process, by thread id; null where /proc is not there. */
export function threadCpuMs(): Map<number, number> | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const out = new Map<number, number>();
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    // Fields after "(comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ);
  }
  return out;
}

/** CPU time a run: the main thread, the other live threads (most first), and threads that ended meanwhile. */
export interface ThreadShares {
  readonly main: number;
  readonly others: number[];
  /** The process's CPU time less that of the threads still there at the second reading (a thread started and ended by each run, like the NDJSON parse workers, is counted here). */
  readonly ended: number;
}

/**
 * CPU time per run of each thread, from `usedMs` (CPU milliseconds each thread used over `runs`
 * runs, by thread id: the differences of threadCpuMs readings taken around each run) and
 * `processMs` (processCpuMs's difference over the same runs): the main thread (its id is the
 * process id), the others, most first (threads that used less than `minMs` a run are left
 * out), and what threads that had ended by a run's second reading used.
 */
export function threadShares(usedMs: Map<number, number>, processMs: number, runs: number, minMs = 5): ThreadShares {
  let main = 0;
  let live = 0;
  const others: number[] = [];
  for (const [tid, ms] of usedMs) {
    const perRun = ms / runs;
    live += perRun;
    if (tid === process.pid) main = perRun;
    else if (perRun >= minMs) others.push(perRun);
  }
  // /proc counts in 10 ms ticks, each thread's rounded on its own: a difference of a few ticks
  // is rounding (7-9 ms a run were seen with no thread ending), not a thread.
  const ended = processMs / runs - live;
  return { main, others: others.sort((a, b) => b - a), ended: ended >= ENDED_MIN_MS ? ended : 0 };
}
