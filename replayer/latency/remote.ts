// The replay thread's side of the latency model worker (worker.ts). push() stores the event's
// timestamp and service time in a chunk; flush(), between blocks, sends full chunks (their
// buffers transferred, not copied); finish() waits, synchronously, for the figures. At most MAX_IN_FLIGHT chunks wait
// for the worker, so memory stays bounded when the model is slower than the replay.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { EmpiricalServiceTimes } from './service-time.js';
import type { QueueStats } from './model.js';
import type { ModelChunk, ModelWorkerData } from './worker.js';

const CHUNK = 16_384;
const MAX_IN_FLIGHT = 64;
/** With no progress from the worker for this long, give up rather than wait forever. */
const STALL_MS = 60_000;

/** The compiled worker: beside this file in dist/, or in dist/ when this runs from source (tests). */
export function modelWorkerUrl(): URL | null {
  const sibling = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL('../../dist/replayer/latency/worker.js', import.meta.url);
  return existsSync(fileURLToPath(built)) ? built : null;
}

export class RemoteModel {
  private readonly worker: Worker;
  private readonly port;
  private readonly shared = new Int32Array(new SharedArrayBuffer(8));
  private ts = new Float64Array(CHUNK);
  private service: Float32Array | null;
  private n = 0;
  private sent = 0;

  constructor(url: URL, data: Omit<ModelWorkerData, 'port' | 'shared'>, measured: boolean) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.service = measured ? new Float32Array(CHUNK) : null;
    this.worker = new Worker(url, { workerData: { ...data, port: port2, shared: this.shared } satisfies ModelWorkerData, transferList: [port2] });
    // The worker must not keep the process alive after an early exit of the replay.
    this.worker.unref();
  }

  push(timestampUs: number, serviceUs: number): void {
    if (this.n === this.ts.length) this.grow();
    this.ts[this.n] = timestampUs;
    if (this.service !== null) this.service[this.n] = serviceUs;
    this.n++;
  }

  private grow(): void {
    const ts = new Float64Array(this.ts.length * 2);
    ts.set(this.ts);
    this.ts = ts;
    if (this.service !== null) {
      const service = new Float32Array(ts.length);
      service.set(this.service);
      this.service = service;
    }
  }

  /**
   * Send what has been pushed once it fills a chunk. The replay calls this between blocks,
   * outside the determinism guard: posting a message uses timers the guard forbids.
   */
  flush(): void {
    if (this.n >= CHUNK) this.send();
  }

  private send(): void {
    if (this.sent - Atomics.load(this.shared, 0) >= MAX_IN_FLIGHT) this.waitFor(() => this.sent - Atomics.load(this.shared, 0) < MAX_IN_FLIGHT, 0);
    const chunk: ModelChunk = { ts: this.ts, service: this.service, n: this.n };
    this.worker.postMessage(chunk, this.service === null ? [this.ts.buffer as ArrayBuffer] : [this.ts.buffer as ArrayBuffer, this.service.buffer as ArrayBuffer]);
    this.sent++;
    this.ts = new Float64Array(CHUNK);
    if (this.service !== null) this.service = new Float32Array(CHUNK);
    this.n = 0;
  }

  /** Block until `ready`, waking on changes of shared[index]; fail after STALL_MS without progress. */
  private waitFor(ready: () => boolean, index: number): void {
    let last = Atomics.load(this.shared, 0);
    let quietMs = 0;
    while (!ready()) {
      const seen = Atomics.load(this.shared, index);
      if (Atomics.wait(this.shared, index, seen, 1000) === 'timed-out') {
        const progress = Atomics.load(this.shared, 0);
        quietMs = progress === last ? quietMs + 1000 : 0;
        last = progress;
        const early = receiveMessageOnPort(this.port);
        if (early !== undefined) throw new Error(`the latency model worker failed: ${(early.message as { error?: string }).error ?? 'unexpected message'}`);
        if (quietMs >= STALL_MS) throw new Error(`the latency model worker made no progress for ${STALL_MS / 1000} s`);
      }
    }
  }

  finish(): { stats: QueueStats; serviceTimes?: EmpiricalServiceTimes } {
    if (this.n > 0) this.send();
    this.worker.postMessage({ finish: true } satisfies ModelChunk);
    this.waitFor(() => Atomics.load(this.shared, 1) === 1, 1);
    const reply = receiveMessageOnPort(this.port)?.message as { stats?: QueueStats; serviceTimes?: EmpiricalServiceTimes; error?: string } | undefined;
    this.port.close();
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
