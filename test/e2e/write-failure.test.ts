// A write to the tape fails mid-recording (the disk fills up, an I/O error): the recorder stops
// with an error that says so and what the tape keeps, the process ends, the tape verifies, and
// --resume finishes it into the tape a straight recording writes.

import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { openResume } from '../../recorder/resume.js';
import { WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { TapeWriteError } from '../../tape/errors.js';
import { verifyTape } from '../../tape/verify.js';
import { tapedeck, tempDir } from '../support/cli.js';
import { expectSoundTapeOf, keptAfterWriteFailure } from '../support/write-failure.js';

describe('a write that fails mid-recording', () => {
  // Big enough to be read on the source worker (from 200,000 events), whose thread must be
  // ended too, or the process would never exit.
  const EVENTS = 300_000;

  it('stops with a clear error naming what the tape keeps; the tape is sound and --resume completes it', () => {
    const dir = tempDir();
    const straight = join(dir, 'straight.tape');
    expect(tapedeck(['record', '--out', straight, '--events', String(EVENTS), '--seed', '5']).status).toBe(0);

    // Files up to 4 MiB (8192 blocks of 512 bytes): the tape of 300,000 events is about 7 MiB,
    // and a commit of 32 blocks (131,072 events) writes about 3 MiB to the WAL.
    const tape = join(dir, 'failed.tape');
    const failed = tapedeck(['record', '--out', tape, '--events', String(EVENTS), '--seed', '5'], { fileSizeLimitBlocks: 8192, timeoutMs: 60_000 });
    const kept = keptAfterWriteFailure(
      failed,
      /tapedeck: error \[E_TAPE_WRITE\]: .*failed\.tape: cannot write to the tape: the disk reported an I\/O error \(SQLite: .*\)\. The tape keeps the ([\d,]+) events committed before it, sound; once the cause is fixed, the same command with --resume continues the recording from there/,
    );
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(EVENTS);

    // What the message says is what the tape holds, and it is sound.
    expectSoundTapeOf(tape, kept);

    const resumed = tapedeck(['record', '--out', tape, '--events', String(EVENTS), '--seed', '5', '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`(${EVENTS.toLocaleString('en-US')} in the tape)`);
    const digest = (path: string) => tapedeck(['replay', path, '--json']).json<{ ok: boolean; finalDigest: string }>();
    const a = digest(straight);
    const b = digest(tape);
    expect(b.ok).toBe(true);
    expect(b.finalDigest).toBe(a.finalDigest);
    const events = (path: string) => tapedeck(['export', path]).stdout;
    expect(events(tape) === events(straight), 'the resumed tape holds the same events as the straight one').toBe(true);
  });

  it('from stdin, the error also counts the inputs read after the last commit, which stdin cannot give again', () => {
    const dir = tempDir();
    const generated = join(dir, 'gen.tape');
    expect(tapedeck(['record', '--out', generated, '--events', '100000', '--seed', '6']).status).toBe(0);
    const lines = tapedeck(['export', generated]).stdout;
    const tape = join(dir, 'stdin.tape');
    // stdin commits every block, each synced: the limit is met a block at a time.
    const r = tapedeck(['record', '--source', 'ndjson', '--input', '-', '--out', tape], { input: lines, fileSizeLimitBlocks: 2048, timeoutMs: 60_000 });
    expect(r.status, r.stderr).toBe(2);
    const message = /The tape keeps the ([\d,]+) events committed before it, sound; the ([\d,]+) inputs read after that commit are not, and this source \(stdin\) cannot give them again; once the cause is fixed, the same command with --resume continues the recording from there/.exec(r.stderr);
    expect(message, r.stderr).not.toBeNull();
    const [kept, lost] = [message![1], message![2]].map((n) => Number(n.replaceAll(',', '')));
    expect(kept).toBeGreaterThan(0);
    expect(lost).toBeGreaterThan(0);
    expect(kept + lost).toBeLessThanOrEqual(100_000);
    expectSoundTapeOf(tape, kept);
  });

  it('a tape that cannot even be created (no room for its first page) is an error, and leaves no file behind', () => {
    const dir = tempDir();
    const tape = join(dir, 'none.tape');
    // One block of 512 bytes: not even the tape's first 64 KiB page fits.
    const r = tapedeck(['record', '--out', tape, '--events', '1000'], { fileSizeLimitBlocks: 1, timeoutMs: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/tapedeck: error \[E_TAPE_WRITE\]: .*none\.tape: cannot create the tape: the disk reported an I\/O error/);
    expect(r.stderr).not.toMatch(/internal error|SqliteError/);
    expect(tapedeck(['inspect', tape]).stderr).toMatch(/E_TAPE_NOT_FOUND/);
  });

  it('two recordings resuming one tape: the second to commit is refused, naming the conflict, and the tape stays the first one\'s', async () => {
    const dir = tempDir();
    const path = join(dir, 't.tape');
    const options = { seed: 3, events: 30_000 };
    // Blocks of 250 events, 32 a commit (8,000 events): the stop comes before the generator's
    // thread has sent everything.
    const controller = new AbortController();
    const first = await recordTape(new WorldTrafficSource(options), {
      path,
      engine: worldEngine,
      runSeed: 3,
      blockEvents: 250,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.events >= 10_000) controller.abort();
      },
    });
    expect(first.stopped).toBe(true);
    // Both open the tape where it ends, before either writes: as two `record --resume` started together.
    const resumes = [openResume(path, worldEngine, 'synthetic'), openResume(path, worldEngine, 'synthetic')];
    const run = (i: number) =>
      recordTape(new WorldTrafficSource(options, (resumes[i].position as { nextIndex: number }).nextIndex), { path, engine: worldEngine, runSeed: 3, blockEvents: 250, resume: resumes[i] });
    expect((await run(0)).events).toBe(30_000);
    const refused = await run(1).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(TapeWriteError);
    expect((refused as TapeWriteError).conflict).toBe(true);
    expect((refused as Error).message).toMatch(/cannot write to the tape: it already holds block \d+, written by another recording of this tape .*two recordings cannot write one tape at once/);
    expect(verifyTape(path).ok).toBe(true);
    expect(tapedeck(['inspect', path, '--json']).json<{ events: number }>().events).toBe(30_000);
  });

  it('the tape moved, deleted or replaced while it is recorded: the run stops at its next commit, saying so; a moved tape is sound and --resume completes it', async () => {
    const dir = tempDir();
    const options = { seed: 5, events: 40_000 };
    const straight = join(dir, 'straight.tape');
    const whole = await recordTape(new WorldTrafficSource(options), { path: straight, engine: worldEngine, runSeed: 5, blockEvents: 1000 });
    /** Records options' events to `path`, doing `act` to its file once 10,000 events are committed; the error it stops with. */
    const recordWhile = async (path: string, act: () => void): Promise<{ error: TapeWriteError; committed: number }> => {
      let committed = -1;
      const error = await recordTape(new WorldTrafficSource(options), {
        path,
        engine: worldEngine,
        runSeed: 5,
        blockEvents: 1000,
        onProgress: (p) => {
          if (committed < 0 && p.events >= 10_000) {
            committed = p.events;
            act();
          }
        },
      }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TapeWriteError);
      expect((error as TapeWriteError).conflict).toBe(true);
      return { error: error as TapeWriteError, committed };
    };

    const path = join(dir, 'moved-from.tape');
    const moved = join(dir, 'moved.tape');
    const m = await recordWhile(path, () => renameSync(path, moved));
    expect(m.error.message).toMatch(/moved-from\.tape: the tape's file was moved or deleted while this run was writing it, so the run stops\. Its commits are in the file it opened: moved, that file is the tape, sound, under its new name/);
    expect(verifyTape(moved).ok).toBe(true);
    const held = tapedeck(['inspect', moved, '--json']).json<{ events: number }>().events;
    // It stopped at the next commit: what was committed by then, and no more.
    expect(held).toBeGreaterThanOrEqual(m.committed);
    expect(held).toBeLessThan(options.events);
    const resumed = tapedeck(['record', '--resume', '--out', moved, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.json<{ events: number; finalDigest: string }>()).toMatchObject({ events: options.events, finalDigest: whole.finalDigest });

    const deleted = join(dir, 'deleted.tape');
    const d = await recordWhile(deleted, () => rmSync(deleted));
    expect(d.error.message).toMatch(/the tape's file was moved or deleted while this run was writing it/);
    expect(existsSync(deleted)).toBe(false);

    const replaced = join(dir, 'replaced.tape');
    const other = join(dir, 'other.tape');
    copyFileSync(straight, other);
    const r = await recordWhile(replaced, () => renameSync(other, replaced));
    expect(r.error.message).toMatch(/replaced\.tape: another file took the tape's place while this run was writing it \(a recording with --force, or a file moved there\), so the run stops; that file is left alone/);
    // The file that took its place is untouched: the straight recording, whole.
    expect(verifyTape(replaced).ok).toBe(true);
    expect(tapedeck(['inspect', replaced, '--json']).json<{ events: number; finalDigest: string }>()).toMatchObject({ events: options.events });
    expect(tapedeck(['replay', replaced]).status).toBe(0);
  });
});
