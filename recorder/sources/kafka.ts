// Recording from Kafka topics (kafkajs). Every partition of every topic is read; each record
// keeps its topic (the block's stream), partition, offset (the source position), key, headers
// and timestamp (Kafka's milliseconds, stored as microseconds).
//
// The tape's stored positions are the source of truth: a position is the next offset of each
// topic-partition, written in the same transaction as the events it covers (see record.ts).
// On every (re)assignment the consumer seeks each partition to the tape's position; a
// partition the tape has not seen starts from the committed offset of the group given with
// --group (recorders sharing a group), or else from the beginning with --from-beginning, or
// the end. A record whose offset is below the tape's position (a
// re-delivery after a rebalance or a reconnect) is skipped, and a batch that starts past it
// (a seek that did not take) is refused and the partition sought back, so nothing is recorded
// twice and nothing is skipped. With --group, offsets are committed to the group only after
// the tape has committed them, for monitoring and for recorders that share the group: when
// reading stops, the consumer stays in the group (its partitions paused) until close(), so
// that the tape's last commits, made after the reader stopped, reach the group too.
//
// Values: --value-format json (default) reads the event's JSON form {"type", "payload"},
// --value-format codec the engine codec's bytes. A null value or a value the codec rejects is
// a reject (strict: the run stops there; --quarantine: it is kept with its reason, in the
// same transaction that advances the position past it).

import { isUtf8 } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type Consumer, type KafkaConfig, type KafkaMessage } from 'kafkajs';

/** What a client needs to reach a secured cluster: kafkajs's ssl and sasl settings, as cli/kafka-security.ts builds them. */
export interface KafkaClientSecurity {
  readonly client?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
}
import { TapedeckError } from '../../engine/errors.js';
import type { EventCodec, JsonEvent } from '../../engine/types.js';
import { type EventHeader, MAX_BLOCK_VALUE, type PayloadWriter } from '../../tape/block.js';
import { within } from '../../tape/threads.js';
import type { LineTransform } from '../../tape/ndjson.js';
import { REJECTED, type Source, type SourceItem, type SourceRecord, type SourceReject, type SourceSpec } from '../source.js';
import { Redactor } from '../redact.js';
import { FastRecord } from './kafka-decode.js';
import { FINAL_COMMIT_WAIT_MS, LEAVE_WAIT_MS, type ValueFormat } from '../kafka-options.js';

export { VALUE_FORMATS, type ValueFormat } from '../kafka-options.js';

/** Next offset to read, per topic and partition: the Kafka source's resume position. */
export interface KafkaPosition {
  readonly next: Readonly<Record<string, Readonly<Record<string, number>>>>;
}

export interface KafkaSourceOptions<E> {
  readonly brokers: readonly string[];
  readonly topics: readonly string[];
  readonly codec: EventCodec<E>;
  readonly group?: string;
  readonly clientId?: string;
  readonly valueFormat?: ValueFormat;
  /** Partitions with no stored position and no committed group offset start at the beginning (else at the end). */
  readonly fromBeginning?: boolean;
  /** The tape's stored position (on --resume). */
  readonly from?: KafkaPosition;
  /** Stop at the end offsets seen at start. */
  readonly untilCaughtUp?: boolean;
  /** Stop after this many records (accepted or rejected) in this run. */
  readonly maxEvents?: number;
  /** Stop after this long (ms) from the start of consumption. */
  readonly durationMs?: number;
  /** Raw values of rejects are kept up to this many bytes. */
  readonly maxRawBytes?: number;
  /** Warnings that do not stop the capture (a failed offset commit to the group). */
  readonly onWarning?: (message: string) => void;
  /** Redaction (recorder/redact.ts) of JSON values and keys, and what the tape's metadata says about it. */
  readonly redaction?: { readonly transform: LineTransform; readonly record: unknown };
  /** Keep the raw bytes of rejected records (default true). */
  readonly keepRaw?: boolean;
  /** TLS and SASL settings for kafkajs (cli/kafka-security.ts), and what may be said about them. */
  readonly security?: KafkaClientSecurity & { readonly summary?: unknown };
  /**
   * The bounded channel between the consumer and the engine: at most this many records are
   * handed over at a time; the consumer waits (kafkajs stops fetching) until they are taken.
   */
  readonly channelCapacity?: number;
  /** kafkajs connection timeout, ms. */
  readonly connectionTimeoutMs?: number;
  /**
   * For the recorder's Kafka reader thread (recorder/kafka-worker.ts): hand out the records as
   * kafkajs gives them, in KafkaRawRun items (one per hand-off), not parsed, checked or
   * redacted (`convert` does that), nor counted in the positions (the main thread keeps them).
   */
  readonly rawValues?: boolean;
  /**
   * For the recorder's Kafka reader thread: prepare() already ran on the main thread (the
   * topics exist; `from` holds every partition's start), and these are the end offsets it saw
   * for --until-caught-up (null without it). The reader's prepare() then asks Kafka nothing.
   */
  readonly preparedEnds?: Record<string, Record<string, number>> | null;
}

