// The sending side of `replay --to-kafka` (see republish.ts): reads a range of the tape, keeps
// the events of this sender's share of the target partitions, renders each one's Kafka value,
// and sends them in order per partition. Each sender thread (republish-worker.ts) runs one
// with its own producer; with an engine that cannot be loaded on a thread, the caller's
// thread runs the only one.
//
// Order: a sender spreads its partitions over LANES send lanes. Each lane queues its messages
// in tape order and sends one request at a time, waiting for its acknowledgement (retries
// included) before the next, so a partition's messages reach the broker in tape order; the
// lanes run side by side, so up to LANES requests are in flight. (Concurrent requests for one
// partition could be reordered by the client or by a retry.) The tape is read up to MAX_QUEUED
// messages ahead of the requests, so that while one lane waits for its acknowledgement the
// others fill: a tape captured from Kafka holds long runs of one partition.

import { performance } from 'node:perf_hooks';
import { Kafka, logLevel, type KafkaConfig, type Message, type Producer } from 'kafkajs';
import { TapedeckError } from '../engine/errors.js';
import type { Engine } from '../engine/types.js';
import type { TapeReader } from '../tape/reader.js';
import { STOPPED_SETTLE_MS, type RepublishValueFormat } from './republish.js';

/**
 * A request also ends when one partition has this many messages in it: kafkajs groups a
 * request's messages by partition in time quadratic in that count (it copies the partition's
 * list for every message), and a tape recorded from Kafka holds long runs of one partition (a
 * consumer reads partition by partition). Smaller requests cost more per message in the
 * client. Measured 2026-11-28 with the tape read on a reader thread (ratios to a bare kafkajs
 * producer in the same run, three runs each): on a tape captured from Kafka, 0.65-0.68 at 256,
 * 0.73-0.76 at 512, 0.68-0.72 at 1024; on a synthetic tape, 0.78-0.84 at 512 and 0.81-0.85 at
 * 1024.
 */
const MAX_PER_PARTITION = 512;
export const LANES = 4;
/** Messages read ahead of the requests, over all lanes of a sender. */
const MAX_QUEUED = 16_384;

/** How often a sender waiting for an acknowledgement looks whether it was asked to stop. */
const STOP_POLL_MS = 100;

/** Wall-clock milliseconds, comparable between threads (for pacing). */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/** The Kafka client a sender (and the caller, for the topic's metadata) uses. */
export function republishClient(brokers: readonly string[], client: Pick<KafkaConfig, 'ssl' | 'sasl'> | undefined, clientId = 'tapedeck-republish'): Kafka {
  return new Kafka({
    clientId,
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
    ...client,
  });
}

export function republishProducer(kafka: Kafka): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, idempotent: false, maxInFlightRequests: LANES });
}

/** What one sender sends, and how. */
export interface SendPlan {
  readonly topic: string;
  readonly batchSize: number;
  readonly speed: number | 'max';
  readonly valueFormat: RepublishValueFormat;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly targetPartitions: number;
  /** This sender's share: the target partitions p with p % senders === sender. */
  readonly sender: number;
  readonly senders: number;
  /** When the range's first event is due (epochMs), for --speed K. */
  readonly startEpochMs: number;
}

export interface SendOutcome {
  /** Messages of this sender's share put into requests (acknowledged or not). */
  readonly sent: number;
  /**
   * The earliest event this sender cannot vouch for: not yet read, or its own and not
   * acknowledged. Every event of its share before it was delivered.
   */
  readonly earliestUnacked: number;
  /** The range's first and last timestamps read (-1: none). */
  readonly firstTsUs: number;
  readonly lastTsUs: number;
  /** Recorded partitions sent to another target partition: [from, to]. */
  readonly remapped: readonly (readonly [number, number])[];
  /** The produce failure that stopped this sender, or null. */
  readonly failure: unknown;
  /**
   * Requests still unanswered when the sender stopped waiting for them, STOPPED_SETTLE_MS after
   * a stop (0: every request was answered). Their events count as not acknowledged; the broker
   * may still have taken them.
   */
  readonly unanswered: number;
}

