// A bare kafkajs producer on a worker thread, for the Kafka benchmark's multi-threaded
// reference (bench/kafka.ts): builds its share of the benchmark's messages beforehand (the
// partitions p with p % threads === thread), then sends them to each topic it is given, 2,000
// per request, 4 in flight, and says when it is done.

import { parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { buildBenchMessages, sendBenchMessages } from './kafka.js';

interface ProducerTask {
  readonly brokers: string[];
  readonly events: number;
  readonly partitions: number;
  readonly thread: number;
  readonly threads: number;
}

async function run(task: ProducerTask): Promise<void> {
  const port = parentPort!;
  const batches = buildBenchMessages(task.events, task.partitions, (p) => p % task.threads === task.thread);
  const kafka = new Kafka({ clientId: `tapedeck-bench-${task.thread + 1}`, brokers: task.brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 4 });
  await producer.connect();
  port.postMessage('ready');
  port.on('message', (topic: string | null) => {
    if (topic === null) {
      producer.disconnect().finally(() => port.close());
      return;
    }
    sendBenchMessages(producer, topic, batches).then(
      () => port.postMessage('done'),
      (error: unknown) => port.postMessage(`failed: ${(error as Error).message}`),
    );
  });
}

void run(workerData as ProducerTask);
