// `tapedeck record`: capture a source into a tape, with digest checkpoints computed live.

import { Command } from 'commander';
import { DEFAULT_BLOCK_EVENTS, DEFAULT_CHECKPOINT_EVERY, DEFAULT_SNAPSHOT_EVERY, recordTape } from '../../recorder/record.js';
import { EXIT } from '../exit.js';
import { loadEngine } from '../load-engine.js';
import { fmt, fmtSeconds, line, printJson, progress } from '../output.js';
import { oneOf, positiveInt } from '../parse.js';
import { addSyntheticOptions, syntheticSource, type SyntheticFlags } from '../synthetic.js';

const SOURCES = ['synthetic'] as const;

interface RecordFlags extends SyntheticFlags {
  source: (typeof SOURCES)[number];
  out: string;
  engine: string;
  force?: boolean;
  checkpointEvery: number;
  snapshotEvery: number;
  blockEvents: number;
  json?: boolean;
}

export function recordCommand(): Command {
  const command = new Command('record')
    .summary('record a source into a tape, with digest checkpoints computed live')
    .description(
      'Reads events from a source and writes them into a tape (one SQLite file), applying each to the engine so that ' +
        'digest checkpoints and snapshots are recorded live. Sources today: synthetic (seeded world traffic, or your ' +
        "engine's generate() hook).",
    )
    .requiredOption('--out <file>', 'the tape to write')
    .option('--source <kind>', `where events come from: ${SOURCES.join(', ')}`, oneOf('--source', SOURCES), 'synthetic')
    .option('--engine <name|path>', 'engine computing the live checkpoints: "world" or a path to your engine module', 'world')
    .option('--force', 'replace --out if it exists');
  addSyntheticOptions(command, 1_000_000);
  return command
    .option('--checkpoint-every <n>', 'events between digest checkpoints', positiveInt('--checkpoint-every'), DEFAULT_CHECKPOINT_EVERY)
    .option('--snapshot-every <n>', 'events between state snapshots (for seeking)', positiveInt('--snapshot-every'), DEFAULT_SNAPSHOT_EVERY)
    .option('--block-events <n>', 'events per stored block', positiveInt('--block-events'), DEFAULT_BLOCK_EVENTS)
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (flags: RecordFlags) => {
      const engine = await loadEngine(flags.engine);
      const source = syntheticSource(engine, flags);
      const bar = progress('recording');
      const result = await recordTape(source, {
        path: flags.out,
        overwrite: flags.force === true,
        engine,
        runSeed: flags.seed,
        checkpointEvery: flags.checkpointEvery,
        snapshotEvery: flags.snapshotEvery,
        blockEvents: flags.blockEvents,
        onProgress: (p) => bar.update(p.events, flags.events),
      });
      bar.stop();
      if (flags.json) {
        printJson({ ok: true, ...result });
      } else {
        line(`recorded ${fmt(result.events)} events into ${result.path}`);
        line(`  ${fmt(result.blocks)} blocks, ${fmt(result.checkpoints)} checkpoints, ${fmt(result.snapshots)} snapshots`);
        line(`  ${fmtSeconds(result.elapsedMs)}, ${fmt(result.eventsPerSec)} events/s; final digest ${result.finalDigest}`);
      }
      process.exitCode = EXIT.ok;
    });
}
