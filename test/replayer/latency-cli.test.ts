// The latency model from the command line: budgets and exit codes, deterministic reports,
// timestamp ties, empirical service times, and the HTML report rendered in headless Chromium.

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, chromiumAvailable } from '../support/chromium.js';
import { tapedeck, tempDir } from '../support/cli.js';

let dir = '';
let tape = '';

interface LatencyJson {
  ok: boolean;
  latencyMs: { p50: number; p95: number; p99: number; p999: number; max: number; mean: number };
  latency: { tickUs: number; serviceTime: string; seed: number | null; budget: { percentile: string; ok: boolean; marginMs: number }[]; withinBudget: boolean; events: number };
}

beforeAll(() => {
  dir = tempDir();
  tape = join(dir, 't.tape');
  // 200,000 events at 500,000 events/s (the generator's default rate).
  expect(tapedeck(['record', '--out', tape, '--events', '200000', '--seed', '5']).status).toBe(0);
});

describe('replay with the latency model', () => {
  it('reports latencyMs and checks a budget: exit 0 within it, 1 over it, with the margin', () => {
    const within = tapedeck(['replay', tape, '--service-time', 'exp:1us', '--p99', '5ms', '--json']);
    expect(within.status, within.stderr).toBe(0);
    const a = within.json<LatencyJson>();
    expect(Object.keys(a.latencyMs)).toEqual(['p50', 'p95', 'p99', 'p999', 'max', 'mean']);
    expect(a.latencyMs.p50).toBeLessThanOrEqual(a.latencyMs.p99);
    expect(a.latency.budget).toEqual([{ percentile: 'p99', limitMs: 5, actualMs: a.latencyMs.p99, marginMs: expect.any(Number), ok: true }]);
    // A limit below the service time itself cannot hold.
    const budget = join(dir, 'budget.json');
    writeFileSync(budget, JSON.stringify({ p50: '100ns', 'p99.9': 1000 }));
    const over = tapedeck(['replay', tape, '--service-time', 'exp:1us', '--budget', budget]);
    expect(over.status).toBe(1);
    expect(over.stdout).toMatch(/OVER\s+p50 .* limit 0\.00010 ms\s+\(OVER by/);
    expect(over.stdout).toMatch(/within\s+p99\.9/);
    expect(over.stdout).toMatch(/FAILED/);
  });

  it('rejects bad latency options with exit 2, naming the option', () => {
    expect(tapedeck(['replay', tape, '--service-time', 'gauss:3us']).stderr).toMatch(/--service-time must be one of measured \| fixed/);
    expect(tapedeck(['replay', tape, '--service-time', 'exp:20']).stderr).toMatch(/positive duration with a unit/);
    expect(tapedeck(['replay', tape, '--p99', 'soon']).status).toBe(2);
    const bad = join(dir, 'bad-budget.json');
    writeFileSync(bad, '{"p98": 3}');
    const r = tapedeck(['replay', tape, '--budget', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown percentile "p98"/);
    const missing = tapedeck(['rehearse', tape, '--budget', join(dir, 'nope.json')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`error [E_USAGE]: --budget ${join(dir, 'nope.json')}: no such file`);
    expect(tapedeck(['replay', tape, '--service-time', 'empirical:/nonexistent.json']).stderr).toMatch(/cannot read the service-time file/);
  });

  it('gives byte-identical reports from two processes for the same seed, and a different one for another seed', () => {
    const run = (seed: string, name: string) => {
      const json = join(dir, `${name}.json`);
      const html = join(dir, `${name}.html`);
      const args = ['rehearse', tape, '--service-time', 'lognormal:1us,0.8', '--seed', seed, '--speeds', '1,2,3', '--p99', '0.05ms'];
      const a = tapedeck([...args, '--report', json, '--json']);
      expect(a.status, a.stderr).toBeLessThanOrEqual(1);
      expect(tapedeck([...args, '--report', html]).status).toBeLessThanOrEqual(1);
      return { json: readFileSync(json), html: readFileSync(html), report: JSON.stringify(a.json<{ report: unknown }>().report) };
    };
    const first = run('7', 'a');
    const second = run('7', 'b');
    expect(first.json.equals(second.json)).toBe(true);
    expect(first.html.equals(second.html)).toBe(true);
    expect(first.report).toBe(second.report);
    expect(run('8', 'c').json.equals(first.json)).toBe(false);
    expect(statSync(join(dir, 'a.html')).mode & 0o777).toBe(0o600);
  });

  it('spreads events that share a millisecond timestamp over the millisecond instead of treating them as a burst', () => {
    // 10 events per millisecond stamp: spread, they arrive every 100 µs and a 50 µs service never waits.
    const lines = tapedeck(['export', tape, '--format', 'ndjson', '--to', '19999']).stdout.trim().split('\n');
    const start = 1_767_225_600_000_000;
    const ndjson = join(dir, 'ms.ndjson');
    writeFileSync(ndjson, lines.map((l, i) => JSON.stringify({ ...JSON.parse(l), timestampUs: start + Math.floor(i / 10) * 1000 })).join('\n') + '\n');
    const msTape = join(dir, 'ms.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', ndjson, '--out', msTape]).status).toBe(0);
    const spread = tapedeck(['replay', msTape, '--service-time', 'fixed:50us', '--json']).json<LatencyJson>();
    expect(spread.latency.tickUs).toBe(1000);
    expect(spread.latencyMs).toEqual({ p50: expect.closeTo(0.05, 3), p95: expect.closeTo(0.05, 3), p99: expect.closeTo(0.05, 3), p999: expect.closeTo(0.05, 3), max: 0.05, mean: 0.05 });
    // Told the stamps are exact (--tick 1us), the ten arrive within a microsecond and queue
    // behind each other: the tenth waits for nine services.
    const burst = tapedeck(['replay', msTape, '--service-time', 'fixed:50us', '--tick', '1us', '--json']).json<LatencyJson>();
    expect(burst.latencyMs.max).toBeCloseTo(0.5, 2);
    expect(burst.latencyMs.mean).toBeCloseTo(0.275, 3);
  });

  it('saves measured service times and draws from them with empirical:FILE', () => {
    const saved = join(dir, 'service.json');
    const r = tapedeck(['replay', tape, '--save-service-times', saved]);
    expect(r.status, r.stderr).toBe(0);
    const table = JSON.parse(readFileSync(saved, 'utf8')) as { format: string; events: number; quantilesUs: [number, number][] };
    expect(table).toMatchObject({ format: 'tapedeck-service-times', events: 200_000 });
    expect(table.quantilesUs[0][0]).toBe(0);
    expect(table.quantilesUs.at(-1)![0]).toBe(100);
    const e = tapedeck(['replay', tape, '--service-time', `empirical:${saved}`, '--seed', '3', '--json']).json<LatencyJson>();
    expect(e.latency).toMatchObject({ serviceTime: `empirical:${saved}`, seed: 3, events: 200_000 });
    expect(tapedeck(['replay', tape, '--service-time', `empirical:${saved}`, '--seed', '3', '--json']).json<LatencyJson>().latencyMs).toEqual(e.latencyMs);
  });
});

describe('rehearse', () => {
  it('gives, at 1x, the figures replay gives with the same seed (the model on its own thread or not)', () => {
    const replay = tapedeck(['replay', tape, '--service-time', 'exp:1.5us', '--seed', '9', '--json']).json<{ latency: Record<string, unknown> }>().latency;
    const rows = tapedeck(['rehearse', tape, '--service-time', 'exp:1.5us', '--seed', '9', '--speeds', '1', '--json']).json<{ report: { rows: Record<string, unknown>[] } }>().report.rows;
    const { budget: _b, withinBudget: _w, serviceTime: _s, seed: _d, queueCapacity: _q, whenFull: _f, tickUs: _t, ...figures } = replay;
    expect(rows[0]).toMatchObject(figures);
    expect(figures.latencyMs).toEqual(rows[0].latencyMs);
  });

  it('with measured service times, gives the capacity the rows model from the engine calls the replay timed', () => {
    const saved = join(dir, 'rehearse-service.json');
    const r = tapedeck(['rehearse', tape, '--speeds', '1', '--save-service-times', saved, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = r.json<{ serviceCapacity: number; measuredCapacity: number; report: { modelCapacity: number | null; recorded: { peakRatePerSec: number } } }>();
    const { meanUs } = JSON.parse(readFileSync(saved, 'utf8')) as { meanUs: number };
    expect(out.report.modelCapacity).toBeNull();
    expect(out.serviceCapacity).toBeCloseTo(1e6 / meanUs / out.report.recorded.peakRatePerSec, 2);
    const human = tapedeck(['rehearse', tape, '--speeds', '1']).stdout;
    expect(human).toMatch(/capacity: the engine's measured service times \d+(\.\d+)?x the recorded peak \(what the rows model\); the whole full-speed replay \d+(\.\d+)?x/);
  });

  it('prints a row per speed, the refined headroom and the capacity; exit 0 when 1x is within budget', () => {
    const r = tapedeck(['rehearse', tape, '--service-time', 'exp:1.2us', '--speeds', '1,1.5,2', '--p99', '0.5ms', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = r.json<{ ok: boolean; measuredCapacity: number; serviceCapacity: number; report: { rows: { speed: number; withinBudget: boolean }[]; headroom: { speed: number; low: number; high: number }; recorded: { peakRatePerSec: number }; modelCapacity: number } }>();
    expect(out.report.rows.map((x) => x.speed)).toEqual([1, 1.5, 2]);
    expect(out.report.rows.map((x) => x.withinBudget)).toEqual([true, true, false]);
    const h = out.report.headroom;
    expect(h.speed).toBeGreaterThanOrEqual(1.5);
    expect(h.speed).toBeLessThan(2);
    expect((h.high - h.low) / h.low).toBeLessThanOrEqual(0.01);
    // 1 / 1.2 µs = 833,333 events/s against a peak near 500,000: the model saturates near 1.6x.
    expect(out.report.modelCapacity).toBeGreaterThan(1.4);
    expect(out.report.modelCapacity).toBeLessThan(1.8);
    expect(out.measuredCapacity).toBeGreaterThan(0);
    expect(out.serviceCapacity).toBe(out.report.modelCapacity);
    const human = tapedeck(['rehearse', tape, '--service-time', 'exp:1.2us', '--speeds', '1,1.5,2', '--p99', '0.5ms']).stdout;
    expect(human).toMatch(/speed\s+p50 ms\s+p95 ms\s+p99 ms\s+p99\.9 ms\s+max ms\s+mean ms\s+queue max\s+blocked ms\s+dropped\s+budget/);
    expect(human).toMatch(/2x .* OVER \(p99\)/);
    expect(human).toMatch(/headroom: within budget up to 1\.\d+x the recorded rate; over it at 1\.\d+x/);
    expect(human).toMatch(/capacity: the model's service times 1\.\d+x the recorded peak \(what the rows model\); the whole full-speed replay \d+(\.\d+)?x/);
  });

  it('exits 1 when the recorded rate itself is over budget', () => {
    const r = tapedeck(['rehearse', tape, '--service-time', 'fixed:5us', '--speeds', '1,2', '--p99', '1ms']);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/over budget already at the lowest tested speed \(1x\)/);
  });
});

describe('the HTML report', () => {
  it('renders every chart in headless Chromium, without network access', async (ctx) => {
    if (!chromiumAvailable()) return ctx.skip();
    const html = join(dir, 'report.html');
    const budget = join(dir, 'story-budget.json');
    writeFileSync(budget, JSON.stringify({ p50: 0.01, p99: 0.5, 'p99.9': 2 }));
    expect(tapedeck(['rehearse', tape, '--service-time', 'exp:1.2us', '--speeds', '0.5,1,1.5,2', '--budget', budget, '--report', html]).status).toBe(0);
    const browser = await chromium.launch({ executablePath: CHROMIUM!, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const network: string[] = [];
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:')) return route.continue();
        network.push(url);
        return route.abort();
      });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(pathToFileURL(html).href);
      // Browser-side code as strings: the test's TypeScript has no DOM types.
      await page.waitForFunction('window.tapedeckCharts?.length === 3', null, { timeout: 20_000 });
      const charts = (await page.evaluate('window.tapedeckCharts')) as { id: string; datasets: number; points: number }[];
      expect(charts.map((c) => c.id)).toEqual(['chart-percentiles', 'chart-distribution', 'chart-depth']);
      // Four percentile lines + three budget lines; four speeds in the others.
      expect(charts.map((c) => c.datasets)).toEqual([7, 4, 4]);
      // The share of each canvas's pixels that were painted.
      const inked = (await page.evaluate(`[...document.querySelectorAll('canvas')].map((c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          return n / (c.width * c.height);
        })`)) as number[];
      expect(inked).toHaveLength(3);
      for (const share of inked) expect(share).toBeGreaterThan(0.01);
      expect(await page.locator('tbody tr').count()).toBe(4);
      expect(errors).toEqual([]);
      expect(network).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
