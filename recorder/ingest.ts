// `tapedeck ingest`: the live service. Consumes Kafka topics, passes the events through a
// bounded channel (KafkaSource's hand-off: at most `channelCapacity` records wait; when it is
// full the consumer waits and kafkajs stops fetching, so memory stays bounded), applies them
// in one engine loop (the same engine, codec and context as record and replay), and publishes
// the engine's updates to an output topic off the engine's path: updates go into a buffer that
// a separate async loop sends in batches; the engine only waits for it, between batches, when
// more than MAX_PENDING_UPDATES are waiting.
//
// With a tape path it also records, exactly as `record --source kafka` does (live digest
// checkpoints, snapshots, positions committed with the events), so a production capture can
// later be replayed and verified. Latency is measured from each event's timestamp (Kafka's
// CreateTime or LogAppendTime, in ms) to the moment the engine has applied it, on the wall
// clock, into an HDR histogram.

import { performance } from 'node:perf_hooks';
import hdr from 'hdr-histogram-js';
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { RunContext } from '../engine/context.js';
import { TapedeckError } from '../engine/errors.js';
import type { Engine } from '../engine/types.js';
import { recordTape, type RecordResult } from './record.js';
import { isReject, type SourceRecord } from './source.js';
import { KafkaSource, type KafkaSourceOptions } from './sources/kafka.js';

import { DEFAULT_CHANNEL_CAPACITY } from './kafka-options.js';
import { within } from '../tape/threads.js';

export { DEFAULT_CHANNEL_CAPACITY };
const MAX_PENDING_UPDATES = 100_000;
const UPDATE_BATCH = 2000;
/**
 * After a stop, how long the updates in flight to the output topic are waited for (as a
 * republish waits for its requests): the client's own retries last minutes when the broker
 * does not answer, and the stop would hold the terminal that long.
 */
export const STOPPED_PUBLISH_WAIT_MS = 20_000;
/** How long the end waits for the update producer to disconnect. */
const DISCONNECT_WAIT_MS = 5_000;

export interface IngestOptions<S, E> {
  readonly kafka: Omit<KafkaSourceOptions<E>, 'codec' | 'channelCapacity'>;
  readonly engine: Engine<S, E>;
  readonly channelCapacity?: number;
  /** Publish the engine's updates to this topic (JSON values, partition = the event's mod the topic's count, header tapedeck-seq). */
  readonly outTopic?: string;
  /** Also record a tape here. */
  readonly recordPath?: string;
  readonly overwrite?: boolean;
  readonly runSeed?: number;
  readonly checkpointEvery?: number;
  readonly snapshotEvery?: number;
  readonly quarantine?: boolean;
  readonly signal?: AbortSignal;
  /** Called every statusEveryMs (default 1000) with live figures. */
  readonly onStatus?: (status: IngestStatus) => void;
  readonly statusEveryMs?: number;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface IngestStatus {
  readonly events: number;
  readonly updatesPublished: number;
  readonly eventsPerSec: number;
  readonly latencyMs: LatencySummary | null;
  /** Records waiting in the channel now. */
  readonly channelDepth: number;
}

export interface IngestResult {
  readonly ok: boolean;
  readonly events: number;
  readonly quarantined: number;
  readonly updatesEmitted: number;
  readonly updatesPublished: number;
  /**
   * Updates Kafka had not acknowledged when the ingest ended: after a stop, the broker did not
   * answer within STOPPED_PUBLISH_WAIT_MS (those already sent may still arrive). 0 otherwise.
   */
  readonly updatesUnacknowledged: number;
  readonly outTopic: string | null;
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  /** From event timestamp to applied, wall clock. */
  readonly latencyMs: LatencySummary | null;
  readonly channelCapacity: number;
  readonly channelMaxDepth: number;
  /** Time the consumer waited for the engine (the channel was full). */
  readonly backpressureMs: number;
  readonly finalDigest: string;
  /** When recording: the recorder's report. */
  readonly record: RecordResult | null;
}

/** Sends updates in batches, off the engine's path. */
class UpdatePublisher {
  private pending: Message[] = [];
  private sending: Promise<void> | null = null;
  private failure: unknown = null;
  /** Set once the updates left are given up on: nothing more is sent. */
  private gaveUp = false;
  published = 0;
  emitted = 0;

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly partitions: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Settles when `sending` is done ('sent') or the ingest is stopped ('stop'), whichever comes
   * first. A listener per wait, removed after it (a promise of the stop raced again and again
   * would keep a reaction per wait for as long as the service runs).
   */
  private sentOrStopped(sending: Promise<void>): Promise<'sent' | 'stop'> {
    const signal = this.signal;
    if (signal === undefined) return sending.then(() => 'sent');
    if (signal.aborted) return Promise.resolve('stop');
    return new Promise((resolve) => {
      const onStop = (): void => resolve('stop');
      signal.addEventListener('abort', onStop, { once: true });
      void sending.then(() => {
        signal.removeEventListener('abort', onStop);
        resolve('sent');
      });
    });
  }

