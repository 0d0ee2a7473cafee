// `tapedeck ingest`: the live service (see recorder/ingest.ts).

import { Command } from 'commander';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_SNAPSHOT_EVERY } from '../../recorder/record.js';
import type { LatencySummary } from '../../recorder/ingest.js';
import { formatUs } from '../../replayer/latency/units.js';
import { DEFAULT_CHANNEL_CAPACITY, VALUE_FORMATS, type ValueFormat } from '../../recorder/kafka-options.js';
import { loadEngine } from '../../tape/load-engine.js';
import { addKafkaSecurityOptions, kafkaSecurityFrom, type KafkaSecurityFlags } from '../kafka-security.js';
import { EXIT, stopOnSignals } from '../exit.js';
import { fmt, fmtSeconds, line, noteWalMode, printJson, count } from '../output.js';
import { engineFile, kafkaSecurityFiles, refuseOutputsOverInputs } from '../files.js';
import { collect, durationMs, hostPorts, nonNegativeInt, oneOf, positiveInt } from '../parse.js';

interface IngestFlags extends KafkaSecurityFlags {
  brokers: string[];
  topic: string[];
  outTopic?: string;
  record?: string;
  engine: string;
  group?: string;
  fromBeginning?: boolean;
  untilCaughtUp?: boolean;
  maxEvents?: number;
  duration?: number;
  statusEvery?: number;
  channelCapacity: number;
  valueFormat: ValueFormat;
  quarantine?: boolean;
  force?: boolean;
  seed: number;
  checkpointEvery: number;
  snapshotEvery: number;
  json?: boolean;
}

