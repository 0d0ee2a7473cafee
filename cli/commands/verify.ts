// `tapedeck verify`: check a tape end to end and report every damaged block.

import { Command } from 'commander';
import { verifyTape } from '../../tape/verify.js';
import { EXIT } from '../exit.js';
import { count, line, printJson, progress } from '../output.js';

export function verifyCommand(): Command {
  return new Command('verify')
    .summary('check every block checksum, sequence continuity, indexes and SQLite integrity')
    .description(
      "Checks the whole tape: each event block's checksum and structure, that sequence numbers continue without gaps, " +
        'that the position index matches the events, the checksums of checkpoints, snapshots, rejects and source ' +
        "positions, and SQLite's integrity check. Reports every problem found, naming each damaged block and its " +
        'events. Exit 0 when the tape is sound, 1 when it is damaged, 2 when the file does not exist.',
    )
    .argument('<tape>', 'the tape to verify')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((tape: string, flags: { json?: boolean }) => {
      const bar = progress('verifying');
      let report;
      try {
        report = verifyTape(tape, { onProgress: (done, total) => bar.update(done, total) });
      } finally {
        bar.stop();
      }
      if (flags.json) {
        printJson(report);
      } else {
        line(`${tape}: ${count(report.events, 'event')} in ${count(report.blocks, 'block')}, ${count(report.blocksChecked, 'block')} sound`);
        for (const b of report.damagedBlocks) line(`  DAMAGED block ${b.blockNo} (events ${b.firstSeq === null ? 'unknown' : `${b.firstSeq}..${b.lastSeq}`}): ${b.problem}`);
        for (const p of report.problems) line(`  PROBLEM ${p}`);
        line(report.ok ? 'OK: the tape is sound' : `DAMAGED: ${report.damagedBlocks.length} damaged blocks, ${report.problems.length} other problems`);
      }
      process.exitCode = report.ok ? EXIT.ok : EXIT.checkFailed;
    });
}
