// `tapedeck simulate`: property-based testing of an engine with fast-check streams and
// transport faults; a falsified property becomes a shrunk tape that `tapedeck replay` reproduces.

import { Command } from 'commander';
import { TapedeckError } from '../../engine/errors.js';
import { BUDGET_KEYS, budgetLabel } from '../../replayer/latency/budget.js';
import { DEFAULT_QUEUE_CAPACITY } from '../../replayer/latency/model.js';
import { parseServiceTime } from '../../replayer/latency/service-time.js';
import { loadEngine } from '../../tape/load-engine.js';
import { DEFAULT_MAX_EVENTS, DEFAULT_MAX_FAULTS, DEFAULT_RUNS, FAULT_KINDS, PROPERTY_NAMES, type FaultKind, type PropertyName } from '../../simulator/options.js';
import type { SimulateOptions, SimulateResult } from '../../simulator/simulate.js';
import { EXIT } from '../exit.js';
import { budgetFrom, type LatencyFlags } from '../latency.js';
import { fmt, fmtSeconds, line, printJson, count } from '../output.js';
import { nonNegativeInt, positiveInt } from '../parse.js';

interface SimulateFlags extends Pick<LatencyFlags, 'serviceTime' | 'budget' | 'p50' | 'p95' | 'p99' | 'p999' | 'max' | 'mean' | 'queueCapacity'> {
  engine: string;
  seed?: number;
  runs: number;
  faults?: FaultKind[];
  properties?: PropertyName[];
  maxEvents?: number;
  maxFaults?: number;
  path?: string;
  out: string;
  fromTape?: string;
  fromTapeEvents?: number;
  twoProcesses: boolean;
  digestsOnly?: number;
  json?: boolean;
}

function listOf<T extends string>(name: string, allowed: readonly T[]): (value: string) => T[] {
  return (value) => {
    const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'none');
    for (const item of items) {
      if (!(allowed as readonly string[]).includes(item)) throw new TapedeckError('E_USAGE', `${name}: unknown "${item}"; choose from ${allowed.join(', ')}`);
    }
    return items as T[];
  };
}