/**
 * Fetch sizes: a fetch's records are decoded all at once, and the next fetch goes out only
 * when they have been handed over, so fetches of a few MiB keep the reader and the recorder
 * busy in turn rather than in long bursts (kafkajs's defaults are 10 MiB and 1 MiB per
 * partition). At 2 MiB a round trip of 10 ms still allows 200 MiB/s.
 */
const FETCH_MAX_BYTES = 2 << 20;
/**
 * How long a fetch waits at the broker for records that have not come yet (kafkajs's default
 * is 5 s; the Java client's fetch.max.wait.ms, 500 ms). The consumer leaves its group only once its fetch in flight has returned, so this
 * bounds how long a recording takes to end once it is caught up (and, with every partition
 * paused at the end in a shared group, how long kafkajs sleeps between looks). A fetch returns
 * as soon as records are there, so capture speed does not depend on it; an idle capture asks
 * twice a second.
 */
const FETCH_MAX_WAIT_MS = 500;
const FETCH_MAX_BYTES_PER_PARTITION = 512 << 10;

/** How long the source waits for Kafka before handing the recorder an empty batch, so it can commit what it has. */
const IDLE_BATCH_MS = 100;
const DEFAULT_MAX_RAW_BYTES = 1 << 20;

/**
 * Records of one partition handed out as kafkajs gave them (rawValues): the recorder's reader
 * packs them (KafkaSource.rawRecord tells how to read one) without an object per record.
 */
export interface KafkaRawRun {
  readonly kafkaRun: true;
  readonly topic: string;
  readonly stream: number;
  readonly partition: number;
  readonly messages: KafkaMessage[];
}

export const isRawRun = (item: unknown): item is KafkaRawRun => (item as Partial<KafkaRawRun>).kafkaRun === true;

/** Where a record is, for a message kafkajs gave: offset and timestamp as numbers (see rawRecord). */
export const messageOffset = (message: KafkaMessage): number => (message instanceof FastRecord ? message.offsetNumber : Number(message.offset));

interface Pending<E> {
  readonly items: SourceItem<E>[];
  readonly done: () => void;
}

/** Partition key in maps. */
const tp = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** Per-partition numbers keyed by tp(), as {topic: {partition: n}} (the form positions are stored in). */
function byTopic(values: ReadonlyMap<string, number>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [key, value] of values) {
    const [topic, partition] = key.split('\u0000');
    (out[topic] ??= {})[partition] = value;
  }
  return out;
}

/** The inverse of byTopic. */
function byPartitionKey(values: Readonly<Record<string, Readonly<Record<string, number>>>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [topic, partitions] of Object.entries(values)) {
    for (const [partition, value] of Object.entries(partitions)) out.set(tp(topic, Number(partition)), value);
  }
  return out;
}

export class KafkaSource<E> implements Source<E> {
  readonly name = 'kafka';
  readonly live = true;
  /** Records read but not committed are read again from the tape's position (while the topic's retention holds them). */
  readonly rereadable = true;
  readonly description: unknown;
  private readonly kafka: Kafka;
  /**
   * The TLS and SASL settings as given, copied before the client sees them (kafkajs adds its
   * SASL authenticator, a function, to the object it is handed), for the reader thread; null
   * when they cannot be copied to another thread.
   */
  private readonly securityForWorker: KafkaClientSecurity['client'] | null;
  private readonly group: string;
  /** --group given: partitions the tape has no position for start at the group's committed offsets, and offsets are committed back. */
  private readonly sharedGroup: boolean;
  private readonly valueFormat: ValueFormat;
  private consumer: Consumer | null = null;
  /** The consumer runs (kafkajs's run() returned): offsets can be committed to the group. */
  private running = false;
  private stopped = false;
  /** The newest tape position not yet sent to the group, as offsets (committed()). */
  private commitWanted: { topic: string; partition: number; offset: string }[] | null = null;
  /** The partitions the group gave this consumer at its last join (tp keys): the ones it commits. */
  private readonly assigned = new Set<string>();
  /** Commits to the group in flight, one at a time: each sends the newest position (sendCommits()). */
  private commitsSending: Promise<void> | null = null;
  private failure: Error | null = null;
  /** Next offset per partition as of the last fully processed batch (plus the tape's start). */
  private readonly baseline = new Map<string, number>();
  /** Next offset per partition as handed to the recorder (what a record must not go below). */
  private readonly expected = new Map<string, number>();
  private readonly topicIndex = new Map<string, number>();
  /** tp(topic, partition) per stream index and partition, made once (taken()). */
  private readonly keysByStream: string[][] = [];
  /** End offsets (high watermarks) at start, for --until-caught-up. */
  private endOffsets: Map<string, number> | null = null;
  private handedOut = 0;
  /** With --until-caught-up: the offsets from where each partition starts to its end offset at start, summed (prepare()). */
  private recordsToCatchUp: number | null = null;
  /** Most records waiting in the channel at once. */
  maxDepth = 0;
  /** Records handed over and not yet taken by the recorder. */
  get depth(): number {
    let n = 0;
    for (const entry of this.queue) n += entry.items.length;
    return n;
  }
  /** Time the consumer spent waiting for the engine to take records (backpressure), ms. */
  blockedMs = 0;
  private startedMs = 0;
  private queue: Pending<E>[] = [];
  private wake: (() => void) | null = null;

