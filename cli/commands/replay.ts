// `tapedeck replay`: replay a tape at full speed and verify every checkpoint.

import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import { TapedeckError } from '../../engine/errors.js';
import { replayTape, type ReplayResult } from '../../replayer/replay.js';
import { replayTapeSharded } from '../../replayer/shards.js';
import { REPUBLISH_VALUE_FORMATS, republishTape, SENDER_STOPPED_QUIET_MS, STOPPED_SETTLE_MS, type RepublishValueFormat } from '../../replayer/republish.js';
import { printDivergence } from '../divergence.js';
import { EXIT, stopOnSignals } from '../exit.js';
import { engineForTape, loadEngine } from '../../tape/load-engine.js';
import { fileWriteError, syncFolderOf } from '../../tape/private.js';
import { fmt, fmtSeconds, line, notePaced, printJson, progress, count } from '../output.js';
import { addKafkaSecurityOptions, anyKafkaSecurityFlag, kafkaSecurityFrom, type KafkaSecurityFlags } from '../kafka-security.js';
import { addLatencyOptions, LATENCY_FLAGS, latencyOptionsFrom, percentileCells, printBudget, printTable, writeReport, type LatencyFlags } from '../latency.js';
import { writeEmpirical } from '../../replayer/latency/service-time.js';
import { formatUs } from '../../replayer/latency/units.js';
import { engineFile, kafkaSecurityFiles, refuseOutputsOverInputs } from '../files.js';
import { flagName, hostPorts, nonNegativeInt, oneOf, positiveInt, positiveNumber, timeUs } from '../parse.js';

const speedValue = (value: string): number | 'max' => {
  if (value === 'max') return 'max';
  try {
    return positiveNumber('--speed')(value);
  } catch {
    throw new InvalidArgumentError(`--speed must be max or a positive multiple of the recorded rate (such as 2 or 0.5), got "${value}"`);
  }
};

interface ReplayFlags extends LatencyFlags, KafkaSecurityFlags {
  latency?: boolean;
  engine?: string;
  from?: number;
  to?: number;
  fromTime?: number;
  toTime?: number;
  paranoid?: boolean;
  speed: number | 'max';
  checkpointDigests?: boolean;
  checkDeterminism?: boolean;
  workers?: number;
  toKafka?: boolean;
  brokers?: string[];
  topic?: string;
  valueFormat: RepublishValueFormat;
  positionFile?: string;
  resume?: boolean;
  json?: boolean;
}

