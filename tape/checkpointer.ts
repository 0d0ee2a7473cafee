// Background checkpoints for a tape being written. A tape is written in WAL mode: commits go
// to the -wal file, and a checkpoint copies them into the database file and syncs both. Left
// to the writer, that work happens on the recording's thread: at every 64 MiB of WAL (SQLite's
// automatic checkpoint, a stall of 25-40 ms here) and for the whole tail when the tape closes
// (about 85 ms for a 24 MiB tape, most of it waiting for the disk). Here a thread of its own
// (checkpoint-worker.ts), with its own connection, runs a PASSIVE checkpoint each time the
// writer has committed another MiB of blocks: it never blocks the writer, and the final checkpoint
// only has the last commits left to fold in. The guarantees are SQLite's, unchanged: a
// checkpoint is crash-safe whichever connection runs it.
//
// The thread is kept for the process's next tape (unreferenced while idle), like the source
// worker: its start (an isolate and SQLite's native module) is paid once.

import { Worker } from 'node:worker_threads';
import { compiledWorkerUrl, SMALL_HEAP_LIMITS, WorkerKeeper } from './threads.js';

/** Control words: checkpoints asked for; stop; the worker closed its connection. */
export const CHECKPOINT_REQUESTS = 0;
export const CHECKPOINT_STOP = 1;
export const CHECKPOINT_CLOSED = 2;

/** With no word from the thread for this long, stop waiting for it (it is ended instead). */
const STOP_WAIT_MS = 10_000;

export interface CheckpointJob {
  readonly path: string;
  /** The tape's synchronous setting, for the thread's connection: its checkpoints sync as the writer's would. */
  readonly synchronous: 'NORMAL' | 'FULL';
  readonly control: Int32Array;
}

const checkpointWorkerUrl = (): URL | null => compiledWorkerUrl(import.meta.url, 'tape/checkpoint-worker.js');

const workers = new WorkerKeeper(() => {
  const url = checkpointWorkerUrl();
  if (url === null) throw new Error('the checkpoint worker is not built');
  const worker = new Worker(url, { resourceLimits: SMALL_HEAP_LIMITS });
  // A failure on the thread is reported through the control words; the tape's own
  // checkpoint at close does the work then.
  worker.on('error', () => undefined);
  return worker;
});
/** Tapes checkpointed in the background so far in this process (for tests). */
let jobs = 0;

export const backgroundCheckpointJobs = (): number => jobs;

export class BackgroundCheckpointer {
  private readonly control = new Int32Array(new SharedArrayBuffer(12));
  private stopped = false;

  private constructor(private readonly worker: Worker) {}

  /** A checkpointer for the tape at `path`, or null when the compiled worker is not there. */
  static start(path: string, synchronous: 'NORMAL' | 'FULL'): BackgroundCheckpointer | null {
    if (checkpointWorkerUrl() === null) return null;
    const worker = workers.take();
    jobs++;
    const checkpointer = new BackgroundCheckpointer(worker);
    worker.postMessage({ path, synchronous, control: checkpointer.control } satisfies CheckpointJob);
    return checkpointer;
  }

  /** Ask for a checkpoint of what has been committed so far. */
  request(): void {
    Atomics.add(this.control, CHECKPOINT_REQUESTS, 1);
    Atomics.notify(this.control, CHECKPOINT_REQUESTS);
  }

  /**
   * Stop, and wait (synchronously: the writer closes synchronously) until the thread has
   * finished its checkpoint and closed its connection. The thread is then kept for the next
   * tape; if it does not answer, it is ended.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.control, CHECKPOINT_STOP, 1);
    Atomics.notify(this.control, CHECKPOINT_REQUESTS);
    const result = Atomics.wait(this.control, CHECKPOINT_CLOSED, 0, STOP_WAIT_MS);
    if (result === 'timed-out') {
      void this.worker.terminate();
      return;
    }
    workers.keep(this.worker);
  }
}
