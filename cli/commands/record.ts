// `tapedeck record`: capture a source into a tape, with digest checkpoints computed live.

import { Command } from 'commander';
import { TapedeckError } from '../../engine/errors.js';
import { builtInEngine } from '../../engine/registry.js';
import type { Engine } from '../../engine/types.js';
import type { TrafficOptions } from '../../engine/world/traffic.js';
import { DEFAULT_BLOCK_EVENTS, DEFAULT_CHECKPOINT_EVERY, DEFAULT_SNAPSHOT_EVERY, PIPELINE_MODES, prestartKafkaReader, recordTape, type PipelineMode, type RecordResult } from '../../recorder/record.js';
import { openResume, type ResumePoint } from '../../recorder/resume.js';
import type { Source } from '../../recorder/source.js';
import { engineFile, kafkaSecurityFiles, refuseOutputsOverInputs } from '../files.js';
import { DEFAULT_MAX_LINE_BYTES, NdjsonSource, type NdjsonPosition } from '../../recorder/sources/ndjson.js';
import { loadHashKey, Redactor } from '../../recorder/redact.js';
import { addKafkaSecurityOptions, anyKafkaSecurityFlag, kafkaSecurityFrom, type KafkaSecurityFlags } from '../kafka-security.js';
import { EngineGeneratedSource, WorldTrafficSource, type GeneratedSourceOptions } from '../../recorder/sources/synthetic.js';
import { TapeReader } from '../../tape/reader.js';
import { TapeWriteError } from '../../tape/errors.js';
import { EXIT, stopOnSignals } from '../exit.js';
import { loadEngine } from '../../tape/load-engine.js';
import { fmt, fmtSeconds, line, noteWalMode, printJson, progress, count, type Progress } from '../output.js';
import { collect, durationMs, flagName, hostPorts, oneOf, positiveInt } from '../parse.js';
import { VALUE_FORMATS, type ValueFormat } from '../../recorder/kafka-options.js';
import type { KafkaPosition } from '../../recorder/sources/kafka.js';
import { addSyntheticOptions, syntheticSource, type SyntheticFlags } from '../synthetic.js';

const SOURCES = ['synthetic', 'ndjson', 'kafka'] as const;

interface RecordFlags extends SyntheticFlags, KafkaSecurityFlags {
  source: (typeof SOURCES)[number];
  input?: string;
  out: string;
  engine?: string;
  force?: boolean;
  resume?: boolean;
  quarantine?: boolean;
  maxLineBytes: number;
  checkpointEvery: number;
  snapshotEvery: number;
  blockEvents: number;
  pipeline: PipelineMode;
  brokers?: string[];
  topic?: string[];
  group?: string;
  fromBeginning?: boolean;
  untilCaughtUp?: boolean;
  maxEvents?: number;
  duration?: number;
  valueFormat: ValueFormat;
  redact?: string[];
  hash?: string[];
  hashKeyFile?: string;
  quarantineRaw: 'on' | 'off';
  json?: boolean;
}

