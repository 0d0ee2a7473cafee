// A sender thread of `replay --to-kafka` (see republish.ts and republish-send.ts): loads the
// engine, opens the tape and its own Kafka producer, says it is ready, and on the go sends its
// share of the partitions, posting its progress after each request and its outcome at the end.

import { parentPort, workerData } from 'node:worker_threads';
import { TapedeckError } from '../engine/errors.js';
import { loadEngine } from '../tape/load-engine.js';
import { TapeReader } from '../tape/reader.js';
import { workerFailure } from '../tape/threads.js';
import type { SenderMessage, SenderTask } from './republish.js';
import { republishClient, republishProducer, sendRange } from './republish-send.js';

async function run(task: SenderTask): Promise<void> {
  const port = parentPort!;
  const control = new Int32Array(task.control);
  const post = (message: SenderMessage): void => port.postMessage(message);
  const engine = await loadEngine(task.engineSpec);
  const reader = TapeReader.open(task.path);
  const producer = republishProducer(republishClient(task.brokers, task.client, `tapedeck-republish-${task.plan.sender + 1}`));
  try {
    try {
      await producer.connect();
    } catch (cause) {
      throw new TapedeckError('E_KAFKA_CONNECT', `cannot reach Kafka at ${task.brokers.join(',')}: ${(cause as Error).message}`, { cause });
    }
    const go = new Promise<number>((resolve) => port.once('message', (m: { startEpochMs: number }) => resolve(m.startEpochMs)));
    post({ type: 'ready' });
    const startEpochMs = await go;
    const outcome = await sendRange(reader, engine, producer, { ...task.plan, startEpochMs }, {
      stop: () => Atomics.load(control, 0) !== 0,
      onProgress: (sent, earliestUnacked) => post({ type: 'progress', sent, earliestUnacked }),
    });
    const failure = outcome.failure === null ? null : outcome.failure instanceof Error ? outcome.failure.message : String(outcome.failure);
    post({ type: 'done', outcome: { ...outcome, failure } });
  } finally {
    reader.close();
    await producer.disconnect().catch(() => undefined);
  }
}

run(workerData as SenderTask).catch((error: unknown) => parentPort!.postMessage(workerFailure(error)));