  constructor(private readonly options: KafkaSourceOptions<E>) {
    if (options.topics.length === 0) throw new TapedeckError('E_USAGE', '--source kafka needs at least one --topic');
    if (options.brokers.length === 0) throw new TapedeckError('E_USAGE', '--source kafka needs --brokers HOST:PORT[,HOST:PORT...]');
    options.topics.forEach((t, i) => this.topicIndex.set(t, i));
    // Without --group, a group of its own: the tape's positions drive the capture, and two
    // recorders started without a group never split the partitions between them by surprise.
    this.sharedGroup = options.group !== undefined;
    this.group = options.group ?? `tapedeck-record-${process.pid}-${Date.now().toString(36)}`;
    this.valueFormat = options.valueFormat ?? 'json';
    // The tape records where it read from, never credentials.
    this.description = {
      kind: 'kafka',
      brokers: [...options.brokers],
      topics: [...options.topics],
      group: options.group ?? null,
      valueFormat: this.valueFormat,
      ...(options.redaction === undefined ? {} : { redaction: options.redaction.record }),
      ...(options.security?.summary === undefined ? {} : { security: options.security.summary }),
    };
    if (options.redaction !== undefined && this.valueFormat !== 'json') {
      throw new TapedeckError('E_USAGE', '--redact and --hash work on JSON values: they cannot be combined with --value-format codec');
    }
    for (const [topic, partitions] of Object.entries(options.from?.next ?? {})) {
      if (!this.topicIndex.has(topic)) continue;
      for (const [partition, next] of Object.entries(partitions)) {
        this.baseline.set(tp(topic, Number(partition)), next);
        this.expected.set(tp(topic, Number(partition)), next);
      }
    }
    this.securityForWorker = options.security?.client === undefined ? undefined : copyable(options.security.client);
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'tapedeck',
      brokers: [...options.brokers],
      logLevel: logLevel.NOTHING,
      ...options.security?.client,
      connectionTimeout: options.connectionTimeoutMs ?? 10_000,
      // Connecting at start (admin): a few quick retries, so that a wrong address is reported in seconds.
      // The consumer has its own, longer retry budget to ride out a broker restart.
      retry: { retries: 4, initialRetryTime: 200, maxRetryTime: 2_000 },
    });
  }

  /**
   * The reader thread's consumer (recorder/pipeline.ts, KafkaPipeline): the same options, in
   * raw mode, starting from the positions prepare() worked out; null when the TLS or SASL
   * settings cannot be handed to another thread.
   */
  workerSpec(): { spec: SourceSpec; large: boolean } | null {
    const o = this.options;
    const options: Record<string, unknown> = {
      brokers: [...o.brokers],
      topics: [...o.topics],
      group: o.group,
      clientId: o.clientId,
      valueFormat: this.valueFormat,
      fromBeginning: o.fromBeginning,
      from: this.startPositions(),
      untilCaughtUp: o.untilCaughtUp,
      preparedEnds: this.preparedEnds(),
      maxEvents: o.maxEvents,
      durationMs: o.durationMs,
      channelCapacity: o.channelCapacity,
      connectionTimeoutMs: o.connectionTimeoutMs,
      security: this.securityForWorker === undefined ? undefined : { client: this.securityForWorker },
      keepRaw: o.keepRaw,
      maxRawBytes: o.maxRawBytes,
      // What the reader needs to check and convert values itself (pipeline.ts): the redaction
      // rules, or 'main' when they cannot be rebuilt on another thread (the recorder converts).
      redaction: o.redaction === undefined ? null : o.redaction.transform instanceof Redactor ? o.redaction.transform.parts() : 'main',
    };
    if (this.securityForWorker === null || copyable(options) === null) return null;
    return { spec: { kind: 'kafka', options }, large: true };
  }

  /** Hand a warning from the reader thread to this source's listener. */
  warn(message: string): void {
    this.options.onWarning?.(message);
  }

  /** The position after `item`: every partition's next offset as the recorder has it then. */
  resumeAfter(item: SourceItem<E>): KafkaPosition {
    const next = byTopic(this.baseline);
    const at = this.locate(item);
    (next[at.topic] ??= {})[at.partition] = at.offset + 1;
    return { next };
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  async *batches(): AsyncIterable<readonly SourceItem<E>[]> {
    const consumer = this.kafka.consumer({
      groupId: this.group,
      allowAutoTopicCreation: false,
      maxBytes: FETCH_MAX_BYTES,
      maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
      maxWaitTimeInMs: FETCH_MAX_WAIT_MS,
      retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    let handedOver: Pending<E> | null = null;
    this.consumer = consumer;
    try {
      await this.start(consumer);
      while (true) {
        if (this.failure !== null) throw this.failure;
        if (this.caughtUp()) this.stopped = true;
        const entry = this.queue.shift();
        if (entry === undefined) {
          if (this.stopped) break;
          if (this.options.durationMs !== undefined && Date.now() - this.startedMs >= this.options.durationMs) {
            this.stopped = true;
            break;
          }
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            setTimeout(resolve, IDLE_BATCH_MS);
          });
          this.wake = null;
          if (this.queue.length === 0) yield [];
          continue;
        }
        handedOver = entry;
        yield entry.items;
        handedOver = null;
        // The recorder has taken every item of the batch: its positions become the baseline
        // (raw runs: the main thread keeps the positions).
        if (!this.options.rawValues) for (const item of entry.items) {
          const at = this.locate(item);
          this.baseline.set(tp(at.topic, at.partition), at.offset + 1);
        }
        entry.done();
      }
    } finally {
      this.stopped = true;
      // Release the fetches waiting on the channel (the recorder stopped, or failed mid-batch),
      // so that the consumer can stop.
      handedOver?.done();
      for (const entry of this.queue) entry.done();
      this.queue = [];
      let keep = this.sharedGroup && this.running && this.failure === null;
      if (keep) {
        // The tape commits what it was handed after this: the consumer stays in the group,
        // fetching nothing, until close() has committed the tape's last position. (kafkajs
        // refuses a pause while it restarts the consumer: then it leaves now.)
        try {
          consumer.pause(this.options.topics.map((topic) => ({ topic })));
        } catch {
          keep = false;
        }
      }
      if (!keep) await this.close();
    }
  }

  /**
   * The recording is over (recordTape and ingest call it, however it ended): send the group
   * the tape's last position, if any is still to go, and leave. Waits at most
   * FINAL_COMMIT_WAIT_MS for the group; the tape holds its events either way.
   */
  async close(): Promise<void> {
    const consumer = this.consumer;
    if (consumer === null) return;
    this.consumer = null;
    this.stop();
    const sending = this.commitsSending;
    if (sending !== null && !(await within(sending.then(() => true), FINAL_COMMIT_WAIT_MS, false))) {
      this.options.onWarning?.(
        `group ${this.group} did not take the tape's last position within ${FINAL_COMMIT_WAIT_MS / 1000} s; its offsets may lag the tape (the tape holds every event it reports)`,
      );
    }
    this.running = false;
    // Leaving waits for the broker's answer; one that does not answer (gone, frozen) would hold
    // the end of the recording for kafkajs's request timeouts and retries (50 s was seen).
    if (!(await within(consumer.disconnect().then(() => true, () => true), LEAVE_WAIT_MS, false))) {
      this.options.onWarning?.(`the broker did not answer the consumer's leaving group ${this.group} within ${LEAVE_WAIT_MS / 1000} s; stopped waiting (the broker drops this consumer from the group once its session times out)`);
    }
  }

  /** After the tape committed `position`, tell the group (monitoring, shared groups). */
  // Also after reading stopped (the consumer is kept in the group for it until close()).
  committed(position: unknown): void {
    if (this.consumer === null || !this.running || !this.sharedGroup || this.failure !== null) return;
    const next = (position as KafkaPosition).next;
    // Only the partitions this consumer holds now: the tape's position for one that went to
    // another recorder in the group is behind that recorder's, and would move the group back.
    const offsets = Object.entries(next).flatMap(([topic, partitions]) =>
      Object.entries(partitions)
        .filter(([partition]) => this.assigned.has(tp(topic, Number(partition))))
        .map(([partition, offset]) => ({ topic, partition: Number(partition), offset: String(offset) })),
    );
    if (offsets.length === 0) return;
    // Each position holds every partition's offset, so the newest stands for those before it:
    // one commit at a time, of the newest, and none goes out of order.
    this.commitWanted = offsets;
    this.commitsSending ??= this.sendCommits(this.consumer);
  }

  private async sendCommits(consumer: Consumer): Promise<void> {
    for (let offsets = this.commitWanted; offsets !== null; offsets = this.commitWanted) {
      this.commitWanted = null;
      try {
        await consumer.commitOffsets(offsets);
      } catch (error) {
        this.options.onWarning?.(`could not commit offsets to group ${this.group} (the tape holds them; capture goes on): ${(error as Error).message}`);
      }
    }
    this.commitsSending = null;
  }

  private caughtUp(): boolean {
    if (this.endOffsets === null) return false;
    for (const [key, end] of this.endOffsets) {
      if ((this.expected.get(key) ?? 0) < end) return false;
    }
    return true;
  }

  private prepared = false;

  /**
   * Connect, check the topics and work out where each partition starts, before the recorder
   * creates the tape: a broker that cannot be reached, refuses the credentials or presents an
   * untrusted certificate leaves no file behind.
   */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    const ends = this.options.preparedEnds;
    if (ends !== undefined) {
      if (ends !== null) this.endOffsets = byPartitionKey(ends);
      this.prepared = true;
      return;
    }
    // Fewer retries than the consumer: an unreachable broker at start is reported within seconds.
    const admin = this.kafka.admin({ retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 } });
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing = this.options.topics.filter((t) => !existing.has(t));
      if (missing.length > 0) throw new TapedeckError('E_KAFKA_TOPIC', `topic ${missing.join(', ')} does not exist on ${this.options.brokers.join(',')}`);
      // Where each partition starts: the tape's position; else, with --group, the group's
      // committed offset; else the beginning (--from-beginning) or the end.
      const committed = new Map<string, number>();
      if (this.sharedGroup) for (const t of await admin.fetchOffsets({ groupId: this.group, topics: [...this.options.topics] })) {
        for (const p of t.partitions) if (Number(p.offset) >= 0) committed.set(tp(t.topic, p.partition), Number(p.offset));
      }
      const ends = new Map<string, number>();
      for (const topic of this.options.topics) {
        for (const p of await admin.fetchTopicOffsets(topic)) {
          const key = tp(topic, p.partition);
          const low = Number(p.low);
          const high = Number(p.high);
          ends.set(key, high);
          const start = this.expected.get(key) ?? committed.get(key) ?? (this.options.fromBeginning ? low : high);
          if (start < low) {
            throw new TapedeckError(
              'E_KAFKA_GAP',
              `${topic} partition ${p.partition}: the capture is at offset ${start}, but the topic now starts at ${low} ` +
                `(retention deleted offsets ${start}..${low - 1} before they were recorded); nothing was recorded past the gap. ` +
                (this.expected.has(key)
                  ? 'The tape keeps what it holds, sound; to capture what the topic holds now, record into a new tape (--from-beginning starts at the oldest offset kept)'
                  : `The group's committed offset is behind the topic's start; record with another --group, or reset this one's offsets`),
            );
          }
          this.expected.set(key, start);
          // Every partition's start goes into the tape's first position, so that a resume
          // continues partitions this run never got to from where this run would have started.
          if (!this.baseline.has(key)) this.baseline.set(key, start);
        }
      }
      if (this.options.untilCaughtUp) {
        this.endOffsets = ends;
        let records = 0;
        for (const [key, end] of ends) records += Math.max(0, end - (this.expected.get(key) ?? end));
        this.recordsToCatchUp = records;
      }
    } catch (error) {
      if (error instanceof TapedeckError) throw error;
      throw new TapedeckError('E_KAFKA_CONNECT', `cannot reach Kafka at ${this.options.brokers.join(',')}: ${(error as Error).message}`, { cause: error });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    this.prepared = true;
  }

  private async start(consumer: Consumer): Promise<void> {
    await this.prepare();
    if (this.caughtUp()) return;

    await consumer.connect();
    await consumer.subscribe({ topics: [...this.options.topics], fromBeginning: this.options.fromBeginning === true });
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      // Seek every assigned partition to where the capture is (the tape's position first).
      const assignment = event.payload.memberAssignment as Record<string, number[]>;
      this.assigned.clear();
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions) {
          this.assigned.add(tp(topic, partition));
          const next = this.expected.get(tp(topic, partition));
          if (next !== undefined) consumer.seek({ topic, partition, offset: String(next) });
        }
      }
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) {
        this.failure = new TapedeckError('E_KAFKA', `the Kafka consumer stopped: ${event.payload.error.message}`, { cause: event.payload.error });
        this.wake?.();
      }
    });
    this.startedMs = Date.now();
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, isRunning, isStale }) => {
        if (this.stopped || !isRunning() || isStale()) return;
        const topic = batch.topic;
        const partition = batch.partition;
        const key = tp(topic, partition);
        const messages = batch.messages;
        if (messages.length === 0) return;
        const expected = this.expected.get(key);
        if (expected !== undefined && Number(messages[0].offset) > expected) {
          // The fetch started past the tape's position (a seek that did not take): go back.
          consumer.seek({ topic, partition, offset: String(expected) });
          throw new KafkaSeekRetry(`${topic}/${partition}: fetched from ${messages[0].offset}, the tape is at ${expected}`);
        }
        const end = this.endOffsets?.get(key);
        const capacity = this.options.channelCapacity ?? Number.MAX_SAFE_INTEGER;
        const rawValues = this.options.rawValues === true;
        const stream = this.topicIndex.get(topic)!;
        let items: SourceItem<E>[] = [];
        let run: KafkaRawRun = { kafkaRun: true, topic, stream, partition, messages: [] };
        const handOff = async (): Promise<void> => {
          // The channel holds at most `capacity` records: this fetch waits (and kafkajs stops
          // fetching this partition) until the recorder has taken them.
          let chunk = items;
          let size = items.length;
          if (rawValues) {
            chunk = [run as unknown as SourceItem<E>];
            size = run.messages.length;
            run = { kafkaRun: true, topic, stream, partition, messages: [] };
          }
          items = [];
          if (size > this.maxDepth) this.maxDepth = size;
          const waitStarted = performance.now();
          await new Promise<void>((resolve) => {
            this.queue.push({ items: chunk, done: resolve });
            this.wake?.();
          });
          this.blockedMs += performance.now() - waitStarted;
        };
        // The partition's next offset, kept in a local while the batch is walked and stored
        // before anything else can look at it (a hand-off, the end of the batch).
        let next = expected;
        let waiting = 0;
        for (const message of messages) {
          const offset = messageOffset(message);
          if (next !== undefined && offset < next) continue; // already in the tape
          if (end !== undefined && offset >= end) break; // past the end seen at start
          if (this.options.maxEvents !== undefined && this.handedOut >= this.options.maxEvents) break;
          if (this.stopped && this.options.maxEvents === undefined) break;
          if (rawValues) run.messages.push(message);
          else items.push(this.recordItem(topic, stream, partition, offset, message, true));
          next = offset + 1;
          this.handedOut++;
          if (++waiting >= capacity) {
            this.expected.set(key, next);
            await handOff();
            waiting = 0;
            next = this.expected.get(key);
          }
        }
        if (next !== undefined) this.expected.set(key, next);
        if (this.options.maxEvents !== undefined && this.handedOut >= this.options.maxEvents) this.stopped = true;
        if (waiting > 0) await handOff();
      },
    });
    this.running = true;
  }

  /** Topic, partition and offset of an item this source handed out. */
  private locate(item: SourceItem<E>): { topic: string; partition: number; offset: number } {
    if ('reject' in item) return item.position as { topic: string; partition: number; offset: number };
    return { topic: this.options.topics[item.stream ?? 0], partition: item.partition, offset: item.position };
  }

  private reject(topic: string, partition: number, offset: number, value: Uint8Array | null, reasonCode: string, reason: string): SourceReject {
    return {
      reject: true,
      position: { topic, partition, offset },
      where: `kafka topic ${topic} partition ${partition} offset ${offset}`,
      reasonCode,
      reason,
      raw: value === null || this.options.keepRaw === false ? null : new Uint8Array(value.subarray(0, this.options.maxRawBytes ?? DEFAULT_MAX_RAW_BYTES)),
      rawLength: value?.length ?? 0,
    };
  }

  /**
   * A record as kafkajs gave it, as it is to be stored: checked and converted (convert()), or,
   * for the reader thread's raw runs when `convert` is false, with its value raw (the main
   * thread converts it, and fills the event in); a reject when the value is null, the timestamp
   * cannot be stored or (converting) the value is not an event. On the capture's hot path: no
   * closures, no copies of keys or values (the block builder copies the bytes it stores),
   * header names encoded once.
   */
  private recordItem(topic: string, stream: number, partition: number, offset: number, message: KafkaMessage, convert: boolean): SourceItem<E> {
    const value = message.value;
    if (value === null) return this.reject(topic, partition, offset, value, 'null-value', 'the record has a null value (a tombstone), not an event');
    const timestampMs = message instanceof FastRecord ? message.timestampMs : Number(message.timestamp);
    if (!storableTimestamp(timestampMs)) return this.badTimestamp(topic, partition, offset, value, timestampMs);
    const headers = message.headers === undefined ? NO_HEADERS : this.convertHeaders(message.headers);
    if (convert) return this.convert(topic, partition, offset, timestampMs * 1000, message.key, headers, value);
    return { timestampUs: timestampMs * 1000, partition, position: offset, stream, key: message.key, headers, payload: value, event: undefined as E };
  }

  /** The reject of a record whose timestamp a tape cannot hold (-1: the record has none). */
  private badTimestamp(topic: string, partition: number, offset: number, value: Uint8Array, timestampMs: number): SourceReject {
    const reason =
      timestampMs === -1
        ? 'the record has no timestamp (-1): a tape orders and paces events by their timestamps'
        : `the record's timestamp ${timestampMs} ms is outside what a tape holds (0 to ${MAX_TIMESTAMP_MS} ms)`;
    return this.reject(topic, partition, offset, value, 'bad-timestamp', reason);
  }

  /** A record of a raw run (the reader thread), as recordItem() makes it: its value raw unless `convert`. */
  rawRecord(run: KafkaRawRun, message: KafkaMessage, convert: boolean): SourceItem<E> {
    return this.recordItem(run.topic, run.stream, run.partition, messageOffset(message), message, convert);
  }

  /**
   * A record's item from its parts: the value parsed and checked (JSON, or the codec's bytes),
   * redaction applied; a reject when the value is not an event. The reader thread hands out
   * raw records (rawValues), and the recorder converts them with this.
   */
  convert(topic: string, partition: number, offset: number, timestampUs: number, key: Uint8Array | null, headers: readonly EventHeader[] | undefined, raw: Uint8Array): SourceItem<E> {
    let value = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let event: E;
    let payload: Uint8Array;
    const codec = this.options.codec;
    if (this.valueFormat === 'codec') {
      try {
        event = codec.decode(value);
      } catch (error) {
        return this.reject(topic, partition, offset, value, 'codec-rejected', `the ${codec.name} codec rejects the value: ${(error as Error).message}`);
      }
      payload = value;
    } else {
      if (!isUtf8(value)) return this.reject(topic, partition, offset, value, 'invalid-utf8', 'the value is not valid UTF-8');
      let json: unknown;
      const transform = this.options.redaction?.transform;
      try {
        json = JSON.parse(value.toString('utf8'));
      } catch (error) {
        // JSON.parse quotes part of the value in its message: not when it may hold redacted data.
        return this.reject(topic, partition, offset, value, 'invalid-json', transform === undefined ? `the value is not JSON: ${(error as Error).message}` : 'the value is not JSON');
      }
      if (json === null || typeof json !== 'object' || Array.isArray(json)) {
        return this.reject(topic, partition, offset, value, 'not-an-object', NOT_AN_OBJECT);
      }
      const o = json as Record<string, unknown>;
      if (transform !== undefined) {
        transform.apply(o);
        // Anything rejected from here on is kept redacted.
        value = Buffer.from(JSON.stringify(o), 'utf8');
      }
      const problem = jsonEventProblem(o);
      if (problem !== null) return this.reject(topic, partition, offset, value, problem.code, problem.reason);
      try {
        event = codec.fromJSON({ type: o.type, payload: o.payload } as JsonEvent);
        payload = codec.encode(event);
      } catch (error) {
        return this.reject(topic, partition, offset, value, 'codec-rejected', `the ${codec.name} codec rejects the event: ${(error as Error).message}`);
      }
    }
    return {
      timestampUs,
      partition,
      position: offset,
      stream: this.topicIndex.get(topic)!,
      key: this.options.redaction === undefined ? key : this.options.redaction.transform.key(key),
      headers,
      payload,
      event,
    } satisfies SourceRecord<E>;
  }

  /**
   * The codec, when values can take the fast path (fastEvent): JSON values, no redaction, and
   * a codec that writes its bytes into a block (encodedLength and encodeInto); else null.
   */
  fastCodec(): (EventCodec<E> & PayloadWriter<E>) | null {
    const codec = this.options.codec;
    if (this.valueFormat !== 'json' || this.options.redaction !== undefined) return null;
    if (codec.encodeInto === undefined || codec.encodedLength === undefined) return null;
    return codec as EventCodec<E> & PayloadWriter<E>;
  }

  /** The reject of the last fastEvent() that returned REJECTED. */
  lastReject: SourceReject | null = null;

  /**
   * convert() for a JSON value that is `bytes` [start, end), when fastCodec() says it can be:
   * the event (whose bytes the caller writes with fastCodec()'s encodeInto), or REJECTED, with
   * the reject convert() makes (the same reason) in lastReject. No view or copy of the value
   * unless it is rejected.
   */
  fastEvent(topic: string, partition: number, offset: number, bytes: Buffer, start: number, end: number): E | typeof REJECTED {
    const text = bytes.toString('utf8', start, end);
    // Invalid UTF-8 decodes to U+FFFD: only a value that has one needs the check.
    if (text.includes('\uFFFD') && !isUtf8(bytes.subarray(start, end))) {
      return this.fastReject(topic, partition, offset, bytes.subarray(start, end), 'invalid-utf8', 'the value is not valid UTF-8');
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return this.fastReject(topic, partition, offset, bytes.subarray(start, end), 'invalid-json', `the value is not JSON: ${(error as Error).message}`);
    }
    const problem = jsonEventProblem(json);
    if (problem !== null) return this.fastReject(topic, partition, offset, bytes.subarray(start, end), problem.code, problem.reason);
    const o = json as { type: string; payload: unknown };
    const codec = this.options.codec as EventCodec<E> & PayloadWriter<E>;
    try {
      const event = codec.fromJSON({ type: o.type, payload: o.payload } as JsonEvent);
      // What encode() would check: an event the codec cannot write is rejected here too.
      codec.encodedLength(event);
      return event;
    } catch (error) {
      return this.fastReject(topic, partition, offset, bytes.subarray(start, end), 'codec-rejected', `the ${codec.name} codec rejects the event: ${(error as Error).message}`);
    }
  }

  /** fastEvent's answer for a value that is not an event: the reject goes to lastReject. */
  private fastReject(topic: string, partition: number, offset: number, value: Uint8Array, reasonCode: string, reason: string): typeof REJECTED {
    this.lastReject = this.reject(topic, partition, offset, value, reasonCode, reason);
    return REJECTED;
  }

  /**
   * The recorder took `item` (read on the reader thread): its partition's next offset joins
   * the baseline of every position after it, as batches() does for the items it hands out.
   */
  taken(item: SourceItem<E>): void {
    if ('reject' in item) {
      const at = this.locate(item);
      this.baseline.set(tp(at.topic, at.partition), at.offset + 1);
      return;
    }
    this.takenRecord(item.stream ?? 0, item.partition, item.position);
  }

  /** The recorder took the record at `offset` of `partition` of stream (topic index) `stream`. */
  takenRecord(stream: number, partition: number, offset: number): void {
    // Once per record on the recorder's thread: the partition's key string is made once.
    const keys = (this.keysByStream[stream] ??= []);
    const key = (keys[partition] ??= tp(this.options.topics[stream], partition));
    this.baseline.set(key, offset + 1);
  }

  /** The end offsets prepare() saw, for the reader thread (null without --until-caught-up). */
  private preparedEnds(): Record<string, Record<string, number>> | null {
    return this.endOffsets === null ? null : byTopic(this.endOffsets);
  }

  /**
   * About how many records this run will read, once prepare() has run: the offsets up to the
   * end offsets seen at start (--until-caught-up; compacted topics and transaction markers
   * make it fewer), at most --max-events; null when the capture has no end (a progress bar
   * then has no total).
   */
  expectedRecords(): number | null {
    const max = this.options.maxEvents ?? null;
    if (this.recordsToCatchUp === null) return max;
    return max === null ? this.recordsToCatchUp : Math.min(max, this.recordsToCatchUp);
  }

  /** Every partition's next offset as the recorder has it: the reader thread starts from these. */
  startPositions(): KafkaPosition {
    return { next: byTopic(this.baseline) };
  }

  /** The topic of stream index `stream`. */
  topicOf(stream: number): string {
    return this.options.topics[stream];
  }

  private readonly headerNames = new Map<string, Uint8Array>();

  private convertHeaders(headers: NonNullable<KafkaMessage['headers']>): EventHeader[] {
    let out: EventHeader[] | null = null;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      let encoded = this.headerNames.get(name);
      if (encoded === undefined) {
        encoded = textEncoder.encode(name);
        if (this.headerNames.size < 1024) this.headerNames.set(name, encoded);
      }
      out ??= [];
      if (Array.isArray(value)) for (const v of value) out.push({ name: encoded, value: typeof v === 'string' ? textEncoder.encode(v) : v });
      else out.push({ name: encoded, value: typeof value === 'string' ? textEncoder.encode(value) : value });
    }
    // Most records have none: no array each.
    return out ?? NO_HEADERS;
  }
}

