// kill -9 a recording at random points until it is done, resuming each time, as the crash
// tests of every source need. The points are chosen by progress, not by time alone, so that
// they fall during the recording however fast the machine records (a kill after a fixed
// 300-1500 ms found a fast machine's Kafka capture already finished after 16 kills).

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { eventSeed, SeededRandom } from '../../engine/random.js';
import { startTapedeck, tapedeck } from './cli.js';

/**
 * The random numbers that choose a test's kill points, from its printed seed. xoroshiro128+
 * seeded with nearby numbers (a seed taken from the clock) gives nearly the same first
 * numbers (seeds 437050 and 437052 both begin 0.993), so the seed is hashed first
 * (eventSeed) and the kill points differ from one run to the next.
 */
export function killRandom(seed: number): () => number {
  const random = new SeededRandom(eventSeed(seed, 0));
  return () => random.float();
}

/** The events a tape being written has committed so far (0 before it exists or can be read). */
export function committedEvents(path: string): number {
  if (!existsSync(path)) return 0;
  let db: Database.Database | undefined;
  try {
    // A connection for each look, closed at once: the recorder's close needs to be the only one.
    db = new Database(path, { readonly: true, fileMustExist: true });
    return (db.prepare('SELECT coalesce(max(first_seq + event_count), 0) AS n FROM blocks').get() as { n: number }).n;
  } catch {
    return 0;
  } finally {
    db?.close();
  }
}

/** Resolves once the tape being written has committed at least `events` events. */
export async function waitForCommitted(path: string, events: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (committedEvents(path) < events) {
    if (Date.now() > deadline) throw new Error(`${path}: fewer than ${events} events committed after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface KillRun {
  /** The record command, without --out and --resume. */
  readonly args: readonly string[];
  readonly tape: string;
  /** The events the finished recording holds. */
  readonly events: number;
  /** Uniform in [0, 1), seeded by the caller (which prints the seed). */
  readonly random: () => number;
  /** Kills planned by progress (default 24); the early kills come on top. */
  readonly planned?: number;
  /** Printed with a failing verify. */
  readonly label: string;
}

export interface KillResult {
  readonly kills: number;
  /** Each kill: the planned events committed + ms (or ms after start), and the events the tape held after it. */
  readonly points: string;
  /** The last run's stdout (the run that finished the recording). */
  readonly stdout: string;
}

/**
 * Record with `args`, killing the recorder with SIGKILL and resuming, until `planned` kills by
 * progress are made; then one more run finishes the tape. Each kill by progress waits for a
 * random number of further committed events, spread over what is left (up to 95% of the
 * events), then kills 0-20 ms later, while the next commit is being read or written. One run in
 * five is instead killed 20-320 ms after it starts (loading, opening the source, the first
 * read). After every kill the tape, if it exists, must pass `tapedeck verify`.
 */
export async function killUntilDone(run: KillRun): Promise<KillResult> {
  const planned = run.planned ?? 24;
  const points: string[] = [];
  let kills = 0;
  let progressKills = 0;
  for (let attempt = 0; attempt < 200; attempt++) {
    const args = [...run.args, '--out', run.tape, ...(existsSync(run.tape) ? ['--resume'] : [])];
    const child = startTapedeck(args);
    const finishing = progressKills >= planned;
    const before = committedEvents(run.tape);
    const early = run.random() < 0.2;
    const left = Math.max(0, run.events * 0.95 - before);
    const target = before + 1 + Math.floor(((0.25 + run.random()) * left) / (planned - progressKills + 0.5));
    const earlyMs = 20 + Math.floor(run.random() * 300);
    const afterMs = Math.floor(run.random() * 20);
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    if (finishing) {
      // No kill: this run finishes the tape.
    } else if (early) {
      timer = setTimeout(() => child.child.kill('SIGKILL'), earlyMs);
    } else {
      poll = setInterval(() => {
        if (committedEvents(run.tape) < target) return;
        clearInterval(poll);
        timer = setTimeout(() => child.child.kill('SIGKILL'), afterMs);
      }, 5);
    }
    const { code, signal } = await child.exited;
    clearInterval(poll);
    clearTimeout(timer);
    if (signal !== 'SIGKILL') {
      // Finished: the planned kills were made, or the recording ended before this run's kill point.
      expect(code, child.stderr()).toBe(0);
      return { kills, points: points.join(' '), stdout: child.stdout() };
    }
    kills++;
    if (!early) progressKills++;
    const point = `${early ? `${earlyMs}ms` : `${target}+${afterMs}ms`}:${committedEvents(run.tape)}`;
    points.push(point);
    if (existsSync(run.tape)) {
      const verify = tapedeck(['verify', run.tape]);
      expect(verify.status, `${run.label}: verify after kill ${kills} (${point}):\n${verify.stdout}${verify.stderr}`).toBe(0);
    }
  }
  throw new Error(`${run.label}: the recording never finished (${kills} kills: ${points.join(' ')})`);
}