  add(update: unknown, seq: number, partition: number): void {
    this.emitted++;
    this.pending.push({ value: JSON.stringify(update), partition: partition % this.partitions, headers: { 'tapedeck-seq': String(seq) } });
    if (this.sending === null && this.pending.length >= UPDATE_BATCH) this.kick();
  }

  private kick(): void {
    if (this.sending !== null || this.pending.length === 0 || this.gaveUp) return;
    const messages = this.pending.splice(0, UPDATE_BATCH);
    this.sending = this.producer.send({ topic: this.topic, messages, acks: -1 }).then(
      () => {
        this.published += messages.length;
        this.sending = null;
        this.kick();
      },
      (error: unknown) => {
        this.failure ??= error;
        this.sending = null;
      },
    );
  }

  /** Wait while too many updates are waiting (called between batches, never inside apply); a stop ends the wait (flush bounds what follows). */
  async keepUp(): Promise<void> {
    this.kick();
    while (this.pending.length > MAX_PENDING_UPDATES && this.sending !== null && this.signal?.aborted !== true) await this.sentOrStopped(this.sending);
    this.check();
  }

  /**
   * Publish every update left. After a stop, the broker is waited for at most
   * STOPPED_PUBLISH_WAIT_MS; the updates it has not acknowledged by then are given up on
   * (`unacknowledged`).
   */
  async flush(): Promise<void> {
    /** When the broker must have answered by (performance.now()), once the stop has come. */
    let deadlineMs = Infinity;
    while (this.pending.length > 0 || this.sending !== null) {
      this.kick();
      if (this.sending !== null) {
        // Until a stop, as long as the client takes (its retries end in a failure); after it, at most the bound.
        if (this.signal?.aborted !== true) await this.sentOrStopped(this.sending);
        else {
          deadlineMs = Math.min(deadlineMs, performance.now() + STOPPED_PUBLISH_WAIT_MS);
          if ((await within(this.sending.then(() => 'sent' as const), deadlineMs - performance.now(), 'late' as const)) === 'late') {
            this.gaveUp = true;
            return;
          }
        }
      }
      this.check();
    }
  }

  /** Updates emitted that Kafka has not acknowledged (after flush: those given up on). */
  get unacknowledged(): number {
    return this.emitted - this.published;
  }

