// `tapedeck rehearse`: the tape's traffic at several multiples of its recorded rate, through the
// latency model, against a budget; the headroom, and the engine's measured capacity.

import { Command } from 'commander';
import { rehearseTape, DEFAULT_SPEEDS, type RehearseResult } from '../../replayer/rehearse.js';
import { writeEmpirical } from '../../replayer/latency/service-time.js';
import { formatUs } from '../../replayer/latency/units.js';
import { loadEngine } from '../../tape/load-engine.js';
import { EXIT } from '../exit.js';
import { engineFile } from '../files.js';
import { addLatencyOptions, latencyOptionsFrom, percentileCells, printTable, writeReport, type LatencyFlags } from '../latency.js';
import { fmt, fmtSeconds, line, printJson, progress, count } from '../output.js';
import { TapedeckError } from '../../engine/errors.js';

interface RehearseFlags extends LatencyFlags {
  speeds?: number[];
  engine?: string;
  refine: boolean;
  json?: boolean;
}

function speedList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim().replace(/x$/i, ''));
  const speeds = list.map(Number);
  if (list.length === 0 || speeds.some((s) => !(s > 0 && Number.isFinite(s)))) {
    throw new TapedeckError('E_USAGE', `--speeds must be a comma-separated list of positive multiples such as 1,1.5,2,2.5,3; got "${value}"`);
  }
  return speeds;
}

export function rehearseCommand(): Command {
  const command = new Command('rehearse')
    .summary('replay a tape at several multiples of its recorded rate in virtual time, against a latency budget')
    .description(
      'Verifies the tape with one full-speed replay (which also measures the engine: capacity = its throughput / the ' +
        "tape's recorded peak rate, and, with --service-time measured, each event's service time), then runs the latency " +
        'model at each speed: one row per speed with p50, p95, p99, p99.9, max, mean, the largest queue depth, time blocked ' +
        'and drops. With a budget, the headroom: the largest multiple within budget, refined between the last passing and ' +
        'the first failing speed. Exit 0 when the tape verified and the recorded rate (1x) is within budget, 1 otherwise, ' +
        '2 on usage or input errors. With a model service time the report (--report, and the rows of --json) is the same ' +
        'for the same seed, byte for byte.',
    )
    .argument('<tape>', 'the tape to rehearse')
    .option('--speeds <list>', `multiples of the recorded rate [default: ${DEFAULT_SPEEDS.join(',')}]`, speedList)
    .option('--engine <name|path>', 'engine to replay through [default: the engine named in the tape]')
    .option('--no-refine', 'report the tested speeds only; do not refine the headroom between them')
    .option('--json', 'print one JSON object as the last line of stdout');
  return addLatencyOptions(command)
    .addHelpText('after', '\nExample (the README\'s story): tapedeck rehearse story.tape --service-time lognormal:0.29us,0.8 --budget fixtures/budgets/story.json --speeds 1,1.1,1.25,1.5,2,3 --report rehearsal.html')
    .action(async (tape: string, flags: RehearseFlags) => {
      const options = latencyOptionsFrom(flags, [{ name: 'the tape being rehearsed', path: tape }, engineFile(flags.engine)]);
      const engine = flags.engine === undefined ? undefined : await loadEngine(flags.engine);
      const bar = progress('rehearsing');
      const result = rehearseTape(tape, {
        ...options,
        engine,
        speeds: flags.speeds ?? DEFAULT_SPEEDS,
        refine: flags.refine,
        onProgress: (_phase, done, total) => bar.update(done, total),
      });
      bar.stop();
      if (flags.saveServiceTimes !== undefined && result.serviceTimes !== undefined) writeEmpirical(flags.saveServiceTimes, result.serviceTimes);
      if (flags.report !== undefined) writeReport(flags.report, result.report);
      if (flags.json) printJson(result);
      else print(result, flags);
      process.exitCode = result.ok ? EXIT.ok : EXIT.checkFailed;
    });
}

function print(result: RehearseResult, flags: RehearseFlags): void {
  const r = result.report;
  const seed = r.seed === null ? '' : `, seed ${r.seed}`;
  line(`rehearsed ${r.tape}: ${count(r.events, 'event')} through ${r.engine.name} ${r.engine.version}`);
  line(`  recorded: mean ${fmt(r.recorded.meanRatePerSec)} events/s, peak ${fmt(r.recorded.peakRatePerSec)} events/s (${r.recorded.peakWindowMs} ms windows); timestamps tick ${formatUs(r.tickUs)}`);
  line(`  model: service time ${r.serviceTime}${seed}; queue ${fmt(r.queueCapacity)} slots, ${r.whenFull} when full`);
  const v = result.replay;
  line(
    `  full-speed replay: ${fmt(v.eventsPerSec)} events/s (${fmtSeconds(v.elapsedMs)}), ${fmt(v.checkpointsVerified)} of ${count(v.checkpointsTotal, 'checkpoint')} verified` +
      (v.ok ? '' : `, ${count(v.mismatches, 'mismatch', 'mismatches')}, ${count(v.invariantViolations, 'invariant violation')}: run tapedeck replay for the details`),
  );
  // Two figures that can differ widely: the rows model the engine calls alone (decoding is the
  // consumer's side of the channel), the whole replay also reads, decodes and checks.
  const server = result.serviceCapacity === null ? '' : `the ${r.modelCapacity === null ? "engine's measured" : "model's"} service times ${result.serviceCapacity}x the recorded peak (what the rows model); `;
  line(`  capacity: ${server}the whole full-speed replay ${result.measuredCapacity}x (reading, decoding and checkpoints too)`);
  line();
  const budget = r.budgetLimits !== null;
  printTable(
    ['speed', 'p50 ms', 'p95 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'mean ms', 'queue max', 'blocked ms', 'dropped', ...(budget ? ['budget'] : [])],
    r.rows.map((row) => [
      `${row.speed}x`,
      ...percentileCells(row.latencyMs),
      fmt(row.maxQueueDepth),
      row.blockedMs.toFixed(1),
      fmt(row.dropped),
      ...(budget ? [row.withinBudget ? 'within' : `OVER (${row.budget.filter((c) => !c.ok).map((c) => c.percentile).join(', ')})`] : []),
    ]),
  );
  line();
  if (r.headroom !== null) line(`headroom: ${r.headroom.note}`);
  else line('headroom: give a budget (--budget FILE or --p99 8.2ms) to find the largest multiple within it');
  if (flags.report !== undefined) line(`report written to ${flags.report}`);
  line(result.ok ? 'OK' : 'FAILED');
}
