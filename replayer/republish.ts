// `tapedeck replay FILE --to-kafka`: send a tape's events to a Kafka topic with their keys,
// headers and partitions, keeping their relative timing divided by the speed factor (or as
// fast as the broker takes them with --speed max), to load a real downstream.
//
// Partitions: an event goes to its recorded partition when the target topic has it; when the
// target has fewer partitions, to (recorded partition mod target partitions), which keeps
// each recorded partition's order (all of it lands in one target partition).
//
// Order: partitions are spread over LANES send lanes (partition mod LANES). Each lane sends
// one request at a time and waits for its acknowledgement (retries included) before the
// next, so a partition's messages reach the broker in tape order; the lanes run side by side,
// so up to LANES requests are in flight. (Concurrent requests for one partition could be
// reordered by the client or by a retry.)
//
// Delivery is at-least-once: messages are acknowledged by all in-sync replicas (acks=-1); the
// report's lastAckedSeq is the last event known delivered together with every event before
// it. After a crash, run again with --from lastAckedSeq+1: events after it that were in
// flight at the crash may then arrive twice.

import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type Message, type Producer, type KafkaConfig } from 'kafkajs';
import { TapedeckError } from '../engine/errors.js';
import type { Engine } from '../engine/types.js';
import { TapeReader } from '../tape/reader.js';

export const REPUBLISH_VALUE_FORMATS = ['json', 'codec'] as const;
export type RepublishValueFormat = (typeof REPUBLISH_VALUE_FORMATS)[number];

export interface RepublishOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL settings for kafkajs (cli/kafka-security.ts builds them). */
  readonly security?: { readonly client?: Pick<KafkaConfig, 'ssl' | 'sasl'> };
  readonly topic: string;
  /** The engine whose codec turns stored payloads into JSON values (for --value-format json). */
  readonly engine: Engine;
  readonly speed?: number | 'max';
  readonly valueFormat?: RepublishValueFormat;
  readonly fromSeq?: number;
  readonly toSeq?: number;
  readonly onProgress?: (sent: number, total: number) => void;
  /** Messages per produce request. */
  readonly batchSize?: number;
}

export interface RepublishResult {
  readonly ok: boolean;
  readonly tape: string;
  readonly topic: string;
  readonly events: number;
  readonly fromSeq: number;
  /** Last event acknowledged by the broker (with every event before it), or null. */
  readonly lastAckedSeq: number | null;
  readonly targetPartitions: number;
  /** Recorded partitions that went to another partition (mod the target's count). */
  readonly remappedPartitions: readonly { readonly from: number; readonly to: number }[];
  readonly elapsedMs: number;
  readonly eventsPerSec: number;
  readonly speed: number | 'max';
  /** With --speed K: the tape's recorded rate times K; null at --speed max. */
  readonly requestedEventsPerSec: number | null;
  readonly recordedEventsPerSec: number | null;
  readonly valueFormat: RepublishValueFormat;
}

const DEFAULT_BATCH = 2000;
/**
 * A request also ends when one partition has this many messages in it: kafkajs groups a
 * request's messages by partition in time quadratic in that count (it copies the partition's
 * list for every message), and a tape recorded from Kafka holds long runs of one partition (a
 * consumer reads partition by partition). At 1024, about half a million element copies per
 * partition per request, well under the request's own time; 256 made requests too small
 * (`--only kafka --kafka-events 300000 --reps 3`: republish at 0.584 of the bare producer
 * with 256, 0.714 with 1024, 0.733 with 2000).
 */
const MAX_PER_PARTITION = 1024;
const LANES = 4;

