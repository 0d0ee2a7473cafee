// The replay thread's side of the latency model worker (worker.ts). The two threads share a
// ring of chunks in SharedArrayBuffers: push() writes the event's timestamp (and measured
// service time) into the current chunk; a full chunk is published with one atomic store, and
// the worker, waiting on that counter, runs the model over it. Nothing is allocated or posted
// per chunk, and no timer is involved (the determinism guard forbids timers while the engine
// runs). When the worker falls SLOTS chunks behind, push() waits for it, so memory is bounded.
// finish() publishes the last, partial chunk and waits, synchronously, for the figures. The
// thread is kept for the next replay (worker.ts).

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
/** Bumped on every publish and on finish: what the worker sleeps on. */
export const EPOCH = 5;
/** With no progress from the worker for this long, give up rather than wait forever. */
const STALL_MS = 60_000;

/** The compiled worker (see compiledWorkerUrl). */
export const modelWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'replayer/latency/worker.js');

/** The model's thread, idle between replays (one per process, kept; see worker.ts). */
let modelWorkers: WorkerKeeper | null = null;

export class RemoteModel {
  private readonly worker: Worker;
  private readonly port;
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * 8));
  private readonly ts = new Float64Array(new SharedArrayBuffer(8 * CHUNK * SLOTS));
  private readonly service: Float32Array | null;
  /** Where the next event goes in the ring, and where the current chunk ends. */
  private at = 0;
  private chunkEnd = CHUNK;
  private published = 0;

  constructor(url: URL, data: Omit<ModelJob, 'port' | 'control' | 'ts' | 'service'>, measured: boolean) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.service = measured ? new Float32Array(new SharedArrayBuffer(4 * CHUNK * SLOTS)) : null;
    const job: ModelJob = { ...data, port: port2, control: this.control, ts: this.ts, service: this.service };
    modelWorkers ??= new WorkerKeeper(() => new Worker(url));
    this.worker = modelWorkers.take();
    // The replay waits for the model synchronously: the thread must not keep the process alive.
    this.worker.unref();
    this.worker.postMessage(job, [port2]);
  }

  push(timestampUs: number, serviceUs: number): void {
    const at = this.at;
    this.ts[at] = timestampUs;
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

  finish(): { stats: QueueStats; serviceTimes?: EmpiricalServiceTimes } {
    // The last chunk, possibly partial: its length, then the finished flag.
    Atomics.store(this.control, LAST_COUNT, this.at - (this.chunkEnd - CHUNK));
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