export function replayCommand(): Command {
  const command = new Command('replay')
    .summary('replay a tape at full speed through an engine, verifying every checkpoint')
    .description(
      'Replays every event of the tape through the engine on the virtual clock, without sleeping, and compares the ' +
        "engine's state digest with each checkpoint recorded in the tape; invariants are checked at each checkpoint. " +
        'Exit 0 when all held, 1 on a digest mismatch or invariant violation, 2 when the tape cannot be read. ' +
        'With --to-kafka, Ctrl-C or SIGTERM stops cleanly: requests in flight are waited for (at most 20 s: a broker that ' +
        'does not answer counts them as not acknowledged), and the summary names the last event acknowledged with every ' +
        'one before it, and the --from to continue with; a second Ctrl-C quits at once.',
    )
    .argument('<tape>', 'the tape to replay')
    .option('--engine <name|path>', 'engine to replay through [default: the engine named in the tape]')
    .option('--from <seq>', 'first event to replay; starts at the last snapshot before it (its digest checked) and fast-forwards', nonNegativeInt('--from'))
    .option('--to <seq>', 'last event to replay, included', nonNegativeInt('--to'))
    .option('--from-time <time>', 'first event at or after this time (µs since the epoch, or ISO 8601)', timeUs('--from-time'))
    .option('--to-time <time>', 'last event at or before this time', timeUs('--to-time'))
    .option('--speed <max|K>', 'max: never sleep (virtual time follows the recorded timestamps); K: paced, wall-clock time = recorded time / K (a pace taking 10 s or more is announced on stderr; one taking more than a year is refused)', speedValue, 'max' as const)
    .option('--checkpoint-digests', "with --json: include this replay's digest at every checkpoint")
    .option('--check-determinism', 'replay twice in two separate processes and compare their digests at every checkpoint')
    .option(
      '--workers <n>',
      'replay on N worker threads, one shard of partitions each (partition mod N), for engines that declare their state sharded by partition; whole tape, --speed max. With --to-kafka: N sender threads, each with its own producer and the partitions p mod N [default: one per core, at most 4]',
      positiveInt('--workers'),
    )
    .option('--to-kafka', 'republish: send the events to --topic on --brokers, with keys, headers and partitions, at --speed (max or K); the engine is not run')
    .option('--brokers <list>', 'with --to-kafka: bootstrap brokers, HOST:PORT[,HOST:PORT...]', hostPorts('--brokers'))
    .option('--topic <name>', 'with --to-kafka: the topic to send to (it must exist; with fewer partitions, partition p goes to p mod count)')
    .option('--value-format <format>', 'with --to-kafka: json (the event\'s {"type","payload"}) or codec (the stored bytes)', oneOf('--value-format', REPUBLISH_VALUE_FORMATS), 'json')
    .option('--position-file <file>', 'with --to-kafka: keep the last acknowledged event in FILE (JSON, replaced atomically up to 4 times a second and at the end), so that a run killed with no summary can be resumed')
    .option('--resume', 'with --to-kafka and --position-file: continue after the last acknowledged event the file names (instead of --from)')
    .option('--paranoid', "check the engine's invariants after every event, not only at checkpoints (an invariant check that scans the state, as world's does, then costs that scan per event: slow on long tapes; narrow it with --from/--to)")
    .option('--json', 'print one JSON object as the last line of stdout')
    .option('--latency', 'run the latency model (docs/latency.md): each event arrives at its recorded time / speed (1 at --speed max) into a bounded FIFO queue; any option below turns it on too');
  return addKafkaSecurityOptions(addLatencyOptions(command))
    .addHelpText('after', '\nLatency: tapedeck replay t.tape --service-time exp:20us --p99 8.2ms --report latency.html\nAt several speeds, with the headroom: tapedeck rehearse --help')
    .action(async (tape: string, flags: ReplayFlags, cmd: Command) => {
      const latencyOn = flags.latency === true || LATENCY_FLAGS.some((o) => flags[o] !== undefined);
      if (latencyOn && (flags.checkDeterminism || flags.toKafka)) {
        throw new TapedeckError('E_USAGE', `the latency model runs in a replay through the engine; it cannot be combined with ${flags.toKafka ? '--to-kafka' : '--check-determinism'}`);
      }
      if (flags.checkDeterminism) {
        process.exitCode = checkDeterminism(tape, cmd);
        return;
      }
      if (flags.toKafka) {
        process.exitCode = await republish(tape, flags);
        return;
      }
      for (const o of ['brokers', 'topic', 'positionFile', 'resume'] as const) {
        if (flags[o] !== undefined) throw new TapedeckError('E_USAGE', `${flagName(o)} is for --to-kafka`);
      }
      if (anyKafkaSecurityFlag(flags)) throw new TapedeckError('E_USAGE', 'TLS and SASL options are for --to-kafka');
      if (latencyOn && flags.workers !== undefined) throw new TapedeckError('E_USAGE', 'the latency model runs with the single-threaded replay; drop --workers');
      const latency = latencyOn ? latencyOptionsFrom(flags, [{ name: 'the tape being replayed', path: tape }, engineFile(flags.engine)]) : undefined;
      const bar = progress('replaying');
      let result: ReplayResult & { workers?: number; eventsPerWorker?: readonly number[] };
      if (flags.workers !== undefined) {
        const conflicting = (['from', 'to', 'fromTime', 'toTime', 'checkpointDigests'] as const).filter((o) => flags[o] !== undefined);
        if (flags.speed !== 'max') conflicting.push('speed' as never);
        if (conflicting.length > 0) {
          throw new TapedeckError('E_USAGE', `--workers replays the whole tape at --speed max; it cannot be combined with ${conflicting.map(flagName).join(', ')}`);
        }
        result = await replayTapeSharded(tape, {
          engineSpec: flags.engine,
          workers: flags.workers,
          paranoid: flags.paranoid === true,
          onProgress: (done, total) => bar.update(done, total),
        });
      } else {
        const engine = flags.engine === undefined ? undefined : await loadEngine(flags.engine);
        result = replayTape(tape, {
          engine,
          fromSeq: flags.from,
          toSeq: flags.to,
          fromTimeUs: flags.fromTime,
          toTimeUs: flags.toTime,
          paranoid: flags.paranoid === true,
          speed: flags.speed,
          collectDigests: flags.checkpointDigests === true,
          latency,
          onPaced: notePaced,
          onProgress: (done, total) => bar.update(done, total),
        });
      }
      bar.stop();
      if (result.latency !== undefined) {
        const l = result.latency;
        if (flags.saveServiceTimes !== undefined && result.serviceTimes !== undefined) writeEmpirical(flags.saveServiceTimes, result.serviceTimes);
        if (flags.report !== undefined) {
          writeReport(flags.report, {
            tape: result.tape,
            engine: result.engine,
            events: result.events,
            serviceTime: l.serviceTime,
            seed: l.seed,
            queueCapacity: l.queueCapacity,
            whenFull: l.whenFull,
            tickUs: l.tickUs,
            budgetLimits: latency?.budget ?? null,
            rows: [l],
            headroom: null,
          });
        }
        const { serviceTimes: _omit, ...rest } = result;
        void _omit;
        result = rest;
      }
      if (flags.json) {
        printJson(result);
      } else {
        const range = result.toSeq === null ? ' (empty range)' : result.fromSeq > 0 || flags.to !== undefined || flags.toTime !== undefined ? ` (events ${result.fromSeq}..${result.toSeq}, from the snapshot at ${result.startedAtSeq})` : '';
        line(`replayed ${count(result.events, 'event')}${range} of ${result.tape} through ${result.engine.name} ${result.engine.version} (recorded with ${result.recordedWith.name} ${result.recordedWith.version})`);
        const threads = result.workers === undefined ? '' : ` on ${result.workers} worker threads (events per worker: ${result.eventsPerWorker!.map(fmt).join(', ')})`;
        line(`  ${fmtSeconds(result.elapsedMs)}, ${fmt(result.eventsPerSec)} events/s${threads}, ${count(result.updatesEmitted, 'update')} emitted`);
        line(`  ${fmt(result.checkpointsVerified)} of ${count(result.checkpointsTotal, 'checkpoint')} verified: ${count(result.mismatches, 'mismatch', 'mismatches')}, ${count(result.invariantViolations, 'invariant violation')}`);
        for (const m of result.mismatchList.slice(0, 10)) line(`  MISMATCH  checkpoint after event ${m.nextSeq - 1}: recorded ${m.expected}, replayed ${m.actual}`);
        if (result.determinismViolation !== null) {
          const v = result.determinismViolation;
          line(`  NONDETERMINISTIC  engine code called ${v.api} while applying event ${v.seq}${v.event === null ? '' : `: ${JSON.stringify(v.event)}`}; the replay stopped there`);
          line('            engines must take time from ctx.nowUs and randomness from ctx.random');
        }
        if (result.mismatches > 0 && result.redaction !== null) {
          line(`  NOTE      the tape was recorded with redaction (${JSON.stringify(result.redaction)}): fields were removed or hashed before they reached the tape; checkpoints taken from unredacted events (another capture, production) will differ for that reason`);
        }
        if (result.divergence !== null) printDivergence(result.divergence, `${result.recordedWith.name} ${result.recordedWith.version}`, `${result.engine.name} ${result.engine.version}`);
        else if (result.divergenceNote !== null) line(`  NOTE      ${result.divergenceNote}`);
        for (const v of result.invariantViolationList.slice(0, 10)) {
          for (const x of v.violations.slice(0, 5)) line(`  VIOLATION after event ${v.nextSeq - 1}: ${x.code}: ${x.message}`);
        }
        if (result.latency !== undefined) printLatency(result.latency, flags);
        line(result.ok ? 'OK' : 'FAILED');
      }
      process.exitCode = result.ok ? EXIT.ok : EXIT.checkFailed;
    });
}

