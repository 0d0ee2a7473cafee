// A bare kafkajs eachBatch consumer on a worker thread, for the Kafka benchmark (bench/kafka.ts):
// the baseline kafka-bare-consumer (kafkajs as it is), and the reference case
// kafka-bare-consumer-fast-decoder (with tapedeck's record-batch decoder,
// recorder/sources/kafka-decode.ts, in place of kafkajs's: what the decoder alone gives a
// consumer that does nothing else). On a thread of its own, the consumer has a heap of its
// own, as the recorder's reader thread has (the benchmark's main thread holds the 500,000
// messages the producer cases send, which slows a consumer's garbage collection there). Each
// message names a topic and a group; the consumer reads the topic from the beginning until
// it has seen `events` records, counting.

import { parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { installFastRecordDecoder } from '../recorder/sources/kafka-decode.js';
import { countTopic } from './kafka.js';

interface ConsumerTask {
  readonly brokers: string[];
  readonly events: number;
  readonly fastDecoder: boolean;
}

function run(task: ConsumerTask): void {
  const port = parentPort!;
  // Before kafkajs fetches in this thread (it loads its fetch decoding on the first fetch).
  const decoder = task.fastDecoder ? installFastRecordDecoder() : 'kafkajs';
  const kafka = new Kafka({ clientId: task.fastDecoder ? 'tapedeck-bench-fast-decoder' : 'tapedeck-bench-bare', brokers: task.brokers, logLevel: logLevel.NOTHING });
  port.postMessage(decoder === 'fast' || !task.fastDecoder ? 'ready' : `failed: the fast decoder is not in place: ${decoder}`);
  port.on('message', (job: { topic: string; group: string } | null) => {
    if (job === null) {
      port.close();
      return;
    }
    countTopic(kafka, job.topic, job.group, task.events).then(
      (seen) => port.postMessage(`done ${seen}`),
      (error: unknown) => port.postMessage(`failed: ${(error as Error).message}`),
    );
  });
}

run(workerData as ConsumerTask);
