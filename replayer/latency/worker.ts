// The latency model on its own thread. The thread is started once per process and reused: each
// replay that runs the model posts it a job (the model's options and the shared buffers), so
// the thread's start-up (an isolate, its modules, the WebAssembly histogram: 60 to 80 ms here)
// is paid once, like the JIT's warm-up.
//
// During a job, with service times drawn from a distribution, this thread reads the events'
// timestamps from the tape itself, and models the events the replay thread says it has
// replayed (a count it raises once a block), waiting when it has caught up. With measured
// service times, the replay thread writes (timestamp, service time) into a shared ring of
// chunks (remote.ts) and publishes each full chunk with an atomic counter; this thread waits on
// the counter and runs the model over each chunk as it comes. When the replay sets the finished
// flag, the rest is run, the figures go to the job's port, and the done flag is set and
// notified (the replay thread waits on it synchronously).

import { parentPort, type MessagePort } from 'node:worker_threads';
import { TapeReader } from '../../tape/reader.js';
import { QueueModel, type QueueModelOptions } from './model.js';
import { CHUNK, CONSUMED, DONE, EPOCH, FINISHED, LAST_COUNT, PUBLISHED, SLOTS, type ModelTape } from './remote.js';
import { samplerFor, type ServiceTimeSpec } from './service-time.js';

export interface ModelJob {
  readonly model: Omit<QueueModelOptions, 'sampler'>;
  readonly serviceTime: ServiceTimeSpec;
  readonly seed: number;
  readonly source: string;
  readonly port: MessagePort;
  /** Control words: published chunks, consumed chunks, last chunk's count, finished flag, done flag, epoch. */
  readonly control: Int32Array;
  /** The ring (measured service times), or null when the timestamps come from `tape`. */
  readonly ts: Float64Array | null;
  readonly service: Float32Array | null;
  readonly tape: ModelTape | null;
  /** With `tape`: how many events of the range the replay has applied. */
  readonly replayed: BigInt64Array | null;
}

/**
 * Model the replay's events from the tape's timestamps, as far as the replay has gone: the
 * events from `tape.fromSeq`, `replayed` of them once the replay has finished.
 */
function runFromTape(job: ModelJob, model: QueueModel): void {
  const control = job.control;
  const replayed = job.replayed!;
  const fromSeq = job.tape!.fromSeq;
  /** How many events the replay has applied, as last seen; wait for more once they are modelled. */
  let allowed = 0;
  const more = (modelled: number): number => {
    for (;;) {
      const epoch = Atomics.load(control, EPOCH);
      const now = Number(Atomics.load(replayed, 0));
      if (now > modelled || Atomics.load(control, FINISHED) === 1) return Number(Atomics.load(replayed, 0));
      Atomics.wait(control, EPOCH, epoch);
    }
  };
  const ts = new Float64Array(CHUNK);
  let n = 0;
  let modelled = 0;
  const reader = TapeReader.open(job.tape!.path);
  try {
    blocks: for (const cursor of reader.blocks(fromSeq)) {
      while (reader.advance(cursor)) {
        if (cursor.seq < fromSeq) continue;
        if (modelled === allowed) {
          // Run what is here before waiting, so that the model keeps up with the replay.
          model.pushMany(ts, null, n);
          n = 0;
          allowed = more(modelled);
          if (modelled === allowed) break blocks;
        }
        ts[n++] = cursor.timestampUs;
        modelled++;
        if (n === CHUNK) {
          model.pushMany(ts, null, n);
          n = 0;
        }
      }
    }
    model.pushMany(ts, null, n);
    // The replay's last count: it has finished (FINISHED), or the tape had no more events.
    allowed = more(modelled);
    if (modelled !== allowed) throw new Error(`the tape ${job.tape!.path} holds ${modelled} events from ${fromSeq}; the replay applied ${allowed}`);
  } finally {
    reader.close();
  }
}

function runJob(job: ModelJob): void {
  const control = job.control;
  const done = (message: unknown): void => {
    job.port.postMessage(message);
    job.port.close();
    Atomics.store(control, DONE, 1);
    Atomics.notify(control, DONE);
  };
  try {
    const model = new QueueModel({ ...job.model, sampler: samplerFor(job.serviceTime, job.seed) });
    const figures = (): void => {
      const stats = model.finish();
      const serviceTimes = job.model.keepServiceTimes ? model.serviceTimes(job.source) : undefined;
      done({ stats, serviceTimes });
    };
    if (job.tape !== null) {
      runFromTape(job, model);
      figures();
      return;
    }
    const ring = job.ts!;
    let consumed = 0;
    const run = (slot: number, n: number): void => {
      const from = slot * CHUNK;
      model.pushMany(ring.subarray(from, from + n), job.service === null ? null : job.service.subarray(from, from + n), n);
    };
    for (;;) {
      const epoch = Atomics.load(control, EPOCH);
      const published = Atomics.load(control, PUBLISHED);
      if (consumed < published) {
        run(consumed % SLOTS, CHUNK);
        consumed++;
        Atomics.store(control, CONSUMED, consumed);
        Atomics.notify(control, CONSUMED);
        continue;
      }
      if (Atomics.load(control, FINISHED) === 1) {
        // Everything published before the flag was set has been run; now the partial chunk.
        if (Atomics.load(control, PUBLISHED) !== consumed) continue;
        run(consumed % SLOTS, Atomics.load(control, LAST_COUNT));
        figures();
        return;
      }
      // Sleep until the replay publishes or finishes (it bumps the epoch after either).
      Atomics.wait(control, EPOCH, epoch);
    }
  } catch (error) {
    done({ error: (error as Error).stack ?? String(error) });
  }
}

parentPort!.on('message', (job: ModelJob) => runJob(job));