function printLatency(l: NonNullable<ReplayResult['latency']>, flags: ReplayFlags): void {
  const seed = l.seed === null ? '' : `, seed ${l.seed}`;
  line(`  latency model: ${l.speed}x the recorded rate, service time ${l.serviceTime}${seed}, queue ${fmt(l.queueCapacity)} slots (${l.whenFull} when full), tick ${formatUs(l.tickUs)}`);
  printTable(['', 'p50', 'p95', 'p99', 'p99.9', 'max', 'mean'], [['latency ms', ...percentileCells(l.latencyMs)]]);
  line(`  mean service ${formatUs(l.meanServiceMs * 1000)}, mean wait ${formatUs(l.meanWaitMs * 1000)}; queue depth max ${fmt(l.maxQueueDepth)}; ${fmt(l.blockedEvents)} arrivals blocked for ${formatUs(l.blockedMs * 1000)} in all; ${fmt(l.dropped)} dropped`);
  line(`  arrivals ${fmt(l.arrivalRatePerSec)}/s, served ${fmt(l.throughputPerSec)}/s of virtual time`);
  printBudget(l.budget);
  if (flags.report !== undefined) line(`  report written to ${flags.report}`);
  if (flags.saveServiceTimes !== undefined) line(`  service times saved to ${flags.saveServiceTimes} (use --service-time empirical:${flags.saveServiceTimes})`);
}

