// The latency-model options `replay` and `rehearse` share, and how their figures are printed.

import { writePrivateFile } from '../tape/private.js';
import { extname } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { TapedeckError } from '../engine/errors.js';
import { BUDGET_KEYS, budgetLabel, parseBudget, readBudgetFile, type Budget, type BudgetCheck } from '../replayer/latency/budget.js';
import type { LatencyOptions } from '../replayer/latency/index.js';
import { DEFAULT_QUEUE_CAPACITY, WHEN_FULL, type LatencyPercentilesMs, type WhenFull } from '../replayer/latency/model.js';
import { parseServiceTime, SERVICE_TIME_HELP } from '../replayer/latency/service-time.js';
import { parseDurationUs } from '../replayer/latency/units.js';
import { renderHtmlReport, type ReportInput } from '../replayer/report-html.js';
import { refuseOutputsOverInputs, type NamedFile } from './files.js';
import { line } from './output.js';
import { nonNegativeInt, oneOf } from './parse.js';

export interface LatencyFlags {
  serviceTime?: string;
  seed?: number;
  queueCapacity?: number;
  whenFull?: WhenFull;
  tick?: string;
  budget?: string;
  p50?: string;
  p95?: string;
  p99?: string;
  p999?: string;
  max?: string;
  mean?: string;
  report?: string;
  saveServiceTimes?: string;
}

/** Flag names that turn the latency model on in `replay`. */
export const LATENCY_FLAGS = ['serviceTime', 'seed', 'queueCapacity', 'whenFull', 'tick', 'budget', 'p50', 'p95', 'p99', 'p999', 'max', 'mean', 'report', 'saveServiceTimes'] as const;

/** A budget limit as given on the command line: a bare number is milliseconds. */
function limitText(value: string): string {
  return /^\d+(\.\d+)?$/.test(value) ? `${value}ms` : value;
}

function limitFlag(name: string): (value: string) => string {
  return (value) => {
    try {
      parseDurationUs(limitText(value), name);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
    return value;
  };
}

export function addLatencyOptions(command: Command): Command {
  return command
    .option('--service-time <spec>', `service time per event: ${SERVICE_TIME_HELP} [default: measured]`)
    .option('--seed <n>', "seed of the service-time draws (model service times) [default: the tape's run seed]", nonNegativeInt('--seed'))
    .option('--queue-capacity <n>', `slots in the channel between consumer and engine (not counting the event being applied) [default: ${DEFAULT_QUEUE_CAPACITY}]`, nonNegativeInt('--queue-capacity'))
    .option('--when-full <mode>', 'an arrival that finds the queue full: block (backpressure; the wait counts in its latency) or drop (counted, no latency) [default: block]', oneOf('--when-full', WHEN_FULL))
    .option('--tick <duration>', "resolution of the tape's timestamps; events sharing one are spread evenly over it [default: decided from the tape: 1ms for Kafka stamps, else 1us]")
    .option('--budget <file>', 'latency budget, JSON: a limit per percentile in ms, e.g. {"p99": 8.2, "p99.9": 22}; exit 1 when one is exceeded')
    .option('--p50 <limit>', 'budget for p50 (e.g. 1.6ms; a bare number is ms)', limitFlag('--p50'))
    .option('--p95 <limit>', 'budget for p95', limitFlag('--p95'))
    .option('--p99 <limit>', 'budget for p99', limitFlag('--p99'))
    .option('--p999 <limit>', 'budget for p99.9', limitFlag('--p999'))
    .option('--max <limit>', 'budget for the largest latency', limitFlag('--max'))
    .option('--mean <limit>', 'budget for the mean latency', limitFlag('--mean'))
    .option('--report <file>', 'write the latency report: FILE.html (self-contained, with charts) or FILE.json; the same seed gives the same file')
    .option('--save-service-times <file>', 'save the distribution of measured service times, for --service-time empirical:FILE later');
}

export function budgetFrom(flags: LatencyFlags): Budget | undefined {
  let budget: Budget | undefined = flags.budget === undefined ? undefined : readBudgetFile(flags.budget);
  const fromFlags: Record<string, string> = {};
  for (const key of BUDGET_KEYS) {
    const value = flags[key];
    if (value !== undefined) fromFlags[key] = limitText(value);
  }
  if (Object.keys(fromFlags).length > 0) budget = { ...budget, ...parseBudget(fromFlags, 'budget flags') };
  return budget;
}

/** The latency options the flags give; `reads`: the command's other input files (the tape, an engine module), which its outputs must not replace. */
export function latencyOptionsFrom(flags: LatencyFlags, reads: readonly NamedFile[]): LatencyOptions {
  const empirical = flags.serviceTime?.startsWith('empirical:') === true ? flags.serviceTime.slice('empirical:'.length) : undefined;
  refuseOutputsOverInputs(
    [
      { name: '--report', path: flags.report },
      { name: '--save-service-times', path: flags.saveServiceTimes },
    ],
    [...reads, { name: 'the --budget file', path: flags.budget }, { name: 'the --service-time empirical file', path: empirical }],
  );
  const serviceTime = parseServiceTime(flags.serviceTime ?? 'measured');
  if (flags.saveServiceTimes !== undefined && serviceTime.kind !== 'measured') {
    throw new TapedeckError('E_USAGE', '--save-service-times saves measured service times; it cannot be combined with a model --service-time');
  }
  if (flags.report !== undefined && !['.html', '.json'].includes(extname(flags.report).toLowerCase())) {
    throw new TapedeckError('E_USAGE', `--report ${flags.report}: the file must end in .html or .json`);
  }
  return {
    serviceTime,
    seed: flags.seed,
    queueCapacity: flags.queueCapacity,
    whenFull: flags.whenFull,
    tickUs: flags.tick === undefined || flags.tick === 'auto' ? undefined : parseDurationUs(flags.tick, '--tick'),
    budget: budgetFrom(flags),
    keepServiceTimes: flags.saveServiceTimes !== undefined,
  };
}

/** Write the report file (owner-only: it describes production traffic). */
export function writeReport(path: string, input: ReportInput): void {
  const text = extname(path).toLowerCase() === '.html' ? renderHtmlReport(input) : `${JSON.stringify(input, null, 2)}\n`;
  writePrivateFile(path, text);
}

const ms = (x: number): string => (x >= 1000 ? x.toFixed(0) : x >= 100 ? x.toFixed(1) : x >= 10 ? x.toFixed(2) : x >= 0.01 ? x.toFixed(3) : x.toPrecision(2));

export function percentileCells(l: LatencyPercentilesMs): string[] {
  return [ms(l.p50), ms(l.p95), ms(l.p99), ms(l.p999), ms(l.max), ms(l.mean)];
}

export function printBudget(checks: readonly BudgetCheck[], indent = '  '): void {
  for (const c of checks) {
    const margin = c.ok ? `${ms(c.marginMs)} ms to spare` : `OVER by ${ms(-c.marginMs)} ms`;
    line(`${indent}${c.ok ? 'within' : 'OVER  '}  ${c.percentile.padEnd(5)} ${ms(c.actualMs).padStart(9)} ms  limit ${ms(c.limitMs)} ms  (${margin})`);
  }
}

/** Columns padded to their widest cell, first column left-aligned. */
export function printTable(header: string[], rows: string[][], indent = '  '): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmtRow = (r: string[]) => indent + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  line(fmtRow(header));
  for (const r of rows) line(fmtRow(r));
}

export { budgetLabel };
