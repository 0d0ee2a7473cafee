// `tapedeck bisect`: two engine builds side by side on one tape; the first event where their
// digests differ, and how their states differ there.

import { Command } from 'commander';
import { TapeReader } from '../../tape/reader.js';
import { lockstep } from '../../replayer/bisect.js';
import { printDivergence } from '../divergence.js';
import { EXIT } from '../exit.js';
import { loadEngine } from '../../tape/load-engine.js';
import { fmt, fmtSeconds, line, printJson, count } from '../output.js';
import { nonNegativeInt } from '../parse.js';

interface BisectFlags {
  engine: string;
  against: string;
  from?: number;
  json?: boolean;
}

export function bisectCommand(): Command {
  return new Command('bisect')
    .summary('run two engine builds side by side on a tape and name the first event where they differ')
    .description(
      "Applies the tape's events to both engines in lockstep, comparing their digests after every event, and reports " +
        "the first event after which they differ, with the difference of the two states there (from the engines' " +
        'view()). The regression check to run on every engine change. Exit 0 when they agree throughout, 1 when they ' +
        'differ, 2 on a usage or input error. The engines must share a snapshot format and digest algorithm (two builds ' +
        'of one engine do).',
    )
    .argument('<tape>', 'the tape to run')
    .requiredOption('--engine <name|path>', 'the reference build (e.g. the released engine)')
    .requiredOption('--against <name|path>', 'the build to compare with it')
    .option('--from <seq>', 'start at the last snapshot at or before this event', nonNegativeInt('--from'))
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (tape: string, flags: BisectFlags) => {
      const expected = await loadEngine(flags.engine);
      const actual = await loadEngine(flags.against);
      const reader = TapeReader.open(tape);
      const started = performance.now();
      let result;
      try {
        result = lockstep(reader, expected, actual, flags.from ?? 0);
      } finally {
        reader.close();
      }
      const elapsedMs = performance.now() - started;
      const report = {
        ok: result.divergence === null,
        tape,
        engine: { name: expected.name, version: expected.version },
        against: { name: actual.name, version: actual.version },
        fromSeq: result.fromSeq,
        eventsCompared: result.eventsCompared,
        firstDivergentSeq: result.divergence?.seq ?? null,
        divergence: result.divergence,
        elapsedMs,
      };
      if (flags.json) {
        printJson(report);
      } else {
        line(`bisect ${tape}: ${expected.name} ${expected.version} (--engine) against ${actual.name} ${actual.version} (--against)`);
        line(`  compared ${count(result.eventsCompared, 'event')} from event ${fmt(result.fromSeq)} in ${fmtSeconds(elapsedMs)}`);
        if (result.divergence === null) line('OK: the two engines agree after every event');
        else {
          printDivergence(result.divergence, '--engine', '--against');
          line(`DIFFER: first at event ${result.divergence.seq}`);
        }
      }
      process.exitCode = report.ok ? EXIT.ok : EXIT.checkFailed;
    });
}
