// `tapedeck demo`: the whole flow on built-in defaults. Generates a seeded session, records it
// with live digest checkpoints, replays the tape at full speed through the same engine, and
// verifies every checkpoint.

import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_SNAPSHOT_EVERY, recordTape } from '../../recorder/record.js';
import { replayTape } from '../../replayer/replay.js';
import { TapeError } from '../../tape/errors.js';
import { loadEngine } from '../../tape/load-engine.js';
import { looksLikeTape } from '../../tape/reader.js';
import { fmt, fmtBytes, fmtSeconds, line, noteWalMode, printJson, progress, count } from '../output.js';
import { engineFile, refuseOutputsOverInputs } from '../files.js';
import { positiveInt } from '../parse.js';
import { addSyntheticOptions, syntheticSource, type SyntheticFlags } from '../synthetic.js';
import { EXIT } from '../exit.js';

interface DemoFlags extends SyntheticFlags {
  engine: string;
  out?: string;
  checkpointEvery: number;
  snapshotEvery: number;
  json?: boolean;
}

export function demoCommand(): Command {
  const command = new Command('demo')
    .summary('record a seeded synthetic session and replay it, verifying every checkpoint')
    .description(
      'Generates a seeded session of game traffic (about a million events by default), records it into a tape with ' +
        'digest checkpoints computed live, replays the tape at full speed through the same engine and verifies every ' +
        'checkpoint. Exit 0 when every checkpoint matched and every invariant held, 1 otherwise.',
    )
    .option('--engine <name|path>', 'engine to run: "world" or a path to your engine module (it needs a generate() hook)', 'world')
    .option('--out <file>', 'where to write the tape (a tape there is replaced; any other file is refused) [default: tapedeck-demo-<seed>.tape in the temp directory]');
  addSyntheticOptions(command, 1_000_000);
  return command
    .option('--checkpoint-every <n>', 'events between digest checkpoints', positiveInt('--checkpoint-every'), DEFAULT_CHECKPOINT_EVERY)
    .option('--snapshot-every <n>', 'events between state snapshots', positiveInt('--snapshot-every'), DEFAULT_SNAPSHOT_EVERY)
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (flags: DemoFlags) => {
      process.exitCode = await runDemo(flags);
    });
}

async function runDemo(flags: DemoFlags): Promise<number> {
  refuseOutputsOverInputs([{ name: '--out', path: flags.out }], [engineFile(flags.engine)]);
  const engine = await loadEngine(flags.engine);
  const path = flags.out ?? join(tmpdir(), `tapedeck-demo-${flags.seed}.tape`);
  refuseReplacingOther(path);
  const source = syntheticSource(engine, flags);

  const recordBar = progress('recording');
  const recorded = await recordTape(source, {
    path,
    overwrite: true,
    engine,
    runSeed: flags.seed,
    checkpointEvery: flags.checkpointEvery,
    snapshotEvery: flags.snapshotEvery,
    onProgress: (p) => recordBar.update(p.events, flags.events),
  });
  recordBar.stop();
  noteWalMode(recorded);

  const replayBar = progress('replaying');
  const replayed = replayTape(path, { engine, onProgress: (done, total) => replayBar.update(done, total) });
  replayBar.stop();

  const ok = replayed.ok && replayed.checkpointsVerified === recorded.checkpoints && replayed.events === recorded.events;
  const tapeBytes = statSync(path).size;
  if (flags.json) {
    printJson({
      ok,
      seed: flags.seed,
      tape: path,
      tapeBytes,
      engine: replayed.engine,
      events: replayed.events,
      checkpointsVerified: replayed.checkpointsVerified,
      mismatches: replayed.mismatches,
      invariantViolations: replayed.invariantViolations,
      finalDigest: replayed.finalDigest,
      record: {
        events: recorded.events,
        blocks: recorded.blocks,
        checkpoints: recorded.checkpoints,
        snapshots: recorded.snapshots,
        elapsedMs: recorded.elapsedMs,
        eventsPerSec: recorded.eventsPerSec,
        finalDigest: recorded.finalDigest,
      },
      replay: {
        events: replayed.events,
        elapsedMs: replayed.elapsedMs,
        eventsPerSec: replayed.eventsPerSec,
        mismatchList: replayed.mismatchList,
        invariantViolationList: replayed.invariantViolationList,
        updatesEmitted: replayed.updatesEmitted,
      },
    });
    return ok ? EXIT.ok : EXIT.checkFailed;
  }
  const traffic = engine.name === 'world' ? `world traffic (${flags.profile}, ${fmt(flags.rate)} events/s, ${flags.partitions} partitions, ${fmt(flags.players)} players)` : `${engine.name}.generate() traffic`;
  line(`tapedeck demo: engine ${engine.name} ${engine.version}, seed ${flags.seed}, ${count(flags.events, 'event')} of ${traffic}`);
  line(`  recorded  ${count(recorded.events, 'event')} in ${count(recorded.blocks, 'block')}, ${count(recorded.checkpoints, 'checkpoint')}, ${count(recorded.snapshots, 'snapshot')} (${fmtSeconds(recorded.elapsedMs)}, ${fmt(recorded.eventsPerSec)} events/s)`);
  line(`  tape      ${path} (${fmtBytes(tapeBytes)})`);
  line(`  replayed  ${count(replayed.events, 'event')} at full speed (${fmtSeconds(replayed.elapsedMs)}, ${fmt(replayed.eventsPerSec)} events/s), ${count(replayed.updatesEmitted, 'update')} emitted`);
  line(`  verified  ${fmt(replayed.checkpointsVerified)} of ${count(recorded.checkpoints, 'checkpoint')}: ${count(replayed.mismatches, 'mismatch', 'mismatches')}, ${count(replayed.invariantViolations, 'invariant violation')}`);
  line(`  digest    ${replayed.finalDigest} (final state)`);
  for (const m of replayed.mismatchList.slice(0, 5)) line(`  MISMATCH  after event ${m.nextSeq - 1}: expected ${m.expected}, got ${m.actual}`);
  for (const v of replayed.invariantViolationList.slice(0, 5)) for (const x of v.violations.slice(0, 3)) line(`  VIOLATION after event ${v.nextSeq - 1}: ${x.code}: ${x.message}`);
  line(ok ? 'OK: the replay reached the recorded state at every checkpoint.' : 'FAILED: the replay did not reach the recorded state; see above.');
  line();
  line('Next: `npx tapedeck inspect ' + path + '` shows what the tape holds; `npx tapedeck replay ' + path + '` replays it again.');
  line('Other commands: record (synthetic, NDJSON file or stdin, Kafka), replay (also --workers N, --to-kafka, --latency), rehearse, simulate, bisect, merge, ingest, inspect, verify, export. `npx tapedeck --help` explains each.');
  return ok ? EXIT.ok : EXIT.checkFailed;
}

/**
 * The demo replaces the tape at its --out (an earlier demo's, run after run), but nothing
 * else: `demo --out notes.txt` would have put a tape where the notes were. A file there that
 * is empty or a tape is replaced; any other is refused (a folder is refused when the tape is
 * created).
 */
function refuseReplacingOther(path: string): void {
  const existing = statSync(path, { throwIfNoEntry: false });
  if (existing === undefined || existing.isDirectory()) return;
  // (Only a regular file is looked into: opening a FIFO would wait for a writer.)
  if (existing.isFile() && (existing.size === 0 || looksLikeTape(path))) return;
  throw new TapeError('E_TAPE_EXISTS', path, 'the file exists and is not a tape; the demo replaces a tape there (an earlier demo\'s), nothing else: choose another --out, or move the file away');
}
