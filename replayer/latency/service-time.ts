// Service time per event for the latency model: measured around the engine call, or drawn from
// a model with the seeded generator (pure-rand's xoroshiro128+), so that a report made with a
// model is the same, byte for byte, for the same seed. Specs:
//
//   measured                 the engine call, timed with the high-resolution clock
//   fixed:20us               every event takes exactly that long (M/D/1 with Poisson arrivals)
//   exp:20us                 exponential with that mean (M/M/1)
//   lognormal:20us,0.5       log-normal with that median and shape sigma (the log's standard deviation)
//   empirical:FILE           the distribution saved by an earlier run (--save-service-times FILE)
//
// Units: ns, us (or µs), ms, s.

import { readFileSync } from 'node:fs';
import { writePrivateFile } from '../../tape/private.js';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { TapedeckError } from '../../engine/errors.js';
import { parseDurationUs } from './units.js';

export type ServiceTimeSpec =
  | { readonly kind: 'measured'; readonly text: string }
  | { readonly kind: 'fixed'; readonly text: string; readonly us: number }
  | { readonly kind: 'exp'; readonly text: string; readonly meanUs: number }
  | { readonly kind: 'lognormal'; readonly text: string; readonly medianUs: number; readonly sigma: number }
  | { readonly kind: 'empirical'; readonly text: string; readonly path: string; readonly table: EmpiricalServiceTimes };

/** What --save-service-times writes and empirical:FILE reads. */
export interface EmpiricalServiceTimes {
  readonly format: 'tapedeck-service-times';
  readonly version: 1;
  /** Events the distribution was measured on. */
  readonly events: number;
  readonly meanUs: number;
  /** [percentile 0..100, service time in µs], increasing in both; the first is the minimum, the last (100) the maximum. */
  readonly quantilesUs: readonly (readonly [number, number])[];
  /** Where it came from (tape, engine), for people. */
  readonly source?: string;
}

export const SERVICE_TIME_HELP = 'measured | fixed:20us | exp:20us | lognormal:MEDIAN,SIGMA (e.g. lognormal:20us,0.5) | empirical:FILE';

export function parseServiceTime(text: string): ServiceTimeSpec {
  const what = `--service-time ${text}`;
  if (text === 'measured') return { kind: 'measured', text };
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const arg = colon < 0 ? '' : text.slice(colon + 1);
  switch (kind) {
    case 'fixed':
      return { kind, text, us: parseDurationUs(arg, what) };
    case 'exp':
      return { kind, text, meanUs: parseDurationUs(arg, what) };
    case 'lognormal': {
      const [median, sigmaText] = arg.split(',');
      const sigma = Number(sigmaText);
      if (sigmaText === undefined || !Number.isFinite(sigma) || sigma <= 0) {
        throw new TapedeckError('E_USAGE', `${what}: give the median and the shape, e.g. lognormal:20us,0.5 (sigma must be a positive number)`);
      }
      return { kind, text, medianUs: parseDurationUs(median, what), sigma };
    }
    case 'empirical': {
      if (arg === '') throw new TapedeckError('E_USAGE', `${what}: give the file an earlier run saved with --save-service-times, e.g. empirical:service-times.json`);
      return { kind, text, path: arg, table: readEmpirical(arg) };
    }
    default:
      throw new TapedeckError('E_USAGE', `--service-time must be one of ${SERVICE_TIME_HELP}; got "${text}"`);
  }
}

function readEmpirical(path: string): EmpiricalServiceTimes {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new TapedeckError('E_USAGE', `empirical:${path}: cannot read the service-time file: ${(error as Error).message}`);
  }
  const t = parsed as Partial<EmpiricalServiceTimes>;
  const q = t.quantilesUs;
  const bad = (why: string) => new TapedeckError('E_USAGE', `empirical:${path}: not a service-time file written by --save-service-times (${why})`);
  if (t.format !== 'tapedeck-service-times' || t.version !== 1) throw bad('format or version');
  if (!Array.isArray(q) || q.length < 2) throw bad('quantilesUs needs at least two points');
  for (let i = 0; i < q.length; i++) {
    const [p, us] = q[i] as [unknown, unknown];
    if (typeof p !== 'number' || typeof us !== 'number' || !(us >= 0) || p < 0 || p > 100) throw bad(`point ${i} is not [percentile, µs]`);
    if (i > 0 && (p <= q[i - 1][0] || us < q[i - 1][1])) throw bad(`point ${i} does not increase`);
  }
  if (q[0][0] !== 0 || q[q.length - 1][0] !== 100) throw bad('the percentiles must run from 0 to 100');
  return t as EmpiricalServiceTimes;
}