/** A latency in the unit that reads best (formatUs's up to a minute): events replayed from a topic's beginning can be days late. */
function duration(ms: number): string {
  if (ms < 60_000) return formatUs(ms * 1000);
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} days`;
}

const latencyText = (l: LatencySummary | null): string =>
  l === null ? 'no events yet' : `p50 ${duration(l.p50)}, p95 ${duration(l.p95)}, p99 ${duration(l.p99)}, p99.9 ${duration(l.p999)}, max ${duration(l.max)}, mean ${duration(l.mean)}`;

export function ingestCommand(): Command {
  const command = new Command('ingest')
    .summary('the live service: consume Kafka, apply the engine, publish its updates (and record a tape)')
    .description(
      'Consumes every partition of --topic, passes the events through a bounded channel (--channel-capacity; when it is full ' +
        'the consumer pauses, so memory stays bounded) into one engine loop, and publishes the engine\'s updates to --out-topic ' +
        'off the engine\'s path. With --record FILE it also writes a tape with live digest checkpoints, exactly as ' +
        '`record --source kafka` does, so the capture can be replayed and verified later. Reports latency percentiles from ' +
        'each event\'s timestamp to the moment it was applied (live on stderr on a terminal, and in the summary). ' +
        'Runs until Ctrl-C/SIGTERM or a stop condition (--until-caught-up, --max-events, --duration).',
    )
    .requiredOption('--brokers <list>', 'bootstrap brokers, HOST:PORT[,HOST:PORT...]', hostPorts('--brokers'))
    .requiredOption('--topic <name>', 'input topic (repeat for several)', collect);
  return addKafkaSecurityOptions(command)
    .option('--out-topic <name>', 'publish the engine\'s updates here (JSON values; partition = the event\'s partition mod its count)')
    .option('--record <file>', 'also record the input into this tape, with live checkpoints')
    .option('--engine <name|path>', 'the engine to run', 'world')
    .option(
      '--group <id>',
      'consumer group, to share the partitions with other instances; with --record its offsets follow the tape\'s commits, as for `record`; ' +
        'without --record none are committed (the engine\'s state lives only in this run, so a new run starts again at the end, or ' +
        'with --from-beginning at the beginning) [default: a private group]',
    )
    .option('--from-beginning', 'partitions without a committed position start at the beginning [default: at the end]')
    .option('--until-caught-up', 'stop at the end offsets seen at start')
    .option('--max-events <n>', 'stop after this many records', positiveInt('--max-events'))
    .option('--duration <time>', 'stop after this long, e.g. 30s, 5m', durationMs('--duration'))
    .option('--status-every <time>', 'print the live figures as one JSON line on stderr this often, e.g. 10s (for logs) [default: a live line each second on a terminal, else none]', durationMs('--status-every'))
    .option('--channel-capacity <n>', 'records the channel between consumer and engine holds', positiveInt('--channel-capacity'), DEFAULT_CHANNEL_CAPACITY)
    .option('--value-format <format>', 'json ({"type","payload"}) or codec (the engine codec\'s bytes)', oneOf('--value-format', VALUE_FORMATS), 'json')
    .option('--quarantine', 'keep undecodable records aside (in the tape\'s rejects with --record) and go on, instead of stopping')
    .option('--force', 'replace the --record tape if it exists')
    .option('--seed <n>', 'run seed of the randomness the engine draws from (stored in the tape)', nonNegativeInt('--seed'), 1)
    .option('--checkpoint-every <n>', 'with --record: events between digest checkpoints', positiveInt('--checkpoint-every'), DEFAULT_CHECKPOINT_EVERY)
    .option('--snapshot-every <n>', 'with --record: events between snapshots', positiveInt('--snapshot-every'), DEFAULT_SNAPSHOT_EVERY)
    .option('--json', 'print one JSON object as the last line of stdout')
    .action(async (flags: IngestFlags) => {
      refuseOutputsOverInputs([{ name: '--record', path: flags.record }], [engineFile(flags.engine), ...kafkaSecurityFiles(flags)]);
      const engine = await loadEngine(flags.engine);
      // Loaded here, not with the CLI: it brings kafkajs and the histograms.
      const { ingest, STOPPED_PUBLISH_WAIT_MS } = await import('../../recorder/ingest.js');
      // A stop waits for the broker (the group's last position, leaving the group: bounded); if that takes a while, say so.
      const keeps = flags.record === undefined ? '' : ' (the tape keeps its last commit)';
      const updates = flags.outTopic === undefined ? '' : ` (the updates in flight to ${flags.outTopic} are waited for at most ${STOPPED_PUBLISH_WAIT_MS / 1000} s)`;
      const stop = stopOnSignals((sig) => `the broker has not answered yet${updates}; ${sig} again quits at once${keeps}`);
      const live = process.stderr.isTTY === true && flags.statusEvery === undefined;
      try {
        const result = await ingest({
          kafka: {
            brokers: flags.brokers,
            security: kafkaSecurityFrom(flags, (m) => process.stderr.write(`tapedeck: ${m}\n`)),
            topics: flags.topic,
            group: flags.group,
            valueFormat: flags.valueFormat,
            fromBeginning: flags.fromBeginning === true,
            untilCaughtUp: flags.untilCaughtUp === true,
            maxEvents: flags.maxEvents,
            durationMs: flags.duration,
            onWarning: (message) => process.stderr.write(`tapedeck: warning: ${message}\n`),
          },
          engine,
          channelCapacity: flags.channelCapacity,
          outTopic: flags.outTopic,
          recordPath: flags.record,
          overwrite: flags.force === true,
          runSeed: flags.seed,
          checkpointEvery: flags.checkpointEvery,
          snapshotEvery: flags.snapshotEvery,
          quarantine: flags.quarantine === true,
          signal: stop.signal,
          statusEveryMs: flags.statusEvery,
          onStatus:
            flags.statusEvery !== undefined
              ? (s) => process.stderr.write(`${JSON.stringify({ status: 'ingest', ...s })}\n`)
              : live
                ? (s) => process.stderr.write(`\r${count(s.events, 'event')}, ${fmt(s.eventsPerSec)}/s, ${count(s.updatesPublished, 'update')} published; latency ${latencyText(s.latencyMs)}\x1b[K`)
                : undefined,
        });
        if (live) process.stderr.write('\n');
        if (flags.json) printJson({ ...result, stoppedBy: stop.name() });
        else {
          line(`ingested ${count(result.events, 'event')} through ${engine.name} ${engine.version} in ${fmtSeconds(result.elapsedMs)} (${fmt(result.eventsPerSec)} events/s); ${fmt(result.quarantined)} quarantined`);
          line(`  latency, event timestamp to applied: ${latencyText(result.latencyMs)}`);
          line(`  channel: capacity ${fmt(result.channelCapacity)}, at most ${fmt(result.channelMaxDepth)} waiting; the consumer waited ${fmtSeconds(result.backpressureMs)} for the engine`);
          line(`  updates: ${fmt(result.updatesEmitted)} emitted, ${fmt(result.updatesPublished)} published${result.outTopic === null ? ' (no --out-topic)' : ` to ${result.outTopic}`}`);
          if (result.updatesUnacknowledged > 0) {
            line(`  ${count(result.updatesUnacknowledged, 'update')} not acknowledged: Kafka had not answered ${STOPPED_PUBLISH_WAIT_MS / 1000} s after the stop (those already sent may still arrive)`);
          }
          if (result.record !== null) line(`  recorded into ${result.record.path}: ${count(result.record.events, 'event')}, ${count(result.record.checkpoints, 'checkpoint')}; digest ${result.finalDigest}`);
          if (stop.name() !== null) line(`stopped by ${stop.name()}${result.record !== null ? ': everything read is committed to the tape' : ''}`);
        }
        if (result.record !== null) noteWalMode(result.record);
      } finally {
        stop.release();
      }
      process.exitCode = EXIT.ok;
    });
}
