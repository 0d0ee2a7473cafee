// Durations for the latency model: a number with a unit, ns, us (or µs), ms or s; kept in
// microseconds, the unit of tape timestamps and of virtual time.

import { TapedeckError } from '../../engine/errors.js';

const US_PER_UNIT: Readonly<Record<string, number>> = { ns: 0.001, us: 1, µs: 1, ms: 1000, s: 1_000_000 };

/** "20us" -> 20, "8.2ms" -> 8200, "750ns" -> 0.75. Throws E_USAGE naming `what`. */
export function parseDurationUs(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(ns|us|µs|ms|s)\s*$/i.exec(text);
  if (m !== null) {
    const us = Number(m[1]) * US_PER_UNIT[m[2].toLowerCase()];
    if (Number.isFinite(us) && us > 0) return us;
  }
  throw new TapedeckError('E_USAGE', `${what} must be a positive duration with a unit (ns, us, ms or s), such as 20us or 8.2ms; got "${text}"`);
}

/** A duration for people: "20 µs", "8.20 ms", "1.25 s". */
export function formatUs(us: number): string {
  if (!Number.isFinite(us)) return String(us);
  const abs = Math.abs(us);
  if (abs >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (abs >= 1000) return `${(us / 1000).toPrecision(abs >= 100_000 ? 4 : 3)} ms`;
  if (abs >= 1) return `${us.toPrecision(3)} µs`;
  return `${(us * 1000).toPrecision(3)} ns`;
}

/** Milliseconds, rounded to the nanosecond, for JSON reports (stable text for equal inputs). */
export function roundMs(us: number): number {
  return Math.round(us * 1000) / 1_000_000;
}