interface Lane {
  /** Messages waiting for the lane's next requests, in tape order, and their seqs; [head, length) are not sent yet. */
  queue: Message[];
  seqs: number[];
  head: number;
  /** The lane's request in flight (resolved when acknowledged, never rejected), or null. */
  sending: Promise<void> | null;
  sendingFirstSeq: number;
  /** The first event of a request that failed (Infinity: none): it and what follows were not delivered. */
  failedFirstSeq: number;
}

/** The lanes of one sender (see the top of this file). */
class Lanes {
  /** Messages put into requests. */
  sent = 0;
  /** The last event read, whether of this sender's share or not. */
  scanned: number;
  /** Timestamp of the range's first event: --speed K paces from it. */
  originUs = -1;
  private failure: unknown = null;
  private readonly lanes: Lane[] = Array.from({ length: LANES }, () => ({ queue: [], seqs: [], head: 0, sending: null, sendingFirstSeq: -1, failedFirstSeq: Infinity }));
  /** Messages read and not yet in a request. */
  private queued = 0;
  /** Send partial requests too (the input ended, or paced sending must not hold messages back). */
  private draining = false;
  /** Ends the current wait for an acknowledgement (see waitForAck); the stop poll calls it once stop() is true. */
  private wakeOnStop: (() => void) | null = null;
  private readonly stopPoll: NodeJS.Timeout;

  constructor(
    private readonly producer: Producer,
    private readonly plan: SendPlan,
    private readonly onProgress: (sent: number, earliestUnacked: number) => void,
    private readonly stop: () => boolean,
  ) {
    this.scanned = plan.fromSeq - 1;
    // The stop is a flag (the main thread's Atomics, or an AbortSignal's state): a wait for the
    // broker looks at it every STOP_POLL_MS, so that a stop never waits on a broker that does
    // not answer.
    this.stopPoll = setInterval(() => {
      if (this.wakeOnStop !== null && this.stop()) this.wakeOnStop();
    }, STOP_POLL_MS);
  }

  /** Stop looking for a stop (the sender has finished). */
  dispose(): void {
    clearInterval(this.stopPoll);
  }

  /** With --speed K: a wait until an event recorded at `timestampUs` is due, or null when it is. */
  due(timestampUs: number): Promise<void> | null {
    if (this.failure !== null) throw this.failure;
    const speed = this.plan.speed;
    if (speed === 'max') return null;
    const dueMs = this.plan.startEpochMs + (timestampUs - this.originUs) / 1000 / speed;
    if (dueMs - epochMs() < 1) return null;
    // Send what is due before waiting, so that nothing sits in a batch past its time.
    for (const lane of this.lanes) this.pump(lane);
    if (this.failure !== null) throw this.failure;
    return dueMs - epochMs() < 1 ? null : this.sleepUntil(dueMs);
  }