  private check(): void {
    if (this.failure !== null) throw new TapedeckError('E_KAFKA_PRODUCE', `publishing updates to ${this.topic} failed: ${(this.failure as Error).message}`);
  }
}

function summarize(histogram: hdr.Histogram): LatencySummary | null {
  if (histogram.totalCount === 0) return null;
  // HDR reports a bucket's highest equivalent value; never more than the largest recorded.
  const max = histogram.maxValue;
  const ms = (us: number) => Math.min(us, max) / 1000;
  return {
    p50: ms(histogram.getValueAtPercentile(50)),
    p95: ms(histogram.getValueAtPercentile(95)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

export async function ingest<S, E>(options: IngestOptions<S, E>): Promise<IngestResult> {
  const engine = options.engine;
  const channelCapacity = options.channelCapacity ?? DEFAULT_CHANNEL_CAPACITY;
  const source = new KafkaSource<E>({ ...options.kafka, codec: engine.codec, channelCapacity });
  // Microseconds, auto-resizing: an old event replayed from the beginning is hours late.
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: true });
  let publisher: UpdatePublisher | null = null;
  let producer: Producer | null = null;
  if (options.outTopic !== undefined) {
    const kafka = new Kafka({ clientId: 'tapedeck-ingest', brokers: [...options.kafka.brokers], logLevel: logLevel.NOTHING, ...options.kafka.security?.client });
    const admin = kafka.admin();
    let partitions: number;
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [options.outTopic] }).catch(() => {
        throw new TapedeckError('E_KAFKA_TOPIC', `output topic ${options.outTopic} does not exist on ${options.kafka.brokers.join(',')} (create it first)`);
      });
      partitions = meta.topics[0].partitions.length;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 1 });
    await producer.connect();
    publisher = new UpdatePublisher(producer, options.outTopic, partitions, options.signal);
  }

  const sink = publisher === null ? undefined : (update: unknown, seq: number, partition: number) => publisher!.add(update, seq, partition);
  const startedMs = performance.now();
  let events = 0;
  let lastStatusMs = startedMs;
  const onApplied = (item: SourceRecord<E>): void => {
    events++;
    const lateUs = Date.now() * 1000 - item.timestampUs;
    histogram.recordValue(lateUs > 0 ? lateUs : 0);
  };
  const status = (): void => {
    const now = performance.now();
    if (options.onStatus === undefined || now - lastStatusMs < (options.statusEveryMs ?? 1000)) return;
    lastStatusMs = now;
    options.onStatus({ events, updatesPublished: publisher?.published ?? 0, eventsPerSec: (events * 1000) / (now - startedMs), latencyMs: summarize(histogram), channelDepth: source.depth });
  };
  const betweenBatches = async (): Promise<void> => {
    status();
    await publisher?.keepUp();
  };

  try {
    let record: RecordResult | null = null;
    let finalDigest: string;
    let quarantined = 0;
    let emitted = 0;
    if (options.recordPath !== undefined) {
      record = await recordTape(source, {
        path: options.recordPath,
        overwrite: options.overwrite,
        engine,
        runSeed: options.runSeed ?? 0,
        checkpointEvery: options.checkpointEvery,
        snapshotEvery: options.snapshotEvery,
        quarantine: options.quarantine,
        signal: options.signal,
        updateSink: sink,
        onApplied,
        betweenBatches,
      });
      finalDigest = record.finalDigest;
      quarantined = record.quarantined;
      emitted = record.updatesEmitted;
    } else {
      // The same loop without a tape.
      const ctx = new RunContext(options.runSeed ?? 0, { sink });
      let state = engine.init();
      let seq = 0;
      const onAbort = () => source.stop();
      options.signal?.addEventListener('abort', onAbort);
      try {
        for await (const batch of source.batches()) {
          for (const item of batch) {
            if (isReject(item)) {
              if (!options.quarantine) throw new TapedeckError('E_INPUT', `${item.where}: ${item.reason} [${item.reasonCode}]`);
              quarantined++;
              continue;
            }
            ctx.prepare(seq++, item.timestampUs, item.partition);
            state = engine.apply(state, item.event, ctx);
            onApplied(item);
          }
          await betweenBatches();
        }
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
        await source.close();
      }
      finalDigest = engine.digest(state);
      emitted = ctx.emitted;
    }
    await publisher?.flush();
    const elapsedMs = performance.now() - startedMs;
    return {
      ok: true,
      events,
      quarantined,
      updatesEmitted: emitted,
      updatesPublished: publisher?.published ?? 0,
      updatesUnacknowledged: publisher?.unacknowledged ?? 0,
      outTopic: options.outTopic ?? null,
      elapsedMs,
      eventsPerSec: elapsedMs > 0 ? (events * 1000) / elapsedMs : 0,
      latencyMs: summarize(histogram),
      channelCapacity,
      channelMaxDepth: source.maxDepth,
      backpressureMs: source.blockedMs,
      finalDigest,
      record,
    };
  } finally {
    // Not waited for past DISCONNECT_WAIT_MS: a broker that does not answer would hold the end.
    if (producer !== null) await within(producer.disconnect().catch(() => undefined), DISCONNECT_WAIT_MS, undefined);
  }
}
