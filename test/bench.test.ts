// The benchmark's measuring (bench/rounds.ts, bench/cpu.ts): the figures README and the closing
// notes quote come from these, so what they compute is held here. (The figures themselves are
// the bench's business, never the test suite's: these machines are shared and noisy.)

import { describe, expect, it } from 'vitest';
import { processCpuMs, threadCpuMs, threadShares } from '../bench/cpu.js';
import { caseGroups, measureRounds, median, ratiosByRound } from '../bench/rounds.js';

const sleep = (ms: number): Promise<number> => new Promise((resolve) => setTimeout(() => resolve(1), ms));

describe('bench rounds', () => {
  it('runs warm-up rounds, then each round runs every case of the group once in turn', async () => {
    const calls: string[] = [];
    const results = await measureRounds(
      [
        { name: 'base', run: () => (calls.push('base'), 100) },
        { name: 'case', run: async () => (calls.push('case'), 50), before: () => calls.push('before case') },
      ],
      3,
      { minMs: 0, maxRounds: 10 },
    );
    // One warm-up round (the least there is), then the three measured.
    expect(calls).toEqual(Array.from({ length: 4 }, () => ['base', 'before case', 'case']).flat());
    expect(results.map((r) => [r.name, r.events, r.runsMs.length, r.cpuRunsMs.length, r.warmUpRounds])).toEqual([
      ['base', 100, 3, 3, 1],
      ['case', 50, 3, 3, 1],
    ]);
    for (const r of results) {
      expect(r.medianMs).toBe(median(r.runsMs));
      expect(r.eventsPerSec).toBeCloseTo((r.events * 1000) / r.medianMs, 6);
      expect(r.cpuMs).toBe(median(r.cpuRunsMs));
    }
  });

  it('warms up for minMs of rounds, at least one and at most maxRounds', async () => {
    // Rounds of about 20 ms: 100 ms of warm-up takes five or six (a timer may fire late).
    const runs: number[] = [];
    const [timed] = await measureRounds([{ name: 'sleeps', run: () => (runs.push(performance.now()), sleep(20)) }], 2, { minMs: 100, maxRounds: 50 });
    expect(timed.warmUpRounds).toBeGreaterThanOrEqual(4);
    expect(timed.warmUpRounds).toBeLessThanOrEqual(6);
    expect(runs).toHaveLength(timed.warmUpRounds + 2);
    expect(runs[timed.warmUpRounds] - runs[0], 'the measured runs start once minMs have gone by').toBeGreaterThanOrEqual(95);
    const [capped] = await measureRounds([{ name: 'sleeps', run: () => sleep(20) }], 1, { minMs: 60_000, maxRounds: 3 });
    expect(capped.warmUpRounds).toBe(3);
    const [long] = await measureRounds([{ name: 'sleeps', run: () => sleep(30) }], 1, { minMs: 10, maxRounds: 3 });
    expect(long.warmUpRounds, 'a round longer than minMs warms up once').toBe(1);
  });

  it('counts the CPU time a case spends, beside its wall time', async () => {
    // A fixed amount of work (tens of ms of CPU), and a timer wait of 60 ms, which uses next to none.
    const work = (): number => {
      let x = 0;
      for (let i = 0; i < 30_000_000; i++) x = (x + i * 7) % 1_000_003;
      return x >= 0 ? 1 : 0;
    };
    const [busy, idle] = await measureRounds(
      [
        { name: 'busy', run: work },
        { name: 'idle', run: () => new Promise<number>((resolve) => setTimeout(() => resolve(1), 60)) },
      ],
      2,
      { minMs: 0, maxRounds: 1 },
    );
    expect(busy.cpuMs).toBeGreaterThan(10);
    expect(idle.cpuMs).toBeLessThan(0.5 * idle.medianMs);
    expect(busy.cpuMs).toBeGreaterThan(idle.cpuMs);
    if (busy.threadCpuMs !== null) expect(busy.threadCpuMs.main).toBeGreaterThan(0);
  });

  it("gives each round's ratio of a case to its baseline", () => {
    const base = { events: 1000, runsMs: [100, 200, 100] };
    const row = { events: 1000, runsMs: [200, 200, 50] };
    expect(ratiosByRound(row, base)).toEqual([0.5, 1, 2]);
    expect(ratiosByRound({ events: 500, runsMs: [100] }, { events: 1000, runsMs: [100] })).toEqual([0.5]);
    expect(ratiosByRound(row, { events: 1000, runsMs: [100] })).toBeNull();
  });

  it('groups a case with its baseline and the cases measured against either', () => {
    const cases = [
      { name: 'engine' },
      { name: 'raw' },
      { name: 'record', baseline: 'raw' },
      { name: 'naive' },
      { name: 'replay', baseline: 'naive' },
      { name: 'model', baseline: 'replay' },
      { name: 'alone' },
      { name: 'orphan', baseline: 'not-selected' },
      { name: 'workers', baseline: 'replay' },
    ];
    expect(caseGroups(cases).map((g) => g.map((c) => c.name))).toEqual([['engine'], ['raw', 'record'], ['naive', 'replay', 'model', 'workers'], ['alone'], ['orphan']]);
  });
});

describe('bench CPU by thread', () => {
  it('puts the main thread first, the others most first, and what ended threads used', () => {
    // CPU time each thread used over 3 runs: per run, main 200, thread 11 300, 12 3.3 (left
    // out, below 5), 13 100; the process used 2,100 ms, so 100 ms a run went to threads that
    // are gone.
    const used = new Map([
      [process.pid, 600],
      [11, 900],
      [12, 10],
      [13, 300],
    ]);
    const shares = threadShares(used, 2100, 3);
    expect(shares.main).toBeCloseTo(200, 6);
    expect(shares.others.map((ms) => Math.round(ms))).toEqual([300, 100]);
    expect(shares.ended).toBeCloseTo(100 - 10 / 3, 6);
    // A few ticks unaccounted for are /proc's rounding, not a thread.
    expect(threadShares(used, 1800 + 10 + 30, 3).ended).toBe(0);
  });

  it("reads this process's threads on Linux, with the main thread among them", () => {
    const threads = threadCpuMs();
    if (process.platform !== 'linux') {
      expect(threads).toBeNull();
      return;
    }
    expect(threads).not.toBeNull();
    expect(threads!.has(process.pid)).toBe(true);
    const total = [...threads!.values()].reduce((a, b) => a + b, 0);
    // The live threads' ticks are part of the process's CPU time (which also holds that of
    // threads that have ended), within /proc's rounding: at most 10 ms a thread.
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(processCpuMs() + 10 * threads!.size);
  });
});