  /** Sleep until `dueMs` (epochMs), waking every 100 ms to see whether to stop. */
  private async sleepUntil(dueMs: number): Promise<void> {
    for (let left = dueMs - epochMs(); left >= 1 && !this.stop(); left = dueMs - epochMs()) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, 100)));
    }
  }

  /** Queue one message of event `seq`; a wait for room when too many are queued, else null. */
  push(seq: number, message: Message): Promise<void> | null {
    const lane = this.lanes[Math.floor(message.partition! / this.plan.senders) % LANES];
    lane.queue.push(message);
    lane.seqs.push(seq);
    this.queued++;
    this.scanned = seq;
    this.pump(lane);
    return this.queued < MAX_QUEUED ? null : this.makeRoom();
  }

  /** Send everything queued, and wait until it is acknowledged; or until a stop (then settle()). */
  async drain(): Promise<void> {
    this.draining = true;
    while (!this.stop()) {
      for (const lane of this.lanes) this.pump(lane);
      if (this.failure !== null) throw this.failure;
      if (this.lanes.every((l) => l.sending === null && l.head === l.queue.length)) return;
      await this.anyAck();
    }
  }

  /**
   * Wait for the requests in flight, sending nothing more; once stop() is true, for at most
   * STOPPED_SETTLE_MS more. Returns how many were left unanswered (0: all were answered).
   */
  async settle(): Promise<number> {
    let giveUpAtMs = Infinity;
    for (;;) {
      const inFlight = this.inFlight();
      if (inFlight === 0) return 0;
      if (!this.stop()) {
        await this.waitForAck(Infinity, true);
        continue;
      }
      if (giveUpAtMs === Infinity) giveUpAtMs = epochMs() + STOPPED_SETTLE_MS;
      const leftMs = giveUpAtMs - epochMs();
      if (leftMs <= 0) return inFlight;
      await this.waitForAck(leftMs, false);
    }
  }

  private inFlight(): number {
    let n = 0;
    for (const lane of this.lanes) if (lane.sending !== null) n++;
    return n;
  }

  /**
   * Until a request in flight is answered, or `ms` have passed, or (`orStop`) stop() is true.
   * The promise each wait makes is dropped with it: a race against one long-lived promise
   * would add a reaction to it per acknowledgement, for the whole run.
   */
  private async waitForAck(ms: number, orStop: boolean): Promise<void> {
    const inFlight = this.lanes.flatMap((l) => (l.sending === null ? [] : [l.sending]));
    if (inFlight.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const woken = new Promise<void>((resolve) => {
      if (orStop) this.wakeOnStop = resolve;
      if (ms < Infinity) timer = setTimeout(resolve, ms);
    });
    try {
      await Promise.race([...inFlight, woken]);
    } finally {
      this.wakeOnStop = null;
      clearTimeout(timer);
    }
  }

  earliestUnacked(): number {
    let earliest = this.scanned + 1;
    for (const lane of this.lanes) {
      earliest = Math.min(earliest, lane.failedFirstSeq);
      if (lane.sending !== null) earliest = Math.min(earliest, lane.sendingFirstSeq);
      if (lane.head < lane.queue.length) earliest = Math.min(earliest, lane.seqs[lane.head]);
    }
    return earliest;
  }

  private async makeRoom(): Promise<void> {
    while (this.queued >= MAX_QUEUED && !this.stop()) {
      for (const lane of this.lanes) this.pump(lane);
      await this.anyAck();
    }
  }

  /** Until a request in flight is answered or a stop; throws the failure of a request that failed. */
  private async anyAck(): Promise<void> {
    await this.waitForAck(Infinity, true);
    if (this.failure !== null) throw this.failure;
  }

  /**
   * Start the lane's next request if it has none in flight and holds a full one (or drains):
   * up to batchSize messages, ending early at MAX_PER_PARTITION of one partition.
   */
  private pump(lane: Lane): void {
    // After a stop no request starts (an acknowledgement pumps its lane).
    if (lane.sending !== null || this.failure !== null || this.stop()) return;
    const waiting = lane.queue.length - lane.head;
    const batchSize = this.plan.batchSize;
    // At --speed max a lane waits for a full request; paced, whatever is due goes out.
    if (waiting === 0 || (waiting < batchSize && !this.draining && this.plan.speed === 'max' && this.queued < MAX_QUEUED)) return;
    const perPartition = new Map<number, number>();
    let end = lane.head;
    while (end < lane.queue.length && end - lane.head < batchSize) {
      const partition = lane.queue[end].partition!;
      const n = (perPartition.get(partition) ?? 0) + 1;
      perPartition.set(partition, n);
      end++;
      if (n >= MAX_PER_PARTITION) break;
    }
    const messages = lane.queue.slice(lane.head, end);
    this.sent += messages.length;
    const firstSeq = lane.seqs[lane.head];
    lane.sendingFirstSeq = firstSeq;
    this.queued -= end - lane.head;
    lane.head = end;
    if (lane.head > 8192) {
      lane.queue = lane.queue.slice(lane.head);
      lane.seqs = lane.seqs.slice(lane.head);
      lane.head = 0;
    }
    lane.sending = this.producer.send({ topic: this.plan.topic, messages, acks: -1 }).then(
      () => {
        lane.sending = null;
        this.onProgress(this.sent, this.earliestUnacked());
        this.pump(lane);
      },
      (error: unknown) => {
        lane.sending = null;
        lane.failedFirstSeq = Math.min(lane.failedFirstSeq, firstSeq);
        this.failure ??= error;
      },
    );
    this.onProgress(this.sent, this.earliestUnacked());
  }
}

