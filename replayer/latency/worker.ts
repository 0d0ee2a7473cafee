// The latency model on its own thread: the replay loop hands over (timestamp, service time)
// in chunks, so the model costs the replay thread a store or two per event (remote.ts).
//
// Protocol: workerData holds the model's options, a MessagePort for the result, and a shared
// Int32Array: [0] chunks processed, [1] done flag. Chunks arrive as messages {ts, service, n};
// {finish: true} ends the run: the figures go to the port, then the done flag is set and
// notified (the replay thread waits on it synchronously).

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { QueueModel, type QueueModelOptions } from './model.js';
import { samplerFor, type ServiceTimeSpec } from './service-time.js';

export interface ModelWorkerData {
  readonly model: Omit<QueueModelOptions, 'sampler'>;
  readonly serviceTime: ServiceTimeSpec;
  readonly seed: number;
  readonly source: string;
  readonly port: MessagePort;
  readonly shared: Int32Array;
}

export type ModelChunk = { readonly ts: Float64Array; readonly service: Float32Array | null; readonly n: number } | { readonly finish: true };

const data = workerData as ModelWorkerData;
const shared = data.shared;

function done(message: unknown): void {
  data.port.postMessage(message);
  Atomics.store(shared, 1, 1);
  Atomics.notify(shared, 1);
}

try {
  const model = new QueueModel({ ...data.model, sampler: samplerFor(data.serviceTime, data.seed) });
  parentPort!.on('message', (chunk: ModelChunk) => {
    try {
      if ('finish' in chunk) {
        const stats = model.finish();
        const serviceTimes = data.model.keepServiceTimes ? model.serviceTimes(data.source) : undefined;
        done({ stats, serviceTimes });
        parentPort!.close();
        return;
      }
      model.pushMany(chunk.ts, chunk.service, chunk.n);
      Atomics.add(shared, 0, 1);
      Atomics.notify(shared, 0);
    } catch (error) {
      done({ error: (error as Error).stack ?? String(error) });
    }
  });
} catch (error) {
  done({ error: (error as Error).stack ?? String(error) });
}
