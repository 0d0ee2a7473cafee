// `tapedeck replay`: replay a tape at full speed and verify every checkpoint.

import { Command } from 'commander';
import { replayTape } from '../../replayer/replay.js';
import { printDivergence } from '../divergence.js';
import { EXIT } from '../exit.js';
import { loadEngine } from '../load-engine.js';
import { fmt, fmtSeconds, line, printJson, progress } from '../output.js';
import { nonNegativeInt, positiveNumber, timeUs } from '../parse.js';

const speedValue = (value: string): number | 'max' => (value === 'max' ? 'max' : positiveNumber('--speed')(value));

interface ReplayFlags {
  engine?: string;
  from?: number;
  to?: number;
  fromTime?: number;
  toTime?: number;
  paranoid?: boolean;
  speed: number | 'max';
  json?: boolean;
}

export function replayCommand(): Command {
  return new Command('replay')
    .summary('replay a tape at full speed through an engine, verifying every checkpoint')
    .description(
      'Replays every event of the tape through the engine on the virtual clock, without sleeping, and compares the ' +
        "engine's state digest with each checkpoint recorded in the tape; invariants are checked at each checkpoint. " +
        'Exit 0 when all held, 1 on a digest mismatch or invariant violation, 2 when the tape cannot be read.',
    )
    .argument('<tape>', 'the tape to replay')
    .option('--engine <name|path>', 'engine to replay through [default: the engine named in the tape]')
    .option('--from <seq>', 'first event to replay; starts at the last snapshot before it (its digest checked) and fast-forwards', nonNegativeInt('--from'))
    .option('--to <seq>', 'last event to replay, included', nonNegativeInt('--to'))
    .option('--from-time <time>', 'first event at or after this time (µs since the epoch, or ISO 8601)', timeUs('--from-time'))
    .option('--to-time <time>', 'last event at or before this time', timeUs('--to-time'))
    .option('--speed <max|K>', 'max: never sleep (virtual time follows the recorded timestamps); K: paced, wall-clock time = recorded time / K', speedValue, 'max' as const)
    .option('--paranoid', "check the engine's invariants after every event, not only at checkpoints")
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (tape: string, flags: ReplayFlags) => {
      const engine = flags.engine === undefined ? undefined : await loadEngine(flags.engine);
      const bar = progress('replaying');
      const result = replayTape(tape, {
        engine,
        fromSeq: flags.from,
        toSeq: flags.to,
        fromTimeUs: flags.fromTime,
        toTimeUs: flags.toTime,
        paranoid: flags.paranoid === true,
        speed: flags.speed,
        onProgress: (done, total) => bar.update(done, total),
      });
      bar.stop();
      if (flags.json) {
        printJson(result);
      } else {
        const range = result.toSeq === null ? ' (empty range)' : result.fromSeq > 0 || flags.to !== undefined || flags.toTime !== undefined ? ` (events ${result.fromSeq}..${result.toSeq}, from the snapshot at ${result.startedAtSeq})` : '';
        line(`replayed ${fmt(result.events)} events${range} of ${result.tape} through ${result.engine.name} ${result.engine.version} (recorded with ${result.recordedWith.name} ${result.recordedWith.version})`);
        line(`  ${fmtSeconds(result.elapsedMs)}, ${fmt(result.eventsPerSec)} events/s, ${fmt(result.updatesEmitted)} updates emitted`);
        line(`  ${fmt(result.checkpointsVerified)} of ${fmt(result.checkpointsTotal)} checkpoints verified: ${fmt(result.mismatches)} mismatches, ${fmt(result.invariantViolations)} invariant violations`);
        for (const m of result.mismatchList.slice(0, 10)) line(`  MISMATCH  checkpoint after event ${m.nextSeq - 1}: recorded ${m.expected}, replayed ${m.actual}`);
        if (result.determinismViolation !== null) {
          const v = result.determinismViolation;
          line(`  NONDETERMINISTIC  engine code called ${v.api} while applying event ${v.seq}${v.event === null ? '' : `: ${JSON.stringify(v.event)}`}; the replay stopped there`);
          line('            engines must take time from ctx.nowUs and randomness from ctx.random');
        }
        if (result.divergence !== null) printDivergence(result.divergence, `${result.recordedWith.name} ${result.recordedWith.version}`, `${result.engine.name} ${result.engine.version}`);
        else if (result.divergenceNote !== null) line(`  NOTE      ${result.divergenceNote}`);
        for (const v of result.invariantViolationList.slice(0, 10)) {
          for (const x of v.violations.slice(0, 5)) line(`  VIOLATION after event ${v.nextSeq - 1}: ${x.code}: ${x.message}`);
        }
        line(result.ok ? 'OK' : 'FAILED');
      }
      process.exitCode = result.ok ? EXIT.ok : EXIT.checkFailed;
    });
}