export function recordCommand(): Command {
  const command = new Command('record')
    .summary('record a source into a tape, with digest checkpoints computed live')
    .description(
      'Reads events from a source and writes them into a tape (one SQLite file), applying each to the engine so that ' +
        'digest checkpoints and snapshots are recorded live.\n\n' +
        // The table's lines fit 80 columns: commander wraps longer ones without their indent.
        'Sources:\n' +
        "  synthetic  seeded world traffic (or your engine's generate() hook):\n" +
        '             --events, --seed, --rate, --partitions, --players, --profile\n' +
        '  ndjson     one event per line from --input FILE, or --input - for stdin;\n' +
        '             a gzip file (events.ndjson.gz) is read decompressed, and resumes;\n' +
        '             a pipe, e.g. <(zstd -dc events.ndjson.zst), is read as stdin is\n' +
        '             (the line format: docs/recording.md)\n' +
        '  kafka      every partition of --topic T (repeatable) on --brokers HOST:PORT;\n' +
        '             stop with --until-caught-up, --max-events or --duration (or\n' +
        '             Ctrl-C); positions are stored in the tape, so --resume is exact\n\n' +
        'Bad input: strict by default (the first malformed line stops the run with exit 2, naming file, line and byte ' +
        'offset; the lines before it are committed). With --quarantine, malformed lines go to the tape\'s rejects table ' +
        'with their position, raw bytes and reason, and the run goes on.\n\n' +
        'Interrupting (Ctrl-C, SIGTERM) stops cleanly: what was read is committed. --resume continues a tape from where ' +
        'it ends, without loss or duplicates.\n\n' +
        'Memory: for synthetic recordings of hundreds of millions of events, or a Kafka capture left running for hours, ' +
        'start tapedeck with NODE_OPTIONS=--max-semi-space-size=4: 200M synthetic events peaked at 172.9 MB of RSS with ' +
        'it, 215.3 MB without (it also slows the parsing of NDJSON files by about a tenth: docs/recording.md).',
    )
    .requiredOption('--out <file>', 'the tape to write')
    .option('--source <kind>', `where events come from: ${SOURCES.join(', ')}`, oneOf('--source', SOURCES), 'synthetic')
    .option('--input <file>', 'for --source ndjson: the file to read (or a pipe), or - for stdin')
    .option('--engine <name|path>', 'engine computing the live checkpoints: "world" or a path to your engine module [default: world, or the tape\'s on --resume]')
    .option('--resume', 'continue the tape at --out from where it ends')
    .option('--quarantine', 'keep malformed inputs in the tape\'s rejects table and go on, instead of stopping')
    .option('--max-line-bytes <n>', 'longest NDJSON line accepted', positiveInt('--max-line-bytes'), DEFAULT_MAX_LINE_BYTES)
    .option('--force', 'replace --out if it exists')
    .option('--brokers <list>', 'for --source kafka: bootstrap brokers, HOST:PORT[,HOST:PORT...]', hostPorts('--brokers'))
    .option('--topic <name>', 'for --source kafka: a topic to record, all its partitions (repeat for several)', collect)
    .option(
      '--group <id>',
      "for --source kafka: consumer group: recorders in one group share the partitions, and the tape's positions are committed to it after the tape has them (the last one before the recorder leaves) [default: a private group of this run, given no offsets]",
    )
    .option('--from-beginning', 'for --source kafka: partitions the tape and the group have no position for start at the beginning [default: at the end]')
    .option('--until-caught-up', 'for --source kafka: stop at the end offsets seen at start')
    .option('--max-events <n>', 'for --source kafka: stop after this many records in this run', positiveInt('--max-events'))
    .option('--duration <time>', 'for --source kafka: stop after this long, e.g. 30s, 5m', durationMs('--duration'))
    .option('--value-format <format>', `for --source kafka: json (the event's {"type","payload"} JSON) or codec (the engine codec's bytes)`, oneOf('--value-format', VALUE_FORMATS), 'json');
  command
    .option('--redact <path>', 'JSON sources: remove this field of every event before it reaches the tape (repeatable), e.g. payload.user.email; `*` matches every field or element; "key" removes the record key (docs/kafka-security.md)', collect)
    .option('--hash <path>', 'JSON sources: replace this field by a keyed hash (HMAC-SHA256) so that equal values stay equal (repeatable); the key from --hash-key-file or $TAPEDECK_HASH_KEY', collect)
    .option('--hash-key-file <file>', 'the key for --hash (never stored in the tape)')
    .option('--quarantine-raw <on|off>', 'keep the raw bytes of rejected inputs (redacted where they parse); off keeps only position, length and reason', oneOf('--quarantine-raw', ['on', 'off'] as const), 'on');
  addKafkaSecurityOptions(command);
  addSyntheticOptions(command, 1_000_000);
  return command
    .option('--checkpoint-every <n>', 'events between digest checkpoints', positiveInt('--checkpoint-every'), DEFAULT_CHECKPOINT_EVERY)
    .option('--snapshot-every <n>', 'events between state snapshots (for seeking)', positiveInt('--snapshot-every'), DEFAULT_SNAPSHOT_EVERY)
    .option('--block-events <n>', 'events per stored block', positiveInt('--block-events'), DEFAULT_BLOCK_EVENTS)
    .option(
      '--pipeline <mode>',
      'read the source on other threads while this one applies the engine and writes: auto (Kafka, synthetic runs of 200,000 events or more, NDJSON files of 16 MiB or more), on, off; stdin is always read on this thread',
      oneOf('--pipeline', PIPELINE_MODES),
      'auto',
    )
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (flags: RecordFlags, cmd: Command) => {
      process.exitCode = await runRecord(flags, cmd);
    });
}

