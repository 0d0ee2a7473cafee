// Recording on two threads. A source that can describe itself as plain data
// (Source.workerSpec) is read on a worker thread (source-worker.ts), which parses and encodes
// its events into finished blocks; the main thread decodes each block with the engine's codec,
// applies its events for the live checkpoints, and commits it. Reading and parsing (JSON
// lines, the generator) then run beside the engine and SQLite instead of before them.
//
// The worker numbers blocks and rejects from where the tape ends, builds them with the same
// BlockBuilder, and sends with each block the source position after its last input, so a
// commit holds exactly what it would on one thread: the tape is byte for byte the same.
// Flow control: the worker stays at most MAX_IN_FLIGHT batches ahead (a counter in shared
// memory that the main thread advances), so memory stays bounded whatever the speeds.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TapedeckError } from '../engine/errors.js';
import type { EncodedBlock } from '../tape/block.js';
import type { RejectRecord } from '../tape/schema.js';
import type { SourceReject, SourceSpec } from './source.js';

/** Batches the worker may be ahead of the main thread. */
export const MAX_IN_FLIGHT = 8;
/** Control words in shared memory: batches the main thread has committed; and a stop request. */
export const CONTROL_CONSUMED = 0;
export const CONTROL_STOP = 1;

export interface PipelineTask {
  readonly spec: SourceSpec;
  /** --engine: a built-in name or a module path; the worker loads it for its codec. */
  readonly engineSpec: string;
  readonly startSeq: number;
  readonly firstBlockNo: number;
  readonly blockEvents: number;
  readonly quarantine: boolean;
  /** Inputs read and quarantined before this run (a resumed tape's). */
  readonly read: number;
  readonly quarantined: number;
  readonly control: SharedArrayBuffer;
}

export type PipelineMessage =
  | {
      readonly type: 'batch';
      readonly block: EncodedBlock | null;
      readonly rejects: readonly RejectRecord[];
      /** Inputs read and quarantined in all, after this batch. */
      readonly read: number;
      readonly quarantined: number;
      /** Where the source resumes after this batch's last input (undefined: nothing read yet). */
      readonly position: unknown;
    }
  | { readonly type: 'strict-reject'; readonly reject: SourceReject }
  | { readonly type: 'end'; readonly stopped: boolean }
  | { readonly type: 'error'; readonly code: string | null; readonly name: string; readonly message: string };

/** The compiled worker: beside this file in dist/, or in dist/ when this runs from source (tests); null when neither exists. */
export function sourceWorkerUrl(): URL | null {
  const sibling = new URL('./source-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL('../dist/recorder/source-worker.js', import.meta.url);
  return existsSync(fileURLToPath(built)) ? built : null;
}

export class SourcePipeline {
  private readonly worker: Worker;
  private readonly control: Int32Array;
  private readonly queue: PipelineMessage[] = [];
  private wake: (() => void) | null = null;
  private finished = false;

  constructor(url: URL, task: Omit<PipelineTask, 'control'>) {
    const control = new SharedArrayBuffer(8);
    this.control = new Int32Array(control);
    this.worker = new Worker(url, { workerData: { ...task, control } satisfies PipelineTask });
    const push = (message: PipelineMessage): void => {
      this.queue.push(message);
      const wake = this.wake;
      this.wake = null;
      wake?.();
    };
    this.worker.on('message', push);
    this.worker.on('error', (error: Error) => push({ type: 'error', code: null, name: error.name, message: error.message }));
    this.worker.on('exit', (code) => {
      if (!this.finished) push({ type: 'error', code: null, name: 'Error', message: `the source worker exited (code ${code}) before the end of the source` });
    });
  }

  /** The worker's messages in order, up to and including 'end' (errors are thrown). */
  async *messages(): AsyncGenerator<Exclude<PipelineMessage, { type: 'error' }>> {
    for (;;) {
      if (this.queue.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
      const message = this.queue.shift()!;
      if (message.type === 'error') {
        this.finished = true;
        throw message.code === null ? new Error(`source worker: ${message.name}: ${message.message}`) : new TapedeckError(message.code, message.message);
      }
      if (message.type === 'end' || message.type === 'strict-reject') this.finished = true;
      yield message;
      if (this.finished) return;
    }
  }

  /** The main thread committed a batch: the worker may send one more. */
  consumed(): void {
    Atomics.add(this.control, CONTROL_CONSUMED, 1);
    Atomics.notify(this.control, CONTROL_CONSUMED);
  }

  /** Ask the source to end after its current batch; what it read still arrives. */
  stop(): void {
    Atomics.store(this.control, CONTROL_STOP, 1);
    Atomics.notify(this.control, CONTROL_CONSUMED);
  }

  async close(): Promise<void> {
    this.finished = true;
    await this.worker.terminate();
  }
}