/**
 * Run this replay (minus --check-determinism) in two child processes and compare the digests
 * each took at every checkpoint: an engine that depends on anything outside the tape (time,
 * randomness, addresses, iteration order of unordered structures) shows up as a difference.
 */
function checkDeterminism(tape: string, cmd: Command): number {
  const passOn: string[] = [];
  for (const option of ['engine', 'from', 'to', 'fromTime', 'toTime'] as const) {
    const value = cmd.getOptionValue(option) as unknown;
    if (value !== undefined) passOn.push(flagName(option), String(value));
  }
  const run = () => {
    const r = spawnSync(process.execPath, [process.argv[1], 'replay', tape, ...passOn, '--checkpoint-digests', '--json'], { encoding: 'utf8', maxBuffer: 256 << 20 });
    const lines = r.stdout.trim().split('\n');
    try {
      return JSON.parse(lines[lines.length - 1]) as { checkpointDigests?: { nextSeq: number; digest: string }[]; ok: boolean };
    } catch {
      throw new TapedeckError('E_CHILD_REPLAY', `a replay process failed (exit ${r.status}): ${r.stderr.trim()}`);
    }
  };
  const a = run();
  const b = run();
  const da = a.checkpointDigests ?? [];
  const db = b.checkpointDigests ?? [];
  let first: { nextSeq: number; a: string; b: string } | null = null;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    if (da[i]?.digest !== db[i]?.digest || da[i]?.nextSeq !== db[i]?.nextSeq) {
      first = { nextSeq: (da[i] ?? db[i]).nextSeq, a: da[i]?.digest ?? '(none)', b: db[i]?.digest ?? '(none)' };
      break;
    }
  }
  const report = { ok: first === null, tape, checkpointsCompared: Math.min(da.length, db.length), firstDifference: first, runs: [{ ok: a.ok }, { ok: b.ok }] };
  if (cmd.getOptionValue('json')) printJson(report);
  else if (first === null) line(`deterministic: two processes agree at all ${da.length} checkpoints of ${tape}`);
  else line(`NOT DETERMINISTIC: the two processes differ at the checkpoint after event ${first.nextSeq - 1}: ${first.a} vs ${first.b}`);
  return first === null ? EXIT.ok : EXIT.checkFailed;
}

