// `tapedeck merge`: join tapes into one (scale-out capture: several recorders in one consumer
// group, each with its own tape). See recorder/sources/merge.ts for the order and duplicates.

import { renameSync, rmSync } from 'node:fs';
import { syncFolderOf } from '../../tape/private.js';
import { Command } from 'commander';
import { TapedeckError } from '../../engine/errors.js';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_SNAPSHOT_EVERY, recordTape } from '../../recorder/record.js';
import { MergeSource } from '../../recorder/sources/merge.js';
import type { Source } from '../../recorder/source.js';
import { engineForTape } from '../../tape/load-engine.js';
import { TapeWriter } from '../../tape/writer.js';
import { EXIT, stopOnSignals } from '../exit.js';
import { fmt, fmtSeconds, line, noteWalMode, printJson, progress, count } from '../output.js';
import { positiveInt } from '../parse.js';

interface MergeFlags {
  out: string;
  engine?: string;
  force?: boolean;
  checkpointEvery: number;
  snapshotEvery: number;
  json?: boolean;
}

export function mergeCommand(): Command {
  return new Command('merge')
    .summary('join several tapes into one (captures by recorders that shared a consumer group)')
    .description(
      'Merges the events of the tapes by timestamp (ties: the tape listed first), keeping every partition\'s order, into a new ' +
        'tape whose checkpoints and snapshots are computed again over the merged stream. For tapes recorded from Kafka, a ' +
        'record in more than one tape (the same topic, partition and offset) is kept once and counted; the merged tape\'s ' +
        'position is the furthest of the inputs\' per partition, so `record --resume` can continue it. Quarantined inputs are ' +
        'carried over. Every input block is checked against its checksum. Exit 0 on success, 2 when an input is damaged or ' +
        'the tapes do not merge (other engines, other kinds of source, a partition\'s order that merging would break, a ' +
        'tape given twice or a copy of one). The merged tape is written as FILE.merging and renamed to --out once ' +
        'whole: a merge that fails, is stopped (Ctrl-C) or killed leaves nothing at --out.',
    )
    .argument('<tapes...>', 'two or more tapes to merge')
    .requiredOption('--out <file>', 'the merged tape to write')
    .option('--engine <name|path>', "engine computing the checkpoints [default: the tapes' engine]")
    .option('--force', 'replace --out if it exists')
    .option('--checkpoint-every <n>', 'events between digest checkpoints', positiveInt('--checkpoint-every'), DEFAULT_CHECKPOINT_EVERY)
    .option('--snapshot-every <n>', 'events between state snapshots', positiveInt('--snapshot-every'), DEFAULT_SNAPSHOT_EVERY)
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (tapes: string[], flags: MergeFlags) => {
      if (tapes.length < 2) throw new TapedeckError('E_USAGE', 'merge needs at least two tapes');
      const engine = await engineForTape(tapes[0], flags.engine);
      const source = new MergeSource(tapes, engine.codec);
      // The merged tape is written under another name and renamed to --out once it is whole:
      // a merge that fails, is interrupted or is killed never leaves part of one at --out.
      const out = flags.out;
      TapeWriter.checkTarget(out, flags.force === true, false);
      const building = `${out}.merging`;
      TapeWriter.discard(building);
      const stop = stopOnSignals();
      const bar = progress('merging');
      try {
        const merged = await recordTape(source as Source, {
          path: building,
          overwrite: true,
          signal: stop.signal,
          engine,
          engineOptions: source.firstMeta.engineOptions ?? undefined,
          runSeed: source.firstMeta.runSeed,
          checkpointEvery: flags.checkpointEvery,
          snapshotEvery: flags.snapshotEvery,
          quarantine: true,
          durability: 'relaxed',
          // A merge that fails (a damaged input) leaves no part of a tape behind.
          discardOnFailure: true,
          // Records two tapes hold are read from each and kept once: they count as read here.
          onProgress: (p) => bar.update(p.read + source.stats.duplicatesSkipped, source.expectedRecords()),
        });
        bar.stop();
        if (merged.stopped) {
          TapeWriter.discard(building);
          throw new TapedeckError('E_INTERRUPTED', `merge stopped by ${stop.name() ?? 'a signal'} before it was complete; ${out} was not written`);
        }
        putInPlace(building, out, merged.inWalMode);
        const result = { ...merged, path: out };
        const stats = source.stats;
        if (flags.json) printJson({ ok: true, inputs: tapes, ...stats, ...result });
        else {
          line(`merged ${tapes.length} tapes into ${result.path}: ${count(result.events, 'event')}, ${fmt(result.quarantined)} quarantined inputs carried over`);
          for (const [i, t] of tapes.entries()) line(`  ${t}: ${count(stats.eventsPerInput[i], 'event')}`);
          if (stats.duplicatesSkipped > 0) line(`  ${count(stats.duplicatesSkipped, 'record')} were in more than one tape (same topic, partition, offset) and are kept once`);
          line(`  ${count(result.checkpoints, 'checkpoint')} and ${count(result.snapshots, 'snapshot')} over the merged stream; digest ${result.finalDigest}; ${fmtSeconds(result.elapsedMs)}`);
        }
        noteWalMode(result);
      } finally {
        bar.stop();
        stop.release();
        source.close();
      }
      process.exitCode = EXIT.ok;
    });
}

/**
 * The whole merged tape, closed, renamed to `out` (replacing what --force allowed to replace).
 * In the rare case that another process held it open as it closed, its WAL goes with it.
 */
function putInPlace(building: string, out: string, inWalMode: boolean): void {
  TapeWriter.discard(out);
  if (inWalMode) {
    renameSync(`${building}-wal`, `${out}-wal`);
    rmSync(`${building}-shm`, { force: true });
  }
  renameSync(building, out);
  syncFolderOf(out);
}