/**
 * Send this sender's share of events plan.fromSeq..plan.toSeq. A produce failure, or stop()
 * turning true (a signal, or another sender failed), ends the sending: the outcome then says
 * how far the share was delivered. An event the engine's codec cannot decode throws (E_REPLAY_DECODE).
 */
export async function sendRange(
  reader: TapeReader,
  engine: Engine,
  producer: Producer,
  plan: SendPlan,
  hooks: {
    readonly stop: () => boolean;
    /** After each request starts and each acknowledgement: messages sent, and earliestUnacked (see SendOutcome). */
    readonly onProgress: (sent: number, earliestUnacked: number) => void;
  },
): Promise<SendOutcome> {
  const lanes = new Lanes(producer, plan, hooks.onProgress, hooks.stop);
  const codec = engine.codec;
  const remapped = new Map<number, number>();
  let firstTsUs = -1;
  let lastTsUs = -1;
  let stampMs = -1;
  let stamp = '';
  const outcome = (failure: unknown, unanswered: number): SendOutcome => ({
    sent: lanes.sent,
    earliestUnacked: lanes.earliestUnacked(),
    firstTsUs,
    lastTsUs,
    remapped: [...remapped.entries()],
    failure,
    unanswered,
  });
  try {
    blocks: for (const cursor of reader.blocks(plan.fromSeq)) {
      const data = cursor.bytes;
      while (reader.advance(cursor)) {
        const seq = cursor.seq;
        if (seq < plan.fromSeq) continue;
        if (seq > plan.toSeq || hooks.stop()) break blocks;
        const timestampUs = cursor.timestampUs;
        if (firstTsUs < 0) lanes.originUs = firstTsUs = timestampUs;
        lastTsUs = timestampUs;
        let partition = cursor.partition;
        if (partition >= plan.targetPartitions) {
          const to = partition % plan.targetPartitions;
          remapped.set(partition, to);
          partition = to;
        }
        if (partition % plan.senders !== plan.sender) {
          lanes.scanned = seq;
          continue;
        }
        let value: Buffer;
        if (plan.valueFormat === 'codec') value = Buffer.from(cursor.payload());
        else {
          let json: string;
          try {
            json = JSON.stringify(codec.toJSON(codec.decodeAt !== undefined ? codec.decodeAt(data, cursor.payloadOffset, cursor.payloadLength) : codec.decode(cursor.payload())));
          } catch (cause) {
            throw new TapedeckError('E_REPLAY_DECODE', `${reader.path}: event ${seq} cannot be decoded by ${engine.name}'s codec: ${(cause as Error).message}`, { cause });
          }
          value = Buffer.from(json);
        }
        // Kafka timestamps are milliseconds, as text for kafkajs; runs of events share one.
        const ms = Math.floor(timestampUs / 1000);
        if (ms !== stampMs) {
          stampMs = ms;
          stamp = String(ms);
        }
        const key = cursor.keyOffset < 0 ? null : Buffer.from(data.subarray(cursor.keyOffset, cursor.keyOffset + cursor.keyLength));
        const message: Message = { partition, key, value, timestamp: stamp };
        if (cursor.headersOffset >= 0) {
          const headers = cursor.headers();
          if (headers.length > 0) {
            // kafkajs takes headers as a map: a name that repeats gets all its values, in order,
            // sent together where the name first appears (the map cannot interleave names).
            const byName: Record<string, Buffer | Buffer[]> = {};
            for (const h of headers) {
              const name = Buffer.from(h.name).toString('utf8');
              const value = Buffer.from(h.value);
              const prior = byName[name];
              byName[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
            }
            message.headers = byName;
          }
        }
        const wait = lanes.due(timestampUs);
        if (wait !== null) {
          await wait;
          if (hooks.stop()) break blocks;
        }
        const full = lanes.push(seq, message);
        if (full !== null) await full;
      }
    }
    // To the end of the range: everything is sent and acknowledged. Stopped (before or
    // during that: drain() returns at once): what is in flight is waited for, up to STOPPED_SETTLE_MS.
    await lanes.drain();
    return outcome(null, await lanes.settle());
  } catch (error) {
    if (error instanceof TapedeckError) throw error;
    return outcome(error, await lanes.settle());
  } finally {
    lanes.dispose();
  }
}
