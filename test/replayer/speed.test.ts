// Paced replay. Only lower bounds on time are asserted: sleeping cannot make a replay finish
// early, while an upper bound would fail on a busy machine.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTape } from '../../replayer/replay.js';
import { interrupt, startTapedeck, tapedeck, tempDir } from '../support/cli.js';

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
    // From the library, where no option parser stands in front (republish checks it the same way, checkedSpeed).
    for (const speed of [0, -2, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => replayTape(path, { speed }), `speed ${speed}`).toThrow(expect.objectContaining({ code: 'E_USAGE', message: `--speed must be "max" or a positive number, got ${speed}` }));
    }
  });

  it('a speed at which the replay would take more than a year is refused before anything is replayed; a long one is announced', async () => {
    const path = join(tempDir(), 't.tape');
    // 2000 events at 10,000 events/s: about 0.2 s of recorded time.
    expect(tapedeck(['record', '--out', path, '--events', '2000', '--rate', '10000', '--players', '100']).status).toBe(0);
    const inspect = tapedeck(['inspect', path, '--json']).json<{ timeRange: { firstUs: number; lastUs: number } }>();
    const recordedMs = (inspect.timeRange.lastUs - inspect.timeRange.firstUs) / 1000;
    // A year is 3.16e10 ms: 0.2 s at 1e-12 is 6 years; at 1e-300 and 5e-324, the sleep would never end.
    for (const speed of ['1e-12', '1e-300', '5e-324']) {
      const r = tapedeck(['replay', path, '--speed', speed], { timeoutMs: 60_000 });
      expect(r.status, `--speed ${speed}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`error \\[E_USAGE\\]: --speed ${speed}: the \\d+ ms of recorded time in events 0 to 1,999 of .*t\\.tape would take (\\S+ years|for ever) to replay at ${speed} times their pace; give a larger --speed`));
      expect(r.stdout).toBe('');
    }
    const toKafka = tapedeck(['replay', path, '--to-kafka', '--brokers', '127.0.0.1:1', '--topic', 'x', '--speed', '1e-12'], { timeoutMs: 60_000 });
    expect(toKafka.status).toBe(2);
    expect(toKafka.stderr).toMatch(/error \[E_USAGE\]: --speed 1e-12: .* would take \S+ years to replay/);
    expect(() => replayTape(path, { speed: 1e-12 })).toThrow(/would take \S+ years to replay/);
    // A paced replay of ten seconds or more is announced (the library tells its plan; the CLI notes it).
    let plan: { pacedMs: number; recordedUs: number } | undefined;
    expect(() =>
      replayTape(path, {
        speed: 1e-6,
        onPaced: (p) => {
          plan = p;
          throw new Error('seen');
        },
      }),
    ).toThrow('seen');
    expect(plan!.recordedUs / 1000).toBeGreaterThanOrEqual(recordedMs);
    expect(plan!.pacedMs).toBeCloseTo(plan!.recordedUs / 1000 / 1e-6, 0);
    // Told before the replay starts (it would take 20 s: it is interrupted once told).
    const announced = startTapedeck(['replay', path, '--speed', '0.01']);
    const deadline = Date.now() + 30_000;
    while (!/note:/.test(announced.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await interrupt(announced);
    expect(announced.stderr()).toMatch(/^tapedeck: note: at 0\.01 times the recorded pace, the \d+ ms of recorded time take about \d+\.\d s to replay/);
    expect(announced.stdout()).toBe('');
    expect(tapedeck(['replay', path, '--speed', '4']).stderr).not.toMatch(/note/);
  });
});
