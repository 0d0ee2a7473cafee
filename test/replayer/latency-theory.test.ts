// The latency model against queueing theory, on 1,000,000 Poisson arrivals recorded into a tape
// (the synthetic generator's steady profile: exponential gaps, 1,000 events/s, µs stamps).
// Service times are drawn from the seeded generator, so each figure below is deterministic; the
// tolerances are the (3% for means, 5% for probabilities), well above the ~1% sampling
// spread seen across seeds at these loads.

import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rehearseTape } from '../../replayer/rehearse.js';
import { parseServiceTime } from '../../replayer/latency/service-time.js';
import { tapedeck, tempDir } from '../support/cli.js';

const EVENTS = 1_000_000;
const LAMBDA = 1000; // arrivals per second at 1x
let tape = '';

beforeAll(() => {
  tape = join(tempDir(), 'poisson.tape');
  const r = tapedeck(['record', '--out', tape, '--events', String(EVENTS), '--rate', String(LAMBDA), '--profile', 'steady', '--seed', '11', '--players', '1000']);
  expect(r.status, r.stderr).toBe(0);
});

/** One rehearsal, its rows by speed. */
function rows(serviceTime: string, speeds: number[], extra: { queueCapacity?: number; whenFull?: 'block' | 'drop' } = {}) {
  const result = rehearseTape(tape, { serviceTime: parseServiceTime(serviceTime), seed: 42, speeds, refine: false, ...extra });
  expect(result.replay.ok).toBe(true);
  for (const row of result.report.rows) expect(row.events).toBe(EVENTS);
  return result.report.rows;
}

const within = (actual: number, expected: number, tolerance: number, what: string): void => {
  const error = Math.abs(actual / expected - 1);
  expect(error, `${what}: model ${actual}, theory ${expected}, relative error ${(error * 100).toFixed(2)}%`).toBeLessThanOrEqual(tolerance);
};

describe('latency model against queueing theory (1,000,000 events each)', () => {
  it('M/M/1: mean time in system is 1/(mu - lambda), within 3%', () => {
    // Mean service 500 µs: mu = 2000/s. Speeds 1 and 1.6 give rho 0.5 and 0.8.
    for (const row of rows('exp:500us', [1, 1.6])) {
      const lambda = LAMBDA * row.speed;
      within(row.latencyMs.mean, 1000 / (2000 - lambda), 0.03, `M/M/1 rho ${lambda / 2000}`);
      expect(row.dropped).toBe(0);
    }
  });

  it('M/D/1: mean waiting time follows Pollaczek-Khinchine, rho S / (2 (1 - rho)), within 3%', () => {
    for (const row of rows('fixed:500us', [1, 1.6])) {
      const rho = (LAMBDA * row.speed * 500) / 1e6;
      within(row.meanWaitMs, (rho * 0.5) / (2 * (1 - rho)), 0.03, `M/D/1 rho ${rho}`);
      expect(row.meanServiceMs).toBe(0.5);
    }
  });

  it('M/M/1/K with --when-full drop: the fraction dropped is the blocking probability, within 5%', () => {
    // 4 channel slots + the event in service: K = 5. rho 0.8.
    const [row] = rows('exp:800us', [1], { queueCapacity: 4, whenFull: 'drop' });
    const rho = 0.8;
    const K = 5;
    const blocking = ((1 - rho) * rho ** K) / (1 - rho ** (K + 1));
    within(row.dropped / row.events, blocking, 0.05, 'M/M/1/5 blocking probability');
    expect(row.served + row.dropped).toBe(row.events);
    expect(row.maxQueueDepth).toBe(4);
  });

  it('backpressure: the fraction of arrivals finding K or more in the system is the M/M/1 tail rho^K, within 5%', () => {
    // The queue is full (4 waiting + 1 in service) exactly when an arrival finds K = 5 or more
    // in the system; with backpressure it waits, so departures are those of the unbounded queue.
    const [blocked, unbounded] = [rows('exp:800us', [1], { queueCapacity: 4 })[0], rows('exp:800us', [1])[0]];
    within(blocked.blockedEvents / blocked.events, 0.8 ** 5, 0.05, 'P(N >= 5) for M/M/1 at rho 0.8');
    expect(blocked.dropped).toBe(0);
    expect(blocked.blockedMs).toBeGreaterThan(0);
    // Backpressure moves the wait from the queue to the consumer, without changing latencies.
    expect(blocked.latencyMs).toEqual(unbounded.latencyMs);
    expect(unbounded.blockedEvents).toBe(0);
  });
});
