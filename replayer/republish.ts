// `tapedeck replay FILE --to-kafka`: send a tape's events to a Kafka topic with their keys,
// headers and partitions, keeping their relative timing divided by the speed factor (or as
// fast as the broker takes them with --speed max), to load a real downstream.
//
// Partitions: an event goes to its recorded partition when the target topic has it; when the
// target has fewer partitions, to (recorded partition mod target partitions), which keeps
// each recorded partition's order (all of it lands in one target partition).
//
// Threads: the target partitions are shared among sender threads (republish-worker.ts),
// partition p to sender p mod senders. Each reads the tape, renders the values of its own
// events (their JSON, or the codec's bytes) and sends them with its own Kafka producer, in
// order per partition (republish-send.ts). The client's encoding is most of the work, and one
// thread of it does not keep a broker busy. With an engine object that is not built in and no
// engineSpec to load it by, one sender runs on the caller's thread.
//
// Delivery is at-least-once: messages are acknowledged by all in-sync replicas (acks=-1); the
// report's lastAckedSeq is the last event known delivered together with every event before
// it. After a crash, run again with --from lastAckedSeq+1: events after it that were in
// flight at the crash may then arrive twice.

import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { KafkaConfig } from 'kafkajs';
import { TapedeckError } from '../engine/errors.js';
import { builtInEngine } from '../engine/registry.js';
import type { Engine } from '../engine/types.js';
import { TapeReader } from '../tape/reader.js';
import { compiledWorkerUrl, firstAbandoned, GAVE_UP, within, WorkerInbox } from '../tape/threads.js';
// republish-send.js (kafkajs) is loaded when a republish runs, not with this module: the CLI
// loads this module for every replay.
import type { SendOutcome, SendPlan } from './republish-send.js';
import { checkedSpeed, planPacing, type PacedPlan } from './pacing.js';

/** How a republished event's value is written: its JSON, or the engine codec's bytes. */
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
  /**
   * With a speed K: told, before sending starts, how long following the range's recorded time
   * takes (a speed that would take more than a year is refused, E_USAGE).
   */
  readonly onPaced?: (plan: PacedPlan) => void;
  /**
   * Called as acknowledgements arrive, and once at the end (also after a failure or a stop),
   * with the last event known delivered together with every one before it (null: none yet).
   */
  readonly onAcknowledged?: (lastAckedSeq: number | null) => void;
  /** Messages per produce request. */
  readonly batchSize?: number;
  /**
   * How a sender thread loads the engine (--engine: a built-in name or a module path). Without
   * it (and for an engine that is not built in) one sender runs on this thread.
   */
  readonly engineSpec?: string;
  /** Sender threads, each with its own producer and a share of the partitions (default: defaultSenders()). */
  readonly senders?: number;
  /** Aborting it stops the sending cleanly: what is in flight is waited for, and the result says how far it got. */
  readonly signal?: AbortSignal;
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
  /** Sender threads used (0: one sender on the caller's thread); at most the target's partitions. */
  readonly senders: number;
  /** The signal stopped the sending before the end of the range (lastAckedSeq says how far it got). */
  readonly stopped: boolean;
  /**
   * Requests the broker had not answered STOPPED_SETTLE_MS after the stop, when the senders
   * stopped waiting for them (0: none). Their events are after lastAckedSeq; the broker may
   * have taken them, and a run from lastAckedSeq + 1 would then send them twice.
   */
  readonly unansweredRequests: number;
  /**
   * A sender thread that sent nothing for SENDER_STOPPED_QUIET_MS after the stop, and was
   * ended (is the engine's codec stuck?): its name. lastAckedSeq is then from its last report.
   */
  readonly abandonedThread?: string;
}

const DEFAULT_BATCH = 2000;

/**
 * After a stop, how long a sender waits for the broker to answer the requests in flight before
 * it reports how far it got without them (they count as not acknowledged). The client's own
 * retries can last minutes when the broker does not answer (it is down, or frozen), and the
 * stop would hold the terminal that long, saying nothing.
 */
export const STOPPED_SETTLE_MS = 20_000;

/**
 * After a stop, how long a sender thread may send nothing before it is ended: longer than its
 * own wait for the broker (STOPPED_SETTLE_MS), so that only a thread stuck in code that does
 * not return (an engine's codec rendering a value) is given up on.
 */
export const SENDER_STOPPED_QUIET_MS = STOPPED_SETTLE_MS + 10_000;
/** How long the end of a republish on this thread waits for its producer to disconnect. */
const DISCONNECT_WAIT_MS = 5_000;