/** The percentiles an empirical file keeps: fine in the tail, where the queue is sensitive. */
export function empiricalPercentiles(): number[] {
  const ps: number[] = [];
  for (let p = 0; p < 90; p += 1) ps.push(p);
  for (let p = 900; p < 990; p += 1) ps.push(p / 10);
  for (let p = 9900; p < 9990; p += 2) ps.push(p / 100);
  for (let p = 99900; p < 99990; p += 5) ps.push(p / 1000);
  for (let p = 999900; p < 1000000; p += 10) ps.push(p / 10000);
  ps.push(100);
  return ps;
}

export function writeEmpirical(path: string, table: EmpiricalServiceTimes): void {
  writePrivateFile(path, `${JSON.stringify(table)}\n`);
}

/** Draws service times (µs). `measured` has none: the replayer passes the measured value. */
export interface ServiceTimeSampler {
  next(): number;
  /** The next n draws into out[0..n). */
  fill(out: Float64Array, n: number): void;
}

function withFill(next: () => number): ServiceTimeSampler {
  return {
    next,
    fill: (out, n) => {
      for (let i = 0; i < n; i++) out[i] = next();
    },
  };
}

const TWO_POW_M53 = 2 ** -53;

/** Uniform doubles in (0, 1) with 53 random bits from xoroshiro128+. */
class Uniform {
  private readonly g;
  constructor(seed: number) {
    this.g = xoroshiro128plus(seed | 0);
  }
  next(): number {
    const hi = this.g.next() >>> 5;
    const lo = this.g.next() >>> 6;
    return (hi * 67108864 + lo + 0.5) * TWO_POW_M53;
  }
  /** n uniforms into out, in the order next() would give them. */
  fill(out: Float64Array, n: number): void {
    const g = this.g;
    for (let i = 0; i < n; i++) {
      const hi = g.next() >>> 5;
      const lo = g.next() >>> 6;
      out[i] = (hi * 67108864 + lo + 0.5) * TWO_POW_M53;
    }
  }
}

/** The mean service time of a model, µs (for the model's capacity); null for measured times. */
export function meanServiceUs(spec: ServiceTimeSpec): number | null {
  switch (spec.kind) {
    case 'measured':
      return null;
    case 'fixed':
      return spec.us;
    case 'exp':
      return spec.meanUs;
    case 'lognormal':
      return spec.medianUs * Math.exp((spec.sigma * spec.sigma) / 2);
    case 'empirical':
      return spec.table.meanUs;
  }
}

export function samplerFor(spec: ServiceTimeSpec, seed: number): ServiceTimeSampler | null {
  switch (spec.kind) {
    case 'measured':
      return null;
    case 'fixed': {
      const us = spec.us;
      return { next: () => us, fill: (out, n) => out.fill(us, 0, n) };
    }
    case 'exp': {
      const u = new Uniform(seed);
      const mean = spec.meanUs;
      return {
        next: () => -mean * Math.log(u.next()),
        fill: (out, n) => {
          u.fill(out, n);
          for (let i = 0; i < n; i++) out[i] = -mean * Math.log(out[i]);
        },
      };
    }
    case 'lognormal': {
      // Box-Muller: two uniforms give two independent normals; the second is kept for the next draw.
      const u = new Uniform(seed);
      const { medianUs, sigma } = spec;
      let spare = Number.NaN;
      return withFill(() => {
          let z = spare;
          if (Number.isNaN(z)) {
            const r = Math.sqrt(-2 * Math.log(u.next()));
            const a = 2 * Math.PI * u.next();
            z = r * Math.cos(a);
            spare = r * Math.sin(a);
          } else spare = Number.NaN;
          return medianUs * Math.exp(sigma * z);
        });
    }
    case 'empirical': {
      // Inverse transform: a uniform percentile, interpolated linearly between the stored points.
      const u = new Uniform(seed);
      const q = spec.table.quantilesUs;
      const ps = Float64Array.from(q, (x) => x[0]);
      const vs = Float64Array.from(q, (x) => x[1]);
      return withFill(() => {
          const p = u.next() * 100;
          let lo = 0;
          let hi = ps.length - 1;
          while (hi - lo > 1) {
            const mid = (lo + hi) >> 1;
            if (ps[mid] <= p) lo = mid;
            else hi = mid;
          }
          return vs[lo] + ((vs[hi] - vs[lo]) * (p - ps[lo])) / (ps[hi] - ps[lo]);
        });
    }
  }
}
