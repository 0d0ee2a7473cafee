// `tapedeck replay FILE --to-kafka`: send a tape's events to a Kafka topic with their keys,
// headers and partitions, keeping their relative timing divided by the speed factor (or as
// fast as the broker takes them with --speed max), to load a real downstream.
//
// Partitions: an event goes to its recorded partition when the target topic has it; when the
// target has fewer partitions, to (recorded partition mod target partitions), which keeps
// each recorded partition's order (all of it lands in one target partition).
//
// Delivery is at-least-once: messages are acknowledged by all in-sync replicas (acks=-1) in
// batches of up to BATCH messages with a few batches in flight; the report's lastAckedSeq is
// the last event known delivered, with every event before it. After a crash, run again with
// --from lastAckedSeq+1: events that were in flight at the crash may then arrive twice.

import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { TapedeckError } from '../engine/errors.js';
import type { Engine } from '../engine/types.js';
import { TapeReader } from '../tape/reader.js';

export const REPUBLISH_VALUE_FORMATS = ['json', 'codec'] as const;
export type RepublishValueFormat = (typeof REPUBLISH_VALUE_FORMATS)[number];

export interface RepublishOptions {
  readonly brokers: readonly string[];
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
 * request's messages by partition in time quadratic in that count, and a tape recorded from
 * Kafka holds long runs of one partition (a consumer reads partition by partition).
 */
const MAX_PER_PARTITION = 256;
const MAX_IN_FLIGHT = 4;

export async function republishTape(path: string, options: RepublishOptions): Promise<RepublishResult> {
  const speed = options.speed ?? 'max';
  if (speed !== 'max' && !(speed > 0 && Number.isFinite(speed))) throw new TapedeckError('E_USAGE', `--speed must be "max" or a positive number, got ${speed}`);
  const valueFormat = options.valueFormat ?? 'json';
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const codec = options.engine.codec;
  const reader = TapeReader.open(path);
  const kafka = new Kafka({ clientId: 'tapedeck-republish', brokers: [...options.brokers], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 } });
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

    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, maxInFlightRequests: MAX_IN_FLIGHT });
    await producer.connect();
    const remapped = new Map<number, number>();
    const inFlight: { promise: Promise<unknown>; lastSeq: number }[] = [];
    let lastAckedSeq: number | null = null;
    let sent = 0;
    const startedMs = performance.now();
    let originUs = -1;
    let firstTsUs = -1;
    let lastTsUs = -1;
    let batch: Message[] = [];
    let batchLastSeq = -1;
    const perPartition = new Map<number, number>();

    const drainTo = async (maxInFlight: number): Promise<void> => {
      while (inFlight.length > maxInFlight) {
        const head = inFlight.shift()!;
        await head.promise;
        lastAckedSeq = head.lastSeq;
      }
    };
    const flushBatch = async (): Promise<void> => {
      if (batch.length === 0) return;
      const messages = batch;
      batch = [];
      perPartition.clear();
      const promise = producer!.send({ topic: options.topic, messages, acks: -1 });
      promise.catch(() => undefined); // awaited in order by drainTo; this only keeps a later failure from being reported as unhandled first
      inFlight.push({ promise, lastSeq: batchLastSeq });
      await drainTo(MAX_IN_FLIGHT - 1);
      options.onProgress?.(sent, rangeEvents);
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
            await flushBatch();
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
        batch.push({
          partition,
          key: key === null ? null : Buffer.from(key),
          value,
          timestamp: String(Math.floor(ts / 1000)),
          ...(hasHeaders ? { headers } : {}),
        });
        batchLastSeq = cursor.seq;
        sent++;
        const inPartition = (perPartition.get(partition) ?? 0) + 1;
        perPartition.set(partition, inPartition);
        if (batch.length >= batchSize || inPartition >= MAX_PER_PARTITION) await flushBatch();
      }
      if (done) break;
    }
    await flushBatch();
    await drainTo(0);
    } catch (error) {
      if (error instanceof TapedeckError) throw error;
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
      lastAckedSeq,
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