export async function republishTape(path: string, options: RepublishOptions): Promise<RepublishResult> {
  const speed = options.speed ?? 'max';
  if (speed !== 'max' && !(speed > 0 && Number.isFinite(speed))) throw new TapedeckError('E_USAGE', `--speed must be "max" or a positive number, got ${speed}`);
  const valueFormat = options.valueFormat ?? 'json';
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const codec = options.engine.codec;
  const reader = TapeReader.open(path);
  const kafka = new Kafka({
    clientId: 'tapedeck-republish',
    brokers: [...options.brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    ...options.security?.client,
  });
  let producer: Producer | null = null;
  try {
    const summary = reader.summary();
    const total = summary.events;
    const fromSeq = options.fromSeq ?? 0;
    const toSeq = Math.min(options.toSeq ?? total - 1, total - 1);
    if (fromSeq > total) throw new TapedeckError('E_USAGE', `--from ${fromSeq} is past the end of the tape (${total} events)`);
    const rangeEvents = Math.max(0, toSeq - fromSeq + 1);

    const admin = kafka.admin();
    let targetPartitions: number;
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [options.topic] }).catch((error: unknown) => {
        throw new TapedeckError('E_KAFKA_TOPIC', `topic ${options.topic} does not exist on ${options.brokers.join(',')} (create it first): ${(error as Error).message}`);
      });
      targetPartitions = meta.topics[0].partitions.length;
    } catch (error) {
      if (error instanceof TapedeckError) throw error;
      throw new TapedeckError('E_KAFKA_CONNECT', `cannot reach Kafka at ${options.brokers.join(',')}: ${(error as Error).message}`, { cause: error });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }

    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, maxInFlightRequests: LANES });
    await producer.connect();
    const remapped = new Map<number, number>();
    interface Lane {
      batch: Message[];
      firstSeq: number;
      readonly perPartition: Map<number, number>;
      /** The lane's request in flight (resolved when acknowledged), or null. */
      sending: Promise<void> | null;
      sendingFirstSeq: number;
    }
    const lanes: Lane[] = Array.from({ length: LANES }, () => ({ batch: [], firstSeq: -1, perPartition: new Map(), sending: null, sendingFirstSeq: -1 }));
    let failure: unknown = null;
    let lastSentSeq = -1;
    let sent = 0;
    const startedMs = performance.now();
    let originUs = -1;
    let firstTsUs = -1;
    let lastTsUs = -1;

    /** Every event before the earliest one not yet acknowledged is delivered. */
    const lastAcked = (): number | null => {
      let earliest = lastSentSeq + 1;
      for (const lane of lanes) {
        if (lane.sending !== null) earliest = Math.min(earliest, lane.sendingFirstSeq);
        if (lane.batch.length > 0) earliest = Math.min(earliest, lane.firstSeq);
      }
      return earliest - 1 >= fromSeq ? earliest - 1 : null;
    };
    const dispatch = async (lane: Lane): Promise<void> => {
      if (lane.sending !== null) await lane.sending;
      if (failure !== null) throw failure;
      if (lane.batch.length === 0) return;
      const messages = lane.batch;
      lane.sendingFirstSeq = lane.firstSeq;
      lane.batch = [];
      lane.perPartition.clear();
      lane.sending = producer!.send({ topic: options.topic, messages, acks: -1 }).then(
        () => {
          lane.sending = null;
        },
        (error: unknown) => {
          lane.sending = null;
          failure ??= error;
        },
      );
      options.onProgress?.(sent, rangeEvents);
    };
    const dispatchAll = async (): Promise<void> => {
      for (const lane of lanes) await dispatch(lane);
    };
    const settle = async (): Promise<void> => {
      for (const lane of lanes) if (lane.sending !== null) await lane.sending;
      if (failure !== null) throw failure;
    };

    try {
    for (const cursor of reader.blocks(fromSeq)) {
      let done = false;
      while (reader.advance(cursor)) {
        if (cursor.seq < fromSeq) continue;
        if (cursor.seq > toSeq) {
          done = true;
          break;
        }
        const ts = cursor.timestampUs;
        if (firstTsUs < 0) firstTsUs = ts;
        lastTsUs = ts;
        if (speed !== 'max') {
          if (originUs < 0) originUs = ts;
          const dueMs = startedMs + (ts - originUs) / 1000 / speed;
          const waitMs = dueMs - performance.now();
          if (waitMs >= 1) {
            // Send what is due before waiting, so that nothing sits in a batch past its time.
            await dispatchAll();
            const again = dueMs - performance.now();
            if (again >= 1) await new Promise((resolve) => setTimeout(resolve, again));
          }
        }
        const payload = cursor.payload();
        let value: Buffer;
        if (valueFormat === 'codec') value = Buffer.from(payload);
        else {
          let event: unknown;
          try {
            event = codec.decode(payload);
          } catch (cause) {
            throw new TapedeckError('E_REPLAY_DECODE', `${path}: event ${cursor.seq} cannot be decoded by ${options.engine.name}'s codec: ${(cause as Error).message}`, { cause });
          }
          value = Buffer.from(JSON.stringify(codec.toJSON(event)));
        }
        let partition = cursor.partition;
        if (partition >= targetPartitions) {
          const to = partition % targetPartitions;
          remapped.set(partition, to);
          partition = to;
        }
        const key = cursor.key();
        const headers: Record<string, Buffer> = {};
        let hasHeaders = false;
        for (const h of cursor.headers()) {
          headers[Buffer.from(h.name).toString('utf8')] = Buffer.from(h.value);
          hasHeaders = true;
        }
        const lane = lanes[partition % LANES];
        if (lane.batch.length === 0) lane.firstSeq = cursor.seq;
        lane.batch.push({
          partition,
          key: key === null ? null : Buffer.from(key),
          value,
          timestamp: String(Math.floor(ts / 1000)),
          ...(hasHeaders ? { headers } : {}),
        });
        lastSentSeq = cursor.seq;
        sent++;
        const inPartition = (lane.perPartition.get(partition) ?? 0) + 1;
        lane.perPartition.set(partition, inPartition);
        if (lane.batch.length >= batchSize || inPartition >= MAX_PER_PARTITION) await dispatch(lane);
      }
      if (done) break;
    }
    await dispatchAll();
    await settle();
    } catch (error) {
      if (error instanceof TapedeckError) throw error;
      await Promise.all(lanes.map((l) => l.sending)).catch(() => undefined);
      const lastAckedSeq = lastAcked();
      const resumeAt = lastAckedSeq === null ? fromSeq : lastAckedSeq + 1;
      throw new TapedeckError(
        'E_KAFKA_PRODUCE',
        `sending to ${options.topic} failed: ${(error as Error).message}. Events up to ${lastAckedSeq ?? 'none'} were acknowledged; ` +
          `continue with --from ${resumeAt} (events after it that were in flight may arrive twice)`,
        { cause: error },
      );
    }
    const elapsedMs = performance.now() - startedMs;
    const recordedSpanS = (lastTsUs - firstTsUs) / 1e6;
    const recordedEventsPerSec = sent > 1 && recordedSpanS > 0 ? sent / recordedSpanS : null;
    return {
      ok: true,
      tape: path,
      topic: options.topic,
      events: sent,
      fromSeq,
      lastAckedSeq: lastAcked(),
      targetPartitions,
      remappedPartitions: [...remapped.entries()].sort((a, b) => a[0] - b[0]).map(([from, to]) => ({ from, to })),
      elapsedMs,
      eventsPerSec: elapsedMs > 0 ? (sent * 1000) / elapsedMs : 0,
      speed,
      requestedEventsPerSec: speed === 'max' || recordedEventsPerSec === null ? null : recordedEventsPerSec * speed,
      recordedEventsPerSec,
      valueFormat,
    };
  } finally {
    reader.close();
    await producer?.disconnect().catch(() => undefined);
  }
}
