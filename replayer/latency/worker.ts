// The latency model on its own thread: the replay thread writes (timestamp, service time) into
// a shared ring of chunks (remote.ts) and publishes each full chunk with an atomic counter; this
// thread waits on the counter and runs the model over each chunk as it comes. When the replay
// sets the finished flag, the last (partial) chunk is run, the figures go to the port, and the
// done flag is set and notified (the replay thread waits on it synchronously).

import { workerData, type MessagePort } from 'node:worker_threads';
import { QueueModel, type QueueModelOptions } from './model.js';
import { CHUNK, CONSUMED, DONE, EPOCH, FINISHED, LAST_COUNT, PUBLISHED, SLOTS } from './remote.js';
import { samplerFor, type ServiceTimeSpec } from './service-time.js';

export interface ModelWorkerData {
  readonly model: Omit<QueueModelOptions, 'sampler'>;
  readonly serviceTime: ServiceTimeSpec;
  readonly seed: number;
  readonly source: string;
  readonly port: MessagePort;
  /** Control words: published chunks, consumed chunks, last chunk's count, finished flag, done flag. */
  readonly control: Int32Array;
  readonly ts: Float64Array;
  readonly service: Float32Array | null;
}

const data = workerData as ModelWorkerData;
const control = data.control;

function done(message: unknown): void {
  data.port.postMessage(message);
  Atomics.store(control, DONE, 1);
  Atomics.notify(control, DONE);
}

try {
  const model = new QueueModel({ ...data.model, sampler: samplerFor(data.serviceTime, data.seed) });
  let consumed = 0;
  const run = (slot: number, n: number): void => {
    const from = slot * CHUNK;
    model.pushMany(data.ts.subarray(from, from + n), data.service === null ? null : data.service.subarray(from, from + n), n);
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
      const serviceTimes = data.model.keepServiceTimes ? model.serviceTimes(data.source) : undefined;
      done({ stats, serviceTimes });
      break;
    }
    // Sleep until the replay publishes or finishes (it bumps the epoch after either).
    Atomics.wait(control, EPOCH, epoch);
  }
} catch (error) {
  done({ error: (error as Error).stack ?? String(error) });
}
