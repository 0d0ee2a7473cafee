// Reading a tape while it is being recorded (inspect, verify or replay run during a long
// recording): each reader sees the tape as one commit left it, so what it reports adds up,
// and the recording is not disturbed.

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTape } from '../../replayer/replay.js';
import { TapeReader } from '../../tape/reader.js';
import { verifyTape } from '../../tape/verify.js';
import { startTapedeck, tapedeck, tempDir } from '../support/cli.js';
import { waitForCommitted } from '../support/kill.js';

describe('reading a tape while it is recorded', () => {
  it('verify, inspect, replay and replay --workers see a sound tape at every point, and the recording finishes as a straight one', async () => {
    const dir = tempDir();
    const path = join(dir, 'live.tape');
    const EVENTS = 6_000_000;
    const recorder = startTapedeck(['record', '--out', path, '--events', String(EVENTS), '--seed', '8']);
    let finished = false;
    void recorder.exited.then(() => (finished = true));
    const seen: number[] = [];
    while (!finished) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (!existsSync(path)) continue;
      const report = verifyTape(path);
      expect(report.ok, `verify during the recording, at ${report.events} events: ${report.problems.join('; ')}`).toBe(true);
      const reader = TapeReader.open(path);
      try {
        const summary = reader.summary();
        expect(summary.events).toBeGreaterThanOrEqual(report.events);
      } finally {
        reader.close();
      }
      const replay = replayTape(path);
      expect(replay.mismatches, 'replay during the recording').toBe(0);
      expect(replay.events).toBeGreaterThanOrEqual(report.events);
      // Sharded: each worker opens the tape itself, later than the main thread, and stops where the main thread's view ends.
      const sharded = tapedeck(['replay', path, '--workers', '2', '--json']);
      expect(sharded.status, `replay --workers 2 during the recording: ${sharded.stderr}`).toBe(0);
      expect(sharded.json<{ mismatches: number; events: number }>().mismatches).toBe(0);
      expect(sharded.json<{ mismatches: number; events: number }>().events).toBeGreaterThanOrEqual(replay.events);
      seen.push(report.events);
    }
    const { code } = await recorder.exited;
    expect(code, recorder.stderr()).toBe(0);
    console.log(`[concurrent] verified the tape ${seen.length} times while it was recorded, at ${seen.join(', ')} events`);
    // At least one look at a tape still growing (each look reads the whole tape three times, so
    // there are few; the first one at a growing tape found both faults this test guards against).
    expect(seen.filter((n) => n > 0 && n < EVENTS).length).toBeGreaterThanOrEqual(1);
    expect(tapedeck(['verify', path]).status).toBe(0);
    expect(tapedeck(['inspect', path, '--json']).json<{ events: number }>().events).toBe(EVENTS);
  });

  it('a reader that holds the tape past the end of the recording: record finishes, exit 0, and says the tape stays in WAL mode', async () => {
    const path = join(tempDir(), 'held.tape');
    const EVENTS = 4_000_000;
    const recorder = startTapedeck(['record', '--out', path, '--events', String(EVENTS), '--seed', '9']);
    await waitForCommitted(path, 1);
    // A snapshot held in this process from early in the recording until it has ended, longer
    // than the writer waits for readers to go (10 s) before it leaves the tape in WAL mode.
    const db = new Database(path, { readonly: true, fileMustExist: true });
    db.exec('BEGIN');
    const early = (db.prepare('SELECT COUNT(*) AS n FROM blocks').get() as { n: number }).n;
    const { code } = await recorder.exited;
    db.exec('COMMIT');
    db.close();
    expect(code, recorder.stderr()).toBe(0);
    expect(early).toBeLessThan(Math.ceil(EVENTS / 4096));
    expect(recorder.stderr()).toContain(`tapedeck: note: another process had ${path} open while the recording finished, so the tape stays in WAL mode, with ${path}-wal beside it; it is complete and sound`);
    expect(existsSync(`${path}-wal`)).toBe(true);
    expect(tapedeck(['verify', path]).status).toBe(0);
    expect(tapedeck(['inspect', path, '--json']).json<{ events: number }>().events).toBe(EVENTS);
  });
});
