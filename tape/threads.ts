// Plumbing shared by the worker threads of recorder/ (the recording pipelines) and replayer/
// (republish's reader, the latency model): finding a worker's compiled module, what a failing
// worker posts, the wait that keeps a worker a bounded number of messages and bytes ahead, the main
// thread's inbox of a worker's messages, and the keeper of a worker reused from job to job. (Here rather than in either of them because both use
// it, as load-engine.ts is.)

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MessagePort, Worker } from 'node:worker_threads';
import { TapedeckError } from '../engine/errors.js';

/**
 * The compiled worker module `file`, named from the build's root (e.g.
 * "recorder/source-worker.js"), for a caller in the same folder: beside the caller when it
 * runs from dist/, else in dist/ (the tests run from source); null when neither exists.
 */
export function compiledWorkerUrl(callerUrl: string, file: string): URL | null {
  const parts = file.split('/');
  const sibling = new URL(`./${parts[parts.length - 1]}`, callerUrl);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL(`${'../'.repeat(parts.length - 1)}dist/${file}`, callerUrl);
  return existsSync(fileURLToPath(built)) ? built : null;
}

/**
 * V8 limits for a long-lived thread that keeps little between messages (the synthetic
 * source's generator, the background checkpoints). V8 doubles an isolate's young generation
 * each time the bytes that survived its scavenges since the last doubling add up to its size,
 * so over a long recording every thread's young generation grows to the default cap (48 MB
 * here); survivors are few on these threads, and 12 MB costs no measured speed. Recording
 * 100M synthetic events peaked at 188.8 MB of RSS with it and 214.0 MB without it
 * (docs/recording.md).
 */
export const SMALL_HEAP_LIMITS = { maxYoungGenerationSizeMb: 12 } as const;

/** What a worker posts when it fails: the error's code (a TapedeckError's), name and message. */
export interface WorkerFailure {
  readonly type: 'error';
  readonly code: string | null;
  readonly name: string;
  readonly message: string;
}

export function workerFailure(error: unknown): WorkerFailure {
  const e = error as Error & { code?: unknown };
  return { type: 'error', code: typeof e.code === 'string' ? e.code : null, name: e.name ?? 'Error', message: e.message ?? String(error) };
}

/**
 * What `promise` gives, or `late` if it has not settled within `ms` (the timer is cleared
 * either way): a bounded wait for a thread or a client to finish.
 */
