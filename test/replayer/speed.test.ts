// Paced replay. Only lower bounds on time are asserted: sleeping cannot make a replay finish
// early, while an upper bound would fail on a busy machine.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTape } from '../../replayer/replay.js';
import { tapedeck, tempDir } from '../support/cli.js';

describe('--speed', () => {
  it('K follows recorded time divided by K; max never sleeps', () => {
    const path = join(tempDir(), 't.tape');
    // 4000 events at 10,000 events/s: about 0.4 s of recorded time.
    expect(tapedeck(['record', '--out', path, '--events', '4000', '--rate', '10000', '--players', '100']).status).toBe(0);
    const max = replayTape(path);
    expect(max).toMatchObject({ ok: true, speed: 'max', sleptMs: 0 });
    const inspect = tapedeck(['inspect', path, '--json']).json<{ timeRange: { firstUs: number; lastUs: number } }>();
    const recordedMs = (inspect.timeRange.lastUs - inspect.timeRange.firstUs) / 1000;
    expect(recordedMs).toBeGreaterThan(300);
    for (const speed of [1, 4]) {
      const paced = replayTape(path, { speed });
      expect(paced.ok).toBe(true);
      expect(paced.elapsedMs, `speed ${speed}`).toBeGreaterThanOrEqual((recordedMs / speed) * 0.95);
      expect(paced.finalDigest).toBe(max.finalDigest);
    }
    const r = tapedeck(['replay', path, '--speed', '8', '--json']);
    expect(r.status).toBe(0);
    expect(r.json<{ speed: number; elapsedMs: number }>()).toMatchObject({ speed: 8 });
    expect(tapedeck(['replay', path, '--speed', 'fast']).stderr).toMatch(/--speed must be max or a positive multiple of the recorded rate \(such as 2 or 0.5\), got "fast"/);
  });
});