async function runRecord(flags: RecordFlags, cmd: Command): Promise<number> {
  if (flags.resume && flags.force) throw new TapedeckError('E_USAGE', '--resume and --force contradict each other: one continues the tape, the other replaces it');
  refuseOutputsOverInputs(
    [{ name: '--out', path: flags.out }],
    [flags.input === '-' ? { name: 'the standard input (--input -)', path: '/dev/stdin', showPath: false } : { name: 'the --input file', path: flags.input }, engineFile(flags.engine), { name: 'the --hash-key-file', path: flags.hashKeyFile }, ...kafkaSecurityFiles(flags)],
  );
  let engineSpec = flags.engine ?? 'world';
  let resume: ResumePoint | undefined;
  if (flags.resume) {
    if (flags.engine === undefined) {
      const reader = TapeReader.open(flags.out);
      engineSpec = reader.meta.engineName;
      reader.close();
      if (builtInEngine(engineSpec) === undefined) {
        throw new TapedeckError('E_USAGE', `${flags.out} was recorded with engine "${engineSpec}", which is not built in; resume with --engine PATH to its module`);
      }
    }
  }
  const engine = await loadEngine(engineSpec);
  if (flags.resume) resume = openResume(flags.out, engine, flags.source);
  const source = await buildSource(flags, engine, engineSpec, resume, cmd);
  if (flags.source === 'ndjson' && flags.input === '-' && process.stdin.isTTY === true) {
    // Nothing piped in: without a word, the command would seem to hang.
    process.stderr.write('tapedeck: reading NDJSON lines from the terminal (--input -, nothing piped in); end with Ctrl-D, or Ctrl-C to stop and commit what was read\n');
  }

  // A stop that takes a while (a reader thread that does not answer: see recordTape's
  // abandonedThread) says so, and how to quit at once.
  const stop = stopOnSignals((sig) => `a reader thread or the broker has not answered yet; ${sig} again quits at once (the tape keeps its last commit)`);
  // Progress: a file's in bytes read (its total in events is not known before the end); a
  // capture's against the records the source expects (Kafka with --until-caught-up or
  // --max-events), which it knows once it has looked at the topic, before the first commit,
  // so the bar is made then; stdin and a live topic have no end.
  const ndjson = source instanceof NdjsonSource ? source : null;
  const fileBytes = ndjson?.fileSize ?? null;
  const total = flags.source === 'synthetic' ? syntheticTotal(flags, resume) : null;
  const readBefore = resume?.read ?? 0;
  let bar: Progress | null = null;
  const barNow = (expected: number | null): Progress =>
    (bar ??= progress('recording', fileBytes !== null ? 'bytes' : total !== null || expected !== null ? 'events' : 'open'));
  let result: RecordResult;
  /** The source position of the last commit. */
  let committed: unknown;
  try {
    result = await recordTape(source, {
      path: flags.out,
      overwrite: flags.force === true,
      engine,
      runSeed: flags.seed,
      checkpointEvery: flags.checkpointEvery,
      snapshotEvery: flags.snapshotEvery,
      blockEvents: flags.blockEvents,
      pipeline: flags.pipeline,
      engineSpec,
      quarantine: flags.quarantine === true,
      resume,
      signal: stop.signal,
      onWarning: (message) => process.stderr.write(`tapedeck: warning: ${message}\n`),
      onProgress: (p) => {
        committed = p.position;
        const expected = source.expectedRecords?.() ?? null;
        if (fileBytes !== null) barNow(expected).update(ndjson!.progressBytes(p.position), fileBytes, p.events);
        else barNow(expected).update(p.read, Math.max(p.read, total ?? readBefore + (expected ?? p.read - readBefore)));
      },
    });
  } catch (error) {
    // A write that failed (a full disk) after some commits: the same command with --resume goes on from them.
    if (error instanceof TapeWriteError && error.committedEvents !== null) {
      throw new TapeWriteError(error.path, `${error.reason}; once the cause is fixed, the same command with --resume continues the recording from there`, { cause: error, committedEvents: error.committedEvents });
    }
    throw error;
  } finally {
    (bar as Progress | null)?.stop();
    stop.release();
  }
  // Stopped with bytes of stdin or a pipe in hand that are not in the tape: they cannot be read again, so say so.
  const unrecordedBytes = stop.name() === null || ndjson === null ? 0 : ndjson.unrecordedBytes(committed);
  if (flags.json) {
    printJson({ ok: true, stoppedBy: stop.name(), ...result, ...(unrecordedBytes > 0 ? { unrecordedBytes } : {}) });
  } else {
    const verb = result.resumed ? 'resumed and recorded' : 'recorded';
    line(`${verb} ${count(result.eventsThisRun, 'event')} into ${result.path} (${fmt(result.events)} in the tape)`);
    const listThem = result.quarantined > 0 ? ` (tapedeck export ${result.path} --rejects lists them)` : '';
    line(`  read ${count(result.read, 'input')}: ${fmt(result.accepted)} accepted, ${fmt(result.quarantined)} quarantined${listThem}`);
    line(`  ${count(result.blocks, 'block')}; this run wrote ${count(result.checkpoints, 'checkpoint')} and ${count(result.snapshots, 'snapshot')}`);
    line(`  ${fmtSeconds(result.elapsedMs)}, ${fmt(result.eventsPerSec)} events/s${result.pipelined ? ' (source read on a second thread)' : ''}; digest ${result.finalDigest} at event ${fmt(result.events)}`);
    if (result.abandonedThread !== undefined) {
      line(`stopped${stop.name() === null ? '' : ` by ${stop.name()}`}, ending ${result.abandonedThread}, which did not answer: every event it handed over is committed; --resume reads the rest again from the source`);
    } else if (stop.name() !== null) {
      const unrecorded =
        unrecordedBytes > 0
          ? ` except the last ${count(unrecordedBytes, 'byte')} from ${flags.input === '-' ? 'stdin' : flags.input} (the start of a line whose newline had not come, or input that came after the stop), which are not in the tape and cannot be read again`
          : '';
      line(`stopped by ${stop.name()}: everything read is committed${unrecorded}; continue with --resume`);
    }
  }
  noteWalMode(result);
  return EXIT.ok;
}

