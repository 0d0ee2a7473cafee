// A reader thread stuck in the engine's code (a generate() hook or a codec that never returns)
// must not hold a stopped recording for ever: after the stop the thread gets 10 s to say
// anything (STOPPED_QUIET_MS), then it is ended, the tape keeps, committed and sound, every
// event the thread handed over, and --resume completes the tape exactly.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTapedeck, tapedeck, tempDir } from '../support/cli.js';
import { committedEvents, waitForCommitted } from '../support/kill.js';
import { expectEndedStuck, interruptWhenStuck, STUCK_ENV, writeStuckEngine } from '../support/stuck-engine.js';

const dir = tempDir();

const engine = writeStuckEngine(dir);

/** SHA-256 of what `export` prints for the tape: equal tapes, equal events. */
const exported = (tape: string): string => {
  const r = tapedeck(['export', tape, '--engine', engine]);
  expect(r.status, r.stderr).toBe(0);
  return createHash('sha256').update(r.stdout).digest('hex');
};

describe('a reader thread stuck in the engine\'s code', () => {
  it('a generate() hook that never returns: Ctrl-C ends the source worker after 10 s, exit 0, the tape sound; --resume completes it as a straight recording', async () => {
    const events = 400_000;
    // After a commit past 200,000 events, which the wait below sees: a commit comes every 32
    // blocks of 4,096 events (262,144), or sooner once the blocks hold 8 MiB.
    const stuckAt = 300_000;
    const tape = join(dir, 'generated.tape');
    const args = ['record', '--engine', engine, '--events', String(events), '--pipeline', 'on'];
    const run = startTapedeck([...args, '--out', tape], { env: { ...STUCK_ENV, TAPEDECK_TEST_STUCK_AT: String(stuckAt) } });
    try {
      expectEndedStuck(run, await interruptWhenStuck(run, tape, 200_000), tape, 'the source worker', 10, stuckAt);
    } finally {
      run.child.kill('SIGKILL');
    }
    const resumed = tapedeck(['record', '--engine', engine, '--resume', '--out', tape, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const straight = tapedeck([...args, '--out', join(dir, 'straight.tape'), '--json']);
    expect(straight.status, straight.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({ events, finalDigest: straight.json().finalDigest });
    expect(exported(tape)).toBe(exported(join(dir, 'straight.tape')));
  }, 120_000);

  it('while the stop waits on a stuck thread, the recorder says so, and a second Ctrl-C quits at once; the tape keeps its last commit, and --resume completes it', async () => {
    const events = 400_000;
    const tape = join(dir, 'twice.tape');
    const args = ['record', '--engine', engine, '--events', String(events), '--pipeline', 'on'];
    // Stuck after a commit past 200,000 events (see above).
    const run = startTapedeck([...args, '--out', tape], { env: { ...STUCK_ENV, TAPEDECK_TEST_STUCK_AT: '300000' } });
    try {
      await waitForCommitted(tape, 200_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      run.child.kill('SIGINT');
      const deadline = Date.now() + 8_000;
      while (!run.stderr().includes('SIGINT again quits at once') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(run.stderr()).toContain('tapedeck: stopping after SIGINT: a reader thread or the broker has not answered yet; SIGINT again quits at once (the tape keeps its last commit)');
      const t0 = Date.now();
      run.child.kill('SIGINT');
      expect(await run.exited).toEqual({ code: null, signal: 'SIGINT' });
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      run.child.kill('SIGKILL');
    }
    const verify = tapedeck(['verify', tape]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(committedEvents(tape)).toBeGreaterThanOrEqual(200_000);
    const resumed = tapedeck(['record', '--engine', engine, '--resume', '--out', tape, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const straight = tapedeck([...args, '--out', join(dir, 'straight-twice.tape'), '--json']);
    expect(resumed.json()).toMatchObject({ events, finalDigest: straight.json().finalDigest });
  }, 120_000);

  it('a codec that never returns on an NDJSON parse worker: Ctrl-C ends the worker after 10 s, exit 0, the tape sound; --resume completes it as a straight recording', async () => {
    const lines = 300_000;
    const stuckLine = 200_000;
    const input = join(dir, 'events.ndjson');
    const text: string[] = [];
    for (let i = 1; i <= lines; i++) {
      const type = i === stuckLine ? 'stuck' : ['deposit', 'withdraw', 'audit'][i % 3];
      text.push(JSON.stringify({ timestampUs: 1_767_225_600_000_000 + i * 10, partition: i % 4, key: `account-${i % 16}`, type, payload: { amount: 1 + (i % 100) } }));
    }
    writeFileSync(input, text.join('\n') + '\n');
    const tape = join(dir, 'ndjson.tape');
    const args = ['record', '--source', 'ndjson', '--input', input, '--engine', engine, '--pipeline', 'on'];
    const run = startTapedeck([...args, '--out', tape], { env: STUCK_ENV });
    try {
      expectEndedStuck(run, await interruptWhenStuck(run, tape, 100_000), tape, 'NDJSON parse worker [01]', 10, stuckLine - 1);
    } finally {
      run.child.kill('SIGKILL');
    }
    const resumed = tapedeck([...args, '--resume', '--out', tape, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    const straight = tapedeck([...args, '--out', join(dir, 'straight-ndjson.tape'), '--json']);
    expect(straight.status, straight.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({ events: lines, read: lines, finalDigest: straight.json().finalDigest });
    expect(exported(tape)).toBe(exported(join(dir, 'straight-ndjson.tape')));
  }, 120_000);
});