async function republish(tape: string, flags: ReplayFlags): Promise<number> {
  if (flags.brokers === undefined || flags.topic === undefined) throw new TapedeckError('E_USAGE', '--to-kafka needs --brokers HOST:PORT and --topic NAME');
  const conflicting = (['fromTime', 'toTime', 'paranoid', 'checkDeterminism', 'checkpointDigests'] as const).filter((o) => flags[o] !== undefined);
  if (conflicting.length > 0) {
    throw new TapedeckError('E_USAGE', `--to-kafka cannot be combined with ${conflicting.map(flagName).join(', ')}`);
  }
  if (flags.resume && flags.positionFile === undefined) throw new TapedeckError('E_USAGE', '--resume with --to-kafka needs --position-file FILE (where an earlier run kept its last acknowledged event)');
  if (flags.resume && flags.from !== undefined) throw new TapedeckError('E_USAGE', 'give --resume or --from, not both');
  refuseOutputsOverInputs([{ name: '--position-file', path: flags.positionFile }], [{ name: 'the tape being replayed', path: tape }, engineFile(flags.engine), ...kafkaSecurityFiles(flags)]);
  const positions = flags.positionFile === undefined ? null : new PositionFile(flags.positionFile, tape, flags.topic);
  const fromSeq = flags.resume ? positions!.resumeFrom() : flags.from;
  if (flags.resume) process.stderr.write(`tapedeck: resuming at event ${fromSeq} (${flags.positionFile})\n`);
  const engine = await engineForTape(tape, flags.engine);
  const bar = progress('republishing');
  const keeps = positions === null ? 'without a summary of how far it got' : `(${flags.positionFile} keeps the last acknowledged event)`;
  const stop = stopOnSignals(
    (sig) => `the broker or a sender thread has not answered yet (the requests in flight are waited for at most ${STOPPED_SETTLE_MS / 1000} s); ${sig} again quits at once ${keeps}`,
  );
  const result = await republishTape(tape, {
    brokers: flags.brokers,
    security: kafkaSecurityFrom(flags, (m) => process.stderr.write(`tapedeck: ${m}\n`)),
    topic: flags.topic,
    engine,
    engineSpec: flags.engine,
    speed: flags.speed,
    valueFormat: flags.valueFormat,
    fromSeq,
    toSeq: flags.to,
    senders: flags.workers,
    onAcknowledged: positions === null ? undefined : (lastAckedSeq) => positions.update(fromSeq ?? 0, lastAckedSeq),
    signal: stop.signal,
    onPaced: notePaced,
    onProgress: (sent, total) => bar.update(sent, total),
  }).finally(() => {
    stop.release();
    positions?.flush();
  });
  bar.stop();
  const stoppedBy = result.stopped ? stop.name() : null;
  if (flags.json) printJson({ ...result, stoppedBy });
  else {
    const threads = result.senders === 0 ? 'sent from the main thread' : `${count(result.senders, 'sender thread')}`;
    line(`republished ${count(result.events, 'event')} of ${tape} to ${result.topic} (${count(result.targetPartitions, 'partition')}, ${result.valueFormat} values, ${threads})`);
    const requested = result.requestedEventsPerSec === null ? 'as fast as the broker takes them (--speed max)' : `requested ${fmt(result.requestedEventsPerSec)} events/s (recorded ${fmt(result.recordedEventsPerSec ?? 0)} x ${result.speed})`;
    line(`  ${fmtSeconds(result.elapsedMs)}, achieved ${fmt(result.eventsPerSec)} events/s; ${requested}`);
    if (result.remappedPartitions.length > 0) {
      line(`  the topic has fewer partitions than the tape: ${result.remappedPartitions.map((m) => `${m.from}->${m.to}`).join(', ')}`);
    }
    line(`  last acknowledged event: ${result.lastAckedSeq ?? 'none'}`);
    if (stoppedBy !== null) {
      const next = result.lastAckedSeq === null ? result.fromSeq : result.lastAckedSeq + 1;
      line(`stopped by ${stoppedBy}: events up to ${result.lastAckedSeq ?? 'none'} were acknowledged; continue with --from ${next}`);
    }
    if (result.unansweredRequests > 0) {
      line(
        `  Kafka had not answered ${count(result.unansweredRequests, 'request')} ${STOPPED_SETTLE_MS / 1000} s after the stop; their events count as not acknowledged, ` +
          'but the broker may have taken them: sent again, they would arrive twice',
      );
    }
    if (result.abandonedThread !== undefined) {
      line(`  ${result.abandonedThread} sent nothing for ${SENDER_STOPPED_QUIET_MS / 1000} s after the stop and was ended (is the engine's codec stuck?); how far it got is from its last report`);
    }
  }
  return EXIT.ok;
}

