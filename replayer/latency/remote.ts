// The replay thread's side of the latency model worker (worker.ts), in one of two ways:
//
// - Service times drawn from a distribution: the worker reads the events' timestamps from the
//   tape itself, and the replay thread only tells it, once a block, how many events it has
//   replayed (reached()); the worker runs the model up to there and waits for more. The replay
//   thread does nothing per event: pushing each timestamp cost it 6 to 9% of its time, reading
//   them on the worker 2 to 4% (interleaved runs of a 1M-event tape, 2026-11-30).
// - Measured service times, which only the replay thread knows: the two threads share a ring of
//   chunks in SharedArrayBuffers. push() writes the event's timestamp and service time into the
//   current chunk; a full chunk is published with one atomic store, and the worker, waiting on
//   that counter, runs the model over it. When the worker falls SLOTS chunks behind, push()
//   waits for it, so memory is bounded.
//
// Nothing is allocated or posted per chunk or block, and no timer is involved (the determinism
// guard forbids timers while the engine runs). finish() publishes the end and waits,
// synchronously, for the figures. The thread is kept for the next replay (worker.ts).

import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { compiledWorkerUrl, WorkerKeeper } from '../../tape/threads.js';
import type { EmpiricalServiceTimes } from './service-time.js';
import type { QueueStats } from './model.js';
import type { ModelJob } from './worker.js';

export const CHUNK = 8192;
export const SLOTS = 128;
/** Indexes into the shared control words. */
export const PUBLISHED = 0;
export const CONSUMED = 1;
export const LAST_COUNT = 2;
export const FINISHED = 3;
export const DONE = 4;
/** Bumped on every publish, every reached() and on finish: what the worker sleeps on. */
export const EPOCH = 5;
/** With no progress from the worker for this long, give up rather than wait forever. */
const STALL_MS = 60_000;

/** The compiled worker (see compiledWorkerUrl). */
export const modelWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'replayer/latency/worker.js');

/** The model's thread, idle between replays (one per process, kept; see worker.ts). */
let modelWorkers: WorkerKeeper | null = null;

/** The tape the worker reads the timestamps from, and the first event of the replay's range. */
export interface ModelTape {
  readonly path: string;
  readonly fromSeq: number;
}

export class RemoteModel {
  private readonly worker: Worker;
  private readonly port;
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * 8));
  /** Reading the tape: the events replayed so far, which the worker may model. */
  private readonly replayed: BigInt64Array | null;
  /** The ring, without a tape to read. */
  private readonly ts: Float64Array | null;
  private readonly service: Float32Array | null;
  /** Where the next event goes in the ring, and where the current chunk ends. */
  private at = 0;
  private chunkEnd = CHUNK;
  private published = 0;

  /**
   * With `tape`, the worker reads the timestamps (drawn service times: `measured` false); the
   * replay calls reached(). Without, the replay push()es every event.
   */
  constructor(url: URL, data: Omit<ModelJob, 'port' | 'control' | 'ts' | 'service' | 'tape' | 'replayed'>, measured: boolean, tape: ModelTape | null) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    if (tape !== null && measured) throw new Error('RemoteModel: measured service times come from the replay thread, not the tape');
    this.replayed = tape === null ? null : new BigInt64Array(new SharedArrayBuffer(8));
    this.ts = tape === null ? new Float64Array(new SharedArrayBuffer(8 * CHUNK * SLOTS)) : null;
    this.service = measured ? new Float32Array(new SharedArrayBuffer(4 * CHUNK * SLOTS)) : null;
    const job: ModelJob = { ...data, port: port2, control: this.control, ts: this.ts, service: this.service, tape, replayed: this.replayed };
    modelWorkers ??= new WorkerKeeper(() => new Worker(url));
    this.worker = modelWorkers.take();
    // The replay waits for the model synchronously: the thread must not keep the process alive.
    this.worker.unref();
    this.worker.postMessage(job, [port2]);
  }

  /** Whether the worker reads the timestamps from the tape (call reached()), or needs push(). */
  get readsTape(): boolean {
    return this.replayed !== null;
  }

  /** Reading the tape: the replay has applied `events` events of its range; the worker may model them. */
  reached(events: number): void {
    Atomics.store(this.replayed!, 0, BigInt(events));
    Atomics.add(this.control, EPOCH, 1);
    Atomics.notify(this.control, EPOCH);
  }

  push(timestampUs: number, serviceUs: number): void {
    const at = this.at;
    this.ts![at] = timestampUs;
    if (this.service !== null) this.service[at] = serviceUs;
    this.at = at + 1;
    if (this.at === this.chunkEnd) this.publish();
  }

  private publish(): void {
    this.published++;
    Atomics.store(this.control, PUBLISHED, this.published);
    Atomics.add(this.control, EPOCH, 1);
    Atomics.notify(this.control, EPOCH);
    // The next chunk's slot must have been consumed (the worker is at most SLOTS - 1 behind).
    if (this.published - Atomics.load(this.control, CONSUMED) >= SLOTS) {
      this.waitFor(() => this.published - Atomics.load(this.control, CONSUMED) < SLOTS, CONSUMED);
    }
    const slot = this.published % SLOTS;
    this.at = slot * CHUNK;
    this.chunkEnd = this.at + CHUNK;
  }

  /** Block until `ready`, waking on changes of control[index]; fail after STALL_MS without progress. */
  private waitFor(ready: () => boolean, index: number): void {
    let last = Atomics.load(this.control, CONSUMED);
    let quietMs = 0;
    while (!ready()) {
      const seen = Atomics.load(this.control, index);
      if (Atomics.wait(this.control, index, seen, 1000) === 'timed-out') {
        const progress = Atomics.load(this.control, CONSUMED);
        quietMs = progress === last ? quietMs + 1000 : 0;
        last = progress;
        const early = receiveMessageOnPort(this.port);
        if (early !== undefined) throw new Error(`the latency model worker failed: ${(early.message as { error?: string }).error ?? 'unexpected message'}`);
        if (quietMs >= STALL_MS) throw new Error(`the latency model worker made no progress for ${STALL_MS / 1000} s`);
      }
    }
  }

  /** Reading the tape: `events` is how many the replay applied in all (reached() with it is implied). */
  finish(events = 0): { stats: QueueStats; serviceTimes?: EmpiricalServiceTimes } {
    // The end: how many events (or the last chunk's length, possibly partial), then the finished flag.
    if (this.replayed !== null) Atomics.store(this.replayed, 0, BigInt(events));
    else Atomics.store(this.control, LAST_COUNT, this.at - (this.chunkEnd - CHUNK));
    Atomics.store(this.control, FINISHED, 1);
    Atomics.add(this.control, EPOCH, 1);
    Atomics.notify(this.control, EPOCH);
    this.waitFor(() => Atomics.load(this.control, DONE) === 1, DONE);
    const reply = receiveMessageOnPort(this.port)?.message as { stats?: QueueStats; serviceTimes?: EmpiricalServiceTimes; error?: string } | undefined;
    this.port.close();
    if (reply !== undefined && reply.error === undefined) modelWorkers!.keep(this.worker);
    else void this.worker.terminate();
    if (reply === undefined || reply.error !== undefined || reply.stats === undefined) {
      throw new Error(`the latency model worker failed: ${reply?.error ?? 'no reply'}`);
    }
    return { stats: reply.stats, serviceTimes: reply.serviceTimes };
  }

  /** Stop the worker without waiting for figures (the replay ended early). */
  abandon(): void {
    this.port.close();
    void this.worker.terminate();
  }
}