export async function within<T>(promise: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(late), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Atomics.waitAsync (Node 16+; not in this project's TypeScript lib). */
export const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** Where a worker posts its messages (its MessagePort, or parentPort). */
export interface MessagePoster {
  postMessage(message: unknown, transfer?: readonly ArrayBuffer[]): void;
}

/** Post `message` on `port`, handing over `transfer`; its size in bytes (see SendWindow.send). */
function postCounted(port: MessagePoster, message: unknown, transfer: readonly ArrayBuffer[], copiedBytes: number): number {
  let bytes = copiedBytes;
  for (const buffer of transfer) bytes += buffer.byteLength;
  port.postMessage(message, transfer);
  return bytes;
}

/**
 * How far a worker runs ahead of the main thread, which counts the messages it took in
 * control[index]: after each message the worker waits while `maxMessages` are untaken, or
 * while the untaken ones hold `maxBytes` or more (messages vary in size: a parse worker's chunk
 * holds 4,096 short lines, or a few rejected lines of a megabyte each), unless
 * control[stopIndex] asks it to stop. A message larger than `maxBytes` is still sent, and the
 * worker then waits until the main thread has taken it. The sizes are this side's own record
 * of what it sent.
 */
export class SendWindow {
  /** Sizes of the messages sent and not yet known to be taken, by message number mod maxMessages. */
  private readonly sizes: Float64Array;
  private sent = 0;
  /** Messages known to be taken: their sizes are out of `bytes`. */
  private known = 0;
  private bytes = 0;

  constructor(
    private readonly control: Int32Array,
    private readonly index: number,
    private readonly stopIndex: number,
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {
    this.sizes = new Float64Array(maxMessages);
  }

  /** Bytes of the messages sent and not known to be taken (as of the last wait). */
  get bytesAhead(): number {
    return this.bytes;
  }

  /**
   * Post `message` on `port`, handing over the buffers in `transfer`, and wait for room for the
   * next (blocking the thread). The message's size is the bytes of `transfer` and `copiedBytes`
   * (what the post copies: rejected lines), taken before the post, which leaves the buffers
   * empty here: taken after it, a block counted 0 bytes and only rejects bounded the window.
   */
  send(port: MessagePoster, message: unknown, transfer: readonly ArrayBuffer[], copiedBytes = 0): void {
    this.sentMessage(postCounted(port, message, transfer, copiedBytes));
  }

  /**
   * send without blocking the thread's event loop (a Kafka client's heartbeats run on it):
   * the message is posted and counted at once; the promise settles when there is room.
   */
  sendAsync(port: MessagePoster, message: unknown, transfer: readonly ArrayBuffer[], copiedBytes = 0): Promise<void> {
    return this.sentMessageAsync(postCounted(port, message, transfer, copiedBytes));
  }

  /** A message of `bytes` was sent: wait for room for the next (blocking the thread). */
  sentMessage(bytes: number): void {
    this.add(bytes);
    for (let taken = this.full(); taken !== null; taken = this.full()) Atomics.wait(this.control, this.index, taken, 1000);
  }

  /** sentMessage without blocking the thread's event loop (a Kafka client's heartbeats run on it). */
  private async sentMessageAsync(bytes: number): Promise<void> {
    this.add(bytes);
    for (let taken = this.full(); taken !== null; taken = this.full()) {
      const wait = waitAsync(this.control, this.index, taken, 1000);
      if (wait.async) await wait.value;
    }
  }

  private add(bytes: number): void {
    this.sizes[this.sent % this.maxMessages] = bytes;
    this.sent++;
    this.bytes += bytes;
  }

  /** null when there is room for the next message (or a stop was asked); else the count of taken messages to wait past. */
  private full(): number | null {
    const taken = Atomics.load(this.control, this.index);
    while (this.known < taken) this.bytes -= this.sizes[this.known++ % this.maxMessages];
    const untaken = this.sent - taken;
    if ((untaken < this.maxMessages && (untaken === 0 || this.bytes < this.maxBytes)) || Atomics.load(this.control, this.stopIndex) !== 0) return null;
    return taken;
  }
}

/** A worker a WorkerInbox gave up on after a stop: its name, and how long it had been quiet. */
export interface AbandonedWorker {
  readonly what: string;
  readonly quietMs: number;
}

/** The first worker of `inboxes` that one of them gave up on (WorkerInbox.abandoned), or null. */
export function firstAbandoned(inboxes: readonly WorkerInbox<{ readonly type: string }>[]): AbandonedWorker | null {
  for (const inbox of inboxes) if (inbox.abandoned !== null) return inbox.abandoned;
  return null;
}

/** What WorkerInbox.next() returns when it has given up waiting on a stopped worker (giveUpAfterQuiet). */
export const GAVE_UP: unique symbol = Symbol('gave up on the worker');

/**
 * After a stop, how long the recorder waits for a word from a reader thread (the source worker,
 * an NDJSON parse worker) before it takes the thread as stuck, ends it and closes the tape
 * with what it took. Such a thread checks for a stop between blocks or chunks, a few
 * milliseconds apart. The Kafka reader has a limit of its own (pipeline.ts).
 */
export const STOPPED_QUIET_MS = 10_000;

/**
 * A worker's messages, in order, on the main thread. A failure (a WorkerFailure message, an
 * uncaught error in the worker, or its exit before done() was called) is thrown by next().
 * The messages come from the worker itself or, for a worker kept for several jobs, from the
 * job's own `port`.
 */
export class WorkerInbox<M extends { readonly type: string }> {
  private readonly queue: (M | WorkerFailure)[] = [];
  private wake: (() => void) | null = null;
  private finished = false;
  private readonly detach: () => void;
  /** Set by giveUpAfterQuiet: how long next() waits for a message before returning GAVE_UP. */
  private quietLimitMs: number | null = null;
  /** nextOrGaveUp() returned GAVE_UP. */
  private gaveUp = false;
  /** When the worker last sent a message, taken by `intercept` or not (performance.now()). */
  private heardAtMs = 0;

  /** `what` names the worker in errors; `intercept` may take a message out of the queue (returns true). */
  constructor(
    worker: Worker,
    private readonly what: string,
    intercept?: (message: M) => boolean,
    port?: MessagePort,
  ) {
    const push = (message: M | WorkerFailure): void => {
      this.queue.push(message);
      const wake = this.wake;
      this.wake = null;
      wake?.();
    };
    const onMessage = (message: M | WorkerFailure): void => {
      this.heardAtMs = performance.now();
      if (message.type !== 'error' && intercept?.(message as M)) return;
      push(message);
    };
    const onError = (error: Error): void => push({ type: 'error', code: null, name: error.name, message: error.message });
    const onExit = (code: number): void => {
      if (!this.finished) push({ type: 'error', code: null, name: 'Error', message: `${what} exited (code ${code}) before it finished` });
    };
    const source = port ?? worker;
    source.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    this.detach = () => {
      source.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
  }

  async next(): Promise<M> {
    const message = await this.nextOrGaveUp();
    if (message === GAVE_UP) throw new Error(`${this.what} sent nothing for ${this.quietLimitMs} ms after it was asked to stop`);
    return message;
  }

  /**
   * The next message; or GAVE_UP, after giveUpAfterQuiet(ms), when the worker has sent nothing
   * for `ms` (a message `intercept` took counts: the worker is not stuck).
   */
  async nextOrGaveUp(): Promise<M | typeof GAVE_UP> {
    let quietSinceMs = performance.now();
    while (this.queue.length === 0) {
      const limit = this.quietLimitMs;
      if (limit === null) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        quietSinceMs = performance.now();
        continue;
      }
      const woken = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(
          () => {
            this.wake = null;
            resolve(false);
          },
          Math.max(0, quietSinceMs + limit - performance.now()),
        );
        this.wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!woken && this.queue.length === 0) {
        if (this.heardAtMs > quietSinceMs) {
          quietSinceMs = this.heardAtMs;
          continue;
        }
        this.gaveUp = true;
        return GAVE_UP;
      }
    }
    const message = this.queue.shift()!;
    if (message.type === 'error') {
      this.finished = true;
      const failure = message as WorkerFailure;
      throw failure.code === null ? new Error(`${this.what}: ${failure.name}: ${failure.message}`) : new TapedeckError(failure.code, failure.message);
    }
    return message as M;
  }

  /** Once nextOrGaveUp() has given up on the worker: its name, and how long it was quiet; else null. */
  get abandoned(): AbandonedWorker | null {
    return this.gaveUp ? { what: this.what, quietMs: this.quietLimitMs! } : null;
  }

  /**
   * The worker was asked to stop: from now on next() waits at most `ms` for each message and
   * returns GAVE_UP when none came. A worker stuck in code that never returns (a user's engine
   * codec or generate() hook looping) would otherwise hold the recording, and its Ctrl-C, for
   * ever; one that is only slow keeps its `ms` after each message it sends.
   */
  giveUpAfterQuiet(ms: number): void {
    if (this.quietLimitMs !== null) return;
    this.quietLimitMs = ms;
    // A next() already waiting starts again, with the limit.
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /**
   * No more messages are expected: the worker's exit is not a failure. Messages already
   * received can still be taken with next(); the inbox stops listening (a kept worker's
   * next job has an inbox of its own).
   */
  done(): void {
    this.finished = true;
    this.detach();
  }
}

/**
 * One idle worker of a kind, kept between jobs so that a process pays the thread's start (an
 * isolate, its modules, its code compiled as it warms up) once: the source worker, the
 * checkpoint thread, the latency model. A kept worker is unreferenced, so it never keeps the
 * process alive; a worker that ended a job in any other way than finishing it should be
 * terminated rather than kept.
 */
export class WorkerKeeper {
  private idle: Worker | null = null;

  constructor(private readonly start: () => Worker) {}

  /** The kept worker, or a new one, referenced. */
  take(): Worker {
    const kept = this.idle;
    this.idle = null;
    if (kept !== null) {
      kept.ref();
      return kept;
    }
    const worker = this.start();
    worker.once('exit', () => {
      if (this.idle === worker) this.idle = null;
    });
    return worker;
  }

  /** Keep `worker` for the next job (if one is kept already, `worker` is ended). */
  keep(worker: Worker): void {
    worker.unref();
    if (this.idle === null) this.idle = worker;
    else void worker.terminate();
  }

  /** End the kept worker, if any: the next job starts a new one. */
  async end(): Promise<void> {
    const kept = this.idle;
    this.idle = null;
    await kept?.terminate();
  }

  /** The kept worker's thread id, or null (for tests). */
  get keptThreadId(): number | null {
    return this.idle?.threadId ?? null;
  }
}