const NO_HEADERS: EventHeader[] = [];

/** The latest Kafka timestamp (ms) whose microseconds a block holds (MAX_BLOCK_VALUE). */
const MAX_TIMESTAMP_MS = Math.floor(MAX_BLOCK_VALUE / 1000);

/** Whether a tape can hold a record's timestamp (Kafka's ms): -1 (none) and beyond MAX_TIMESTAMP_MS cannot. */
export const storableTimestamp = (timestampMs: number): boolean => Number.isSafeInteger(timestampMs) && timestampMs >= 0 && timestampMs <= MAX_TIMESTAMP_MS;

const NOT_AN_OBJECT = 'the value must be a JSON object {"type", "payload"}';

/** What is wrong with a parsed JSON value as an event's JSON form {"type", "payload"}, or null. */
function jsonEventProblem(json: unknown): { code: string; reason: string } | null {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return { code: 'not-an-object', reason: NOT_AN_OBJECT };
  const o = json as Record<string, unknown>;
  if (typeof o.type !== 'string') return { code: 'bad-field', reason: 'the value\'s "type" must be a string' };
  if (!('payload' in o)) return { code: 'missing-field', reason: 'the value has no "payload"' };
  return null;
}

/** A copy of `value` that another thread can be handed (structuredClone), or null when there is none. */
function copyable<T>(value: T): T | null {
  try {
    return structuredClone(value);
  } catch {
    return null;
  }
}
const textEncoder = new TextEncoder();

/** Thrown inside eachBatch to make kafkajs fetch again from the position just sought. */
class KafkaSeekRetry extends Error {}
