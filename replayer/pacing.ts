// Paced replays (--speed K, for `replay` and `replay --to-kafka`): how long following a range
// of a tape's recorded time at K times its pace takes, told before it starts, and the refusal
// of a speed so low that the replay would not end in practice (`--speed 1e-9`, a typo for 1e9,
// would otherwise sleep for years without a word).

import { TapedeckError } from '../engine/errors.js';
import type { TapeReader } from '../tape/reader.js';

const YEAR_MS = 365.25 * 86_400_000;

/** A paced replay that would take longer than a year is refused. */
export const MAX_PACED_MS = YEAR_MS;

export interface PacedPlan {
  /** The multiple of the recorded pace. */
  readonly speed: number;
  /** The recorded time the range spans (µs; to the block: see TapeReader.timeSpanUs). */
  readonly recordedUs: number;
  /** How long following it at `speed` takes (ms of wall-clock time), besides the work itself. */
  readonly pacedMs: number;
}

/**
 * The plan of a paced replay of events `fromSeq` to `toSeq` of the tape `reader` reads, at
 * `speed`; an E_USAGE error when it would take longer than MAX_PACED_MS.
 */
export function pacedPlan(reader: TapeReader, fromSeq: number, toSeq: number, speed: number): PacedPlan {
  const recordedUs = toSeq < fromSeq ? 0 : reader.timeSpanUs(fromSeq, toSeq);
  const pacedMs = recordedUs / 1000 / speed;
  if (!(pacedMs <= MAX_PACED_MS)) {
    throw new TapedeckError(
      'E_USAGE',
      `--speed ${speed}: the ${formatDurationMs(recordedUs / 1000)} of recorded time in events ${fromSeq.toLocaleString('en-US')} to ${toSeq.toLocaleString('en-US')} of ${reader.path} ` +
        `would take ${formatDurationMs(pacedMs)} to replay at ${speed} times their pace; give a larger --speed (1 follows the recorded pace, 2 is twice as fast), or max`,
    );
  }
  return { speed, recordedUs, pacedMs };
}

/** The speed a library caller gave (default max), or E_USAGE for one that is not max or a positive finite number. */
export function checkedSpeed(speed: number | 'max' | undefined): number | 'max' {
  const value = speed ?? 'max';
  if (value !== 'max' && !(value > 0 && Number.isFinite(value))) throw new TapedeckError('E_USAGE', `--speed must be "max" or a positive number, got ${value}`);
  return value;
}

/**
 * Before a replay of events `fromSeq` to `toSeq` at `speed`: for a speed K, its plan
 * (pacedPlan, which refuses one that would take years, whether or not anyone is told), given to
 * `onPaced`; nothing at max.
 */
export function planPacing(reader: TapeReader, fromSeq: number, toSeq: number, speed: number | 'max', onPaced: ((plan: PacedPlan) => void) | undefined): void {
  if (speed === 'max') return;
  const plan = pacedPlan(reader, fromSeq, toSeq, speed);
  onPaced?.(plan);
}

const UNITS: readonly (readonly [number, string])[] = [
  [YEAR_MS, 'years'],
  [86_400_000, 'days'],
  [3_600_000, 'h'],
  [60_000, 'min'],
  [1000, 's'],
];

/** A duration for people, in its largest unit: "39.0 s", "5.5 min", "2.0 h", "12.3 days", "4.2e+291 years". */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'for ever';
  for (const [size, unit] of UNITS) {
    if (ms >= size) {
      const n = ms / size;
      return `${n >= 1e6 ? n.toExponential(1) : n.toFixed(1)} ${unit}`;
    }
  }
  return `${ms.toFixed(0)} ms`;
}
