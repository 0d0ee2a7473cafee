// A long run in child processes of their own, so that the bench's other data does not count:
// record N events in one, replay them and seek into the middle in another; RSS sampled every
// 100 ms throughout.

import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PhaseRss {
  readonly elapsedMs: number;
  /** Megabytes of 10^6 bytes, as the goals are stated. */
  readonly peakRssMb: number;
  /** RSS at 10%, 25%, 50%, 75% and 100% of the phase, to show it stays flat. */
  readonly rssMbAtQuarters: number[];
}

export interface RssReport {
  readonly events: number;
  readonly record: PhaseRss;
  readonly replay: PhaseRss;
  /** Time for a replay with --from at the middle of the tape to apply its first event. */
  readonly seekMs: number;
}

function child(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const proc = fork(fileURLToPath(new URL('./rss-child.js', import.meta.url)), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    proc.on('message', (m) => resolve(m as Record<string, unknown>));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) reject(new Error(`long-run child exited with ${code}`));
    });
  });
}

/** Record in one child process, then replay and seek in another. */
export async function measureLongRun(events: number, dir: string): Promise<RssReport> {
  const path = join(dir, 'long.tape');
  const recorded = await child(['record', String(events), path]);
  const replayed = await child(['replay', String(events), path]);
  return { events, record: recorded.record as PhaseRss, replay: replayed.replay as PhaseRss, seekMs: replayed.seekMs as number };
}