export function simulateCommand(): Command {
  return new Command('simulate')
    .summary('property-based testing of an engine: generated streams, transport faults, shrunk counterexamples as tapes')
    .description(
      'Generates event streams with fast-check (the engine\'s `simulation.events` arbitrary; built in for world), applies ' +
        'transport faults, and checks properties on every run. On a failure, fast-check shrinks it to a minimal stream ' +
        'and fault list, which is written as a tape in --out; the report prints the seed and path and two commands: ' +
        're-run this exact case, and replay the tape. Exit 0 when every property held in every run, 1 when one was ' +
        'falsified, 2 on usage errors.\n\n' +
        'Faults: dup (a record delivered again later), drop, reorder (partitions re-interleaved, or a bounded swap within ' +
        'a partition), delay (late timestamps, bursts), skew (one partition\'s clock off), rebalance (a partition re-read ' +
        'from an earlier offset).\n' +
        'Properties: determinism (same stream, same digest; also compared with a second process), snapshot ' +
        '(snapshot/restore anywhere changes nothing), invariants (after every event), idempotence, convergence and transient-events (for ' +
        'engines that claim them: `simulation.idempotent`, `simulation.convergent`, `transientEvents`), latency (with --service-time and a budget).',
    )
    .option('--engine <name|path>', 'engine to test: built-in name or module path', 'world')
    .option('--seed <n>', 'fast-check seed [default: drawn, and printed]', nonNegativeInt('--seed'))
    .option('--runs <n>', 'streams to try', positiveInt('--runs'), DEFAULT_RUNS)
    .option('--faults <list>', `comma-separated: ${FAULT_KINDS.join(', ')} [default: none]`, listOf('--faults', FAULT_KINDS))
    .option('--properties <list>', `comma-separated: ${PROPERTY_NAMES.join(', ')} [default: determinism, snapshot, invariants, and what the engine claims]`, listOf('--properties', PROPERTY_NAMES))
    .option('--max-events <n>', `longest generated stream [default: ${DEFAULT_MAX_EVENTS}]`, positiveInt('--max-events'))
    .option('--max-faults <n>', `most faults per stream [default: ${DEFAULT_MAX_FAULTS}]`, nonNegativeInt('--max-faults'))
    .option('--path <path>', "fast-check's path of a counterexample (printed with it): re-run exactly that case")
    .option('--out <dir>', 'where the counterexample tape is written', 'simulate-out')
    .option('--from-tape <file>', 'mutate windows of a recorded tape with the faults instead of generating streams')
    .option('--from-tape-events <n>', 'with --from-tape: read at most this many of its first events [default: 10000]', positiveInt('--from-tape-events'))
    .option('--service-time <spec>', 'for the latency property: a service-time model (fixed:20us, exp:20us, lognormal:20us,0.5, empirical:FILE)')
    .option('--queue-capacity <n>', `for the latency property: channel slots [default: ${DEFAULT_QUEUE_CAPACITY}]`, nonNegativeInt('--queue-capacity'))
    .option('--budget <file>', 'for the latency property: budget JSON, e.g. {"p99": 8.2}')
    .option('--p50 <limit>', 'for the latency property: p50 budget, e.g. 1.6ms (a bare number is ms)')
    .option('--p95 <limit>', 'for the latency property: p95 budget')
    .option('--p99 <limit>', 'for the latency property: p99 budget')
    .option('--p999 <limit>', 'for the latency property: p99.9 budget')
    .option('--max <limit>', 'for the latency property: budget for the largest latency')
    .option('--mean <limit>', 'for the latency property: budget for the mean latency')
    .option('--no-two-processes', 'skip comparing digests with a second process')
    .addOption(new Command().createOption('--digests-only <n>', 'internal: print the final digests of the first N sampled streams (the second process)').argParser(positiveInt('--digests-only')).hideHelp())
    .option('--json', 'print one JSON object as the last line of stdout')
    .addHelpText('after', '\nExample: npx tapedeck simulate --engine fixtures/engines/world-duplicate-spawn-bug.mjs --faults dup --seed 1')
    .action(async (flags: SimulateFlags) => {
      const engine = await loadEngine(flags.engine);
      const seed = flags.seed ?? (Date.now() ^ (process.pid << 8)) >>> 0;
      const budget = budgetFrom(flags);
      const wantsLatency = flags.properties?.includes('latency') ?? (flags.serviceTime !== undefined || budget !== undefined);
      let latency: SimulateOptions['latency'] = null;
      if (wantsLatency) {
        if (flags.serviceTime === undefined || budget === undefined) throw new TapedeckError('E_USAGE', 'the latency property needs --service-time MODEL and a budget (--budget FILE or --p99 8ms)');
        const serviceTime = parseServiceTime(flags.serviceTime);
        if (serviceTime.kind === 'measured') throw new TapedeckError('E_USAGE', 'simulate needs a model service time (fixed, exp, lognormal or empirical), not measured');
        latency = { serviceTime, seed, budget, queueCapacity: flags.queueCapacity ?? DEFAULT_QUEUE_CAPACITY, whenFull: 'block' };
      }
      const options: SimulateOptions = {
        engine,
        engineSpec: flags.engine,
        seed,
        runs: flags.runs,
        faults: flags.faults ?? [],
        properties: flags.properties,
        maxEvents: flags.maxEvents,
        maxFaults: flags.maxFaults,
        path: flags.path,
        outDir: flags.out,
        fromTape: flags.fromTape,
        fromTapeEvents: flags.fromTapeEvents,
        latency,
        twoProcesses: flags.twoProcesses,
      };
      // Loaded here, not with the CLI: it brings fast-check.
      const { sampleDigests, simulate } = await import('../../simulator/simulate.js');
      if (flags.digestsOnly !== undefined) {
        printJson(sampleDigests(options, flags.digestsOnly));
        return;
      }
      const result = await simulate(options);
      if (flags.json) printJson(result);
      else print(result, budget === undefined ? '' : BUDGET_KEYS.filter((k) => budget[k] !== undefined).map((k) => `${budgetLabel(k)} ${budget[k]} ms`).join(', '));
      process.exitCode = result.ok ? EXIT.ok : EXIT.checkFailed;
    });
}

function print(r: SimulateResult, budget: string): void {
  line(`simulated ${r.engine.name} ${r.engine.version}: seed ${r.seed}, ${count(r.runsDone, 'run')} of ${r.source}`);
  line(`  faults: ${r.faults.length === 0 ? 'none' : r.faults.join(', ')}; properties: ${r.properties.join(', ')}${budget === '' ? '' : ` (budget ${budget})`}`);
  line(`  ${count(r.eventsDelivered, 'event')} delivered (${fmt(r.eventsApplied)} applied across the properties) in ${fmtSeconds(r.elapsedMs)}: ${fmt(r.eventsPerSec)} delivered events/s`);
  if (r.twoProcesses !== null) line(`  determinism across processes: ${r.twoProcesses.ok ? 'the same' : 'DIFFERENT'} final digests for ${r.twoProcesses.compared} streams`);
  const f = r.failure;
  if (f === null) {
    line(`OK: every property held in all ${count(r.runsDone, 'run')}`);
    return;
  }
  line();
  line(`FALSIFIED ${f.property}: ${f.message}`);
  line(`  counterexample: ${f.events} events delivered${f.faults.length === 0 ? '' : `, faults: ${f.faults.join('; ')}`} (after ${f.shrinks} shrinks)`);
  line(`  seed ${f.seed}${f.path === null ? '' : `, path ${f.path}`}`);
  if (f.tape !== null) line(`  tape: ${f.tape}`);
  line('  re-run this exact case:');
  line(`    ${f.commands.rerun}`);
  if (f.commands.replay !== null) {
    line('  replay the tape:');
    line(`    ${f.commands.replay}`);
  }
  line('FAILED');
}