function syntheticTotal(flags: RecordFlags, resume: ResumePoint | undefined): number {
  const events = (resume?.meta.source as { events?: number } | undefined)?.events;
  return events ?? flags.events;
}

async function buildSource(flags: RecordFlags, engine: Engine, engineSpec: string, resume: ResumePoint | undefined, cmd: Command): Promise<Source> {
  const kafkaOnly = (['brokers', 'topic', 'group', 'fromBeginning', 'untilCaughtUp', 'maxEvents', 'duration'] as const).filter((o) => flags[o] !== undefined);
  if (flags.source !== 'kafka' && kafkaOnly.length > 0) {
    throw new TapedeckError('E_USAGE', `${kafkaOnly.map(flagName).join(', ')} ${kafkaOnly.length === 1 ? 'is' : 'are'} for --source kafka`);
  }
  const redactor = new Redactor({ redact: flags.redact ?? [], hash: flags.hash ?? [] }, flags.hash === undefined ? null : loadHashKey(flags.hashKeyFile));
  const redaction = redactor.active ? { transform: redactor, record: redactor.record } : undefined;
  if (redaction !== undefined && flags.source === 'synthetic') throw new TapedeckError('E_USAGE', '--redact and --hash are for JSON sources (--source ndjson or kafka)');
  if (resume !== undefined) {
    const stored = JSON.stringify((resume.meta.source as { redaction?: unknown } | null)?.redaction ?? null);
    if (stored !== JSON.stringify(redaction?.record ?? null)) {
      throw new TapedeckError('E_USAGE', `the tape was recorded with redaction ${stored}; resume it with the same --redact and --hash rules`);
    }
  }
  if (flags.source !== 'kafka' && anyKafkaSecurityFlag(flags)) throw new TapedeckError('E_USAGE', 'TLS and SASL options are for --source kafka');
  if (flags.source === 'kafka') {
    if (flags.input !== undefined) throw new TapedeckError('E_USAGE', '--input is for --source ndjson');
    const stored = resume?.meta.source as { kind?: string; brokers?: string[]; topics?: string[]; group?: string | null; valueFormat?: ValueFormat } | undefined;
    const topics = flags.topic ?? stored?.topics;
    const brokers = flags.brokers ?? stored?.brokers;
    if (topics === undefined) throw new TapedeckError('E_USAGE', '--source kafka needs --topic NAME (repeat for several topics)');
    if (brokers === undefined) throw new TapedeckError('E_USAGE', '--source kafka needs --brokers HOST:PORT');
    if (stored !== undefined && stored.topics !== undefined && JSON.stringify(stored.topics) !== JSON.stringify(topics)) {
      throw new TapedeckError('E_USAGE', `--topic ${topics.join(', ')} differs from the tape's ${stored.topics.join(', ')}: a resumed capture reads the same topics`);
    }
    // The reader thread starts loading kafkajs and the engine while this thread loads kafkajs
    // (not loaded with the CLI, which other commands do not need).
    if (flags.pipeline !== 'off') prestartKafkaReader(engineSpec);
    const { KafkaSource } = await import('../../recorder/sources/kafka.js');
    return new KafkaSource({
      brokers,
      topics,
      codec: engine.codec,
      group: flags.group ?? stored?.group ?? undefined,
      valueFormat: cmd.getOptionValueSource('valueFormat') === 'cli' ? flags.valueFormat : (stored?.valueFormat ?? flags.valueFormat),
      fromBeginning: flags.fromBeginning === true,
      from: (resume?.position ?? undefined) as KafkaPosition | undefined,
      untilCaughtUp: flags.untilCaughtUp === true,
      maxEvents: flags.maxEvents,
      durationMs: flags.duration,
      onWarning: (message) => process.stderr.write(`tapedeck: warning: ${message}\n`),
      redaction,
      keepRaw: flags.quarantineRaw !== 'off',
      security: kafkaSecurityFrom(flags, (m) => process.stderr.write(`tapedeck: ${m}\n`)),
    }) as Source;
  }
  if (flags.source === 'ndjson') {
    if (flags.input === undefined) throw new TapedeckError('E_USAGE', '--source ndjson needs --input FILE (or --input - for stdin)');
    const from = (resume?.position ?? undefined) as NdjsonPosition | undefined;
    return new NdjsonSource({
      input: flags.input,
      codec: engine.codec,
      maxLineBytes: flags.maxLineBytes,
      // (For stdin or a pipe the source keeps only the line number: it reads what comes now from its first byte.)
      from,
      redaction,
      keepRaw: flags.quarantineRaw !== 'off',
    });
  }
  if (flags.input !== undefined) throw new TapedeckError('E_USAGE', '--input is for --source ndjson');
  if (resume === undefined) return syntheticSource(engine, flags);
  // On resume the generator's options come from the tape, so that the stream continues
  // exactly; repeating them on the command line is fine, changing them is not.
  const stored = resume.meta.source as Record<string, unknown>;
  const storedName: Record<string, string> = { events: 'events', seed: 'seed', rate: 'ratePerSec', partitions: 'partitions', players: 'players', profile: 'profile' };
  for (const [flag, key] of Object.entries(storedName)) {
    const given = (flags as unknown as Record<string, unknown>)[flag];
    if (cmd.getOptionValueSource(flag) === 'cli' && key in stored && stored[key] !== given) {
      throw new TapedeckError('E_USAGE', `--${flag} ${String(given)} differs from the tape's ${String(stored[key])}: on --resume the generator's options come from the tape`);
    }
  }
  const nextIndex = (resume.position as { nextIndex?: number } | null)?.nextIndex ?? 0;
  if (stored.generator === 'world-traffic/1') {
    return new WorldTrafficSource(stored as unknown as Partial<TrafficOptions>, nextIndex) as Source;
  }
  return new EngineGeneratedSource(engine, stored as unknown as GeneratedSourceOptions, nextIndex) as Source;
}
