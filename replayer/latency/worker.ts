// The latency model on its own thread. The thread is started once per process and reused: each
// replay that runs the model posts it a job (the model's options and the shared buffers), so
// the thread's start-up (an isolate, its modules, the WebAssembly histogram: 60 to 80 ms here)
// is paid once, like the JIT's warm-up.
//
// During a job the replay thread writes (timestamp, service time) into a shared ring of chunks
// (remote.ts) and publishes each full chunk with an atomic counter; this thread waits on the
// counter and runs the model over each chunk as it comes. When the replay sets the finished
// flag, the last (partial) chunk is run, the figures go to the job's port, and the done flag
// is set and notified (the replay thread waits on it synchronously).

import { parentPort, type MessagePort } from 'node:worker_threads';
import { QueueModel, type QueueModelOptions } from './model.js';
import { CHUNK, CONSUMED, DONE, EPOCH, FINISHED, LAST_COUNT, PUBLISHED, SLOTS } from './remote.js';
import { samplerFor, type ServiceTimeSpec } from './service-time.js';

export interface ModelJob {
  readonly model: Omit<QueueModelOptions, 'sampler'>;
  readonly serviceTime: ServiceTimeSpec;
  readonly seed: number;
  readonly source: string;
  readonly port: MessagePort;
  /** Control words: published chunks, consumed chunks, last chunk's count, finished flag, done flag, epoch. */
  readonly control: Int32Array;
  readonly ts: Float64Array;
  readonly service: Float32Array | null;
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
    let consumed = 0;
    const run = (slot: number, n: number): void => {
      const from = slot * CHUNK;
      model.pushMany(job.ts.subarray(from, from + n), job.service === null ? null : job.service.subarray(from, from + n), n);
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
        const stats = model.finish();
        const serviceTimes = job.model.keepServiceTimes ? model.serviceTimes(job.source) : undefined;
        done({ stats, serviceTimes });
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