/**
 * `--position-file`: where a republish keeps its last acknowledged event, for `--resume` after
 * a run that ended without a summary (killed, or the machine lost). Written to a temporary
 * file, synced and renamed into place, at most 4 times a second and at the end; what it says is
 * never ahead of what Kafka acknowledged.
 */
class PositionFile {
  private pending: { fromSeq: number; lastAckedSeq: number | null } | null = null;
  private writtenAt = 0;

  constructor(
    private readonly path: string,
    private readonly tape: string,
    private readonly topic: string,
  ) {}

  /** The event after the last acknowledged one the file names (the run's first event when none was). */
  resumeFrom(): number {
    let saved: { tape?: unknown; topic?: unknown; fromSeq?: unknown; lastAckedSeq?: unknown };
    try {
      saved = JSON.parse(readFileSync(this.path, 'utf8')) as typeof saved;
    } catch (cause) {
      throw new TapedeckError('E_USAGE', `--resume: cannot read the position file ${this.path}: ${(cause as Error).message}`, { cause });
    }
    if (saved.tape !== resolve(this.tape) || saved.topic !== this.topic) {
      throw new TapedeckError('E_USAGE', `--resume: ${this.path} is the position of ${String(saved.tape)} sent to ${String(saved.topic)}, not of ${resolve(this.tape)} sent to ${this.topic}`);
    }
    const last = saved.lastAckedSeq;
    const from = saved.fromSeq;
    if (!Number.isSafeInteger(from) || (last !== null && !Number.isSafeInteger(last))) throw new TapedeckError('E_USAGE', `--resume: ${this.path} does not hold a position`);
    return last === null ? (from as number) : (last as number) + 1;
  }

  update(fromSeq: number, lastAckedSeq: number | null): void {
    this.pending = { fromSeq, lastAckedSeq };
    if (performance.now() - this.writtenAt >= 250) this.flush();
  }

  flush(): void {
    if (this.pending === null) return;
    const text = JSON.stringify({ tape: resolve(this.tape), topic: this.topic, ...this.pending, updatedAt: new Date().toISOString() }) + '\n';
    const temporary = `${this.path}.writing`;
    try {
      const fd = openSync(temporary, 'w');
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, this.path);
      syncFolderOf(this.path);
    } catch (error) {
      throw fileWriteError('write the position file', this.path, error);
    }
    this.pending = null;
    this.writtenAt = performance.now();
  }
}