/** Sender threads by default: one per core, at most 4 (measured on 2 cores: 2 threads send 1.6x what one does). */
export function defaultSenders(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** What a sender thread is given (workerData). */
export interface SenderTask {
  readonly path: string;
  readonly engineSpec: string;
  readonly brokers: readonly string[];
  readonly client: Pick<KafkaConfig, 'ssl' | 'sasl'> | undefined;
  readonly plan: Omit<SendPlan, 'startEpochMs'>;
  /** [0]: stop (a signal, or another sender failed). */
  readonly control: SharedArrayBuffer;
}

/** What a sender thread posts: ready (connected; the reply is {startEpochMs}), progress, and its outcome. */
export type SenderMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly sent: number; readonly earliestUnacked: number }
  | { readonly type: 'done'; readonly outcome: SendOutcome & { readonly failure: string | null } };

function cloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

const senderWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'replayer/republish-worker.js');

/** Run `senders` sender threads and join their outcomes; `epochMs` is republish-send.js's clock (the caller has loaded that module). */
async function sendOnThreads(
  url: URL,
  task: Omit<SenderTask, 'plan' | 'control'> & { readonly plan: Omit<SendPlan, 'startEpochMs' | 'sender' | 'senders'> },
  senders: number,
  onProgress: (sent: number, earliestUnacked: number) => void,
  signal: AbortSignal | undefined,
  epochMs: () => number,
): Promise<SendOutcome & { readonly abandonedThread?: string }> {
  const control = new Int32Array(new SharedArrayBuffer(4));
  const workers: Worker[] = [];
  const inboxes: WorkerInbox<SenderMessage>[] = [];
  // Stopped, a thread answers within its wait for the broker, or it is stuck (see SENDER_STOPPED_QUIET_MS).
  const stop = (): void => {
    Atomics.store(control, 0, 1);
    for (const inbox of inboxes) inbox.giveUpAfterQuiet(SENDER_STOPPED_QUIET_MS);
  };
  signal?.addEventListener('abort', stop);
  const sentBy = new Array<number>(senders).fill(0);
  const earliestBy = new Array<number>(senders).fill(task.plan.fromSeq);
  try {
    for (let sender = 0; sender < senders; sender++) {
      const workerData: SenderTask = { ...task, plan: { ...task.plan, sender, senders }, control: control.buffer as SharedArrayBuffer };
      const worker = new Worker(url, { workerData });
      workers.push(worker);
      inboxes.push(
        new WorkerInbox<SenderMessage>(worker, `republish sender thread ${sender + 1}`, (m) => {
          if (m.type !== 'progress') return false;
          sentBy[sender] = m.sent;
          earliestBy[sender] = m.earliestUnacked;
          onProgress(
            sentBy.reduce((a, b) => a + b, 0),
            earliestBy.reduce((a, b) => Math.min(a, b)),
          );
          return true;
        }),
      );
    }
    if (signal?.aborted === true) stop();
    /** A thread given up on (see stop): what its last progress said, and nothing of the range's times (the other threads read them too). */
    const fromLastReport = (sender: number): SendOutcome => ({ sent: sentBy[sender], earliestUnacked: earliestBy[sender], firstTsUs: -1, lastTsUs: -1, remapped: [], failure: null, unanswered: 0 });
    const ready = await Promise.all(inboxes.map((inbox) => inbox.nextOrGaveUp()));
    // Paced sending starts now on every thread (after a stop, none sends).
    const startEpochMs = epochMs();
    for (const worker of workers) worker.postMessage({ startEpochMs });
    const outcomes = await Promise.all(
      inboxes.map(async (inbox, sender) => {
        const message = ready[sender] === GAVE_UP ? GAVE_UP : await inbox.nextOrGaveUp();
        if (message === GAVE_UP) return fromLastReport(sender);
        if (message.type !== 'done') throw new Error(`republish sender thread: unexpected message ${message.type}`);
        inbox.done();
        // The others stop reading, and report how far they got.
        if (message.outcome.failure !== null) stop();
        return message.outcome;
      }),
    );
    const started = outcomes.filter((o) => o.firstTsUs >= 0);
    const abandoned = firstAbandoned(inboxes);
    return {
      sent: outcomes.reduce((n, o) => n + o.sent, 0),
      earliestUnacked: Math.min(...outcomes.map((o) => o.earliestUnacked)),
      firstTsUs: started.length === 0 ? -1 : Math.min(...started.map((o) => o.firstTsUs)),
      lastTsUs: Math.max(-1, ...outcomes.map((o) => o.lastTsUs)),
      remapped: outcomes.flatMap((o) => o.remapped),
      failure: outcomes.find((o) => o.failure !== null)?.failure ?? null,
      unanswered: outcomes.reduce((n, o) => n + o.unanswered, 0),
      ...(abandoned === null ? {} : { abandonedThread: abandoned.what }),
    };
  } finally {
    signal?.removeEventListener('abort', stop);
    stop();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export async function republishTape(path: string, options: RepublishOptions): Promise<RepublishResult> {
  const speed = checkedSpeed(options.speed);
  const senders = options.senders ?? defaultSenders();
  if (!Number.isSafeInteger(senders) || senders < 1) throw new TapedeckError('E_USAGE', `--workers must be a positive integer, got ${senders}`);
  const valueFormat = options.valueFormat ?? 'json';
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const { epochMs, republishClient, republishProducer, sendRange } = await import('./republish-send.js');
  const reader = TapeReader.open(path);
  const kafka = republishClient(options.brokers, options.security?.client);
  try {
    const summary = reader.summary();
    const total = summary.events;
    const fromSeq = options.fromSeq ?? 0;
    const toSeq = Math.min(options.toSeq ?? total - 1, total - 1);
    if (fromSeq > total) throw new TapedeckError('E_USAGE', `--from ${fromSeq} is past the end of the tape (${total} events)`);
    const rangeEvents = Math.max(0, toSeq - fromSeq + 1);
    // Before the broker is reached: a speed that would take years is refused at once.
    planPacing(reader, fromSeq, toSeq, speed, options.onPaced);

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

    const plan = { topic: options.topic, batchSize, speed, valueFormat, fromSeq, toSeq, targetPartitions };
    const acked = (earliestUnacked: number): number | null => (earliestUnacked - 1 >= fromSeq ? earliestUnacked - 1 : null);
    const onProgress = (sent: number, earliestUnacked: number): void => {
      options.onProgress?.(sent, rangeEvents);
      options.onAcknowledged?.(acked(earliestUnacked));
    };
    const engineSpec = options.engineSpec ?? ((builtInEngine(options.engine.name) as unknown) === options.engine ? options.engine.name : undefined);
    // Threads need the engine by name or path, the compiled worker, and settings they can be sent (no functions).
    const url = engineSpec === undefined || !cloneable(options.security?.client) ? null : senderWorkerUrl();
    const startedMs = performance.now();
    let outcome: SendOutcome & { readonly abandonedThread?: string };
    let threads: number;
    if (url === null || engineSpec === undefined) {
      threads = 0;
      const producer = republishProducer(kafka);
      try {
        await producer.connect();
        outcome = await sendRange(reader, options.engine, producer, { ...plan, sender: 0, senders: 1, startEpochMs: epochMs() }, { stop: () => options.signal?.aborted === true, onProgress });
      } finally {
        // Not waited for past DISCONNECT_WAIT_MS: a broker that does not answer would hold the end.
        await within(producer.disconnect().catch(() => undefined), DISCONNECT_WAIT_MS, undefined);
      }
    } else {
      // A thread per target partition at most: more would have nothing to send.
      threads = Math.min(senders, targetPartitions);
      outcome = await sendOnThreads(url, { path, engineSpec, brokers: options.brokers, client: options.security?.client, plan }, threads, onProgress, options.signal, epochMs);
    }
    const elapsedMs = performance.now() - startedMs;
    const lastAckedSeq = acked(outcome.earliestUnacked);
    options.onAcknowledged?.(lastAckedSeq);
    if (outcome.failure !== null) {
      const resumeAt = lastAckedSeq === null ? fromSeq : lastAckedSeq + 1;
      const reason = outcome.failure instanceof Error ? outcome.failure.message : String(outcome.failure);
      throw new TapedeckError(
        'E_KAFKA_PRODUCE',
        `sending to ${options.topic} failed: ${reason}. Events up to ${lastAckedSeq ?? 'none'} were acknowledged; ` +
          `continue with --from ${resumeAt} (events after it that were in flight may arrive twice)`,
        { cause: outcome.failure },
      );
    }
    const sent = outcome.sent;
    const recordedSpanS = (outcome.lastTsUs - outcome.firstTsUs) / 1e6;
    const recordedEventsPerSec = sent > 1 && recordedSpanS > 0 ? sent / recordedSpanS : null;
    const remapped = new Map(outcome.remapped);
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
      senders: threads,
      stopped: options.signal?.aborted === true && (lastAckedSeq ?? fromSeq - 1) < toSeq,
      unansweredRequests: outcome.unanswered,
      ...(outcome.abandonedThread === undefined ? {} : { abandonedThread: outcome.abandonedThread }),
    };
  } finally {
    reader.close();
  }
}
