// Kafka benchmarks against the real broker (scripts/kafka/broker.sh), each against a bare
// client baseline measured in the same run on the same topic:
//   record-kafka    `record --source kafka` (recordTape + KafkaSource, world engine, live
//                   checkpoints) vs a bare kafkajs eachBatch consumer that only counts, on a
//                   thread of its own (bench/consumer-worker.ts; the same consumer on the main
//                   thread, the baseline of earlier runs, is printed as a reference); the
//                   recorder's reader uses its own record-batch decoder, so the bare consumer
//                   with that decoder is measured too, as a reference, and record-kafka-cold
//                   starts a new reader thread each run (record-kafka's runs reuse the one the
//                   previous run kept), as a single `tapedeck record` process does;
//   republish-max   `replay --to-kafka --speed max` vs a bare kafkajs producer sending the
//                   same messages (built beforehand) in the same batches; republish runs one
//                   sender thread per core (at most 4), so the same number of bare producers
//                   on as many threads is measured too, as a reference;
//   kcat            kcat's consume rate on the same topic, printed as a reference.
// The consumer cases are measured in rounds, one run of each in turn, and so are the producer
// cases (rounds.ts), so that a slow spell of this shared machine or of the broker falls on
// a case and its baseline alike.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { measureRounds, type RoundResult } from './rounds.js';
import { Worker } from 'node:worker_threads';
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { worldEngine, WorldTraffic, worldCodec } from '../engine/world/index.js';
import { endKeptKafkaWorker } from '../recorder/pipeline.js';
import { recordTape } from '../recorder/record.js';
import { KafkaSource } from '../recorder/sources/kafka.js';
import { defaultSenders, republishTape } from '../replayer/republish.js';

export interface KafkaBenchRow extends RoundResult {
  readonly description: string;
  readonly baseline: string | null;
  readonly ratioToBaseline: number | null;
}

interface BenchCase {
  readonly name: string;
  readonly description: string;
  readonly baseline: string | null;
  /** Runs once and returns the number of events it handled. */
  readonly run: () => Promise<number>;
  readonly before?: () => Promise<void>;
}

const PARTITIONS = 12;

/** The benchmark's messages (of the partitions `keep` accepts), in requests of 2,000. */
export function buildBenchMessages(events: number, partitions: number, keep: (partition: number) => boolean = () => true): Message[][] {
  const batches: Message[][] = [];
  let batch: Message[] = [];
  const traffic = new WorldTraffic({ seed: 1, events, partitions });
  for (let r = traffic.next(); r !== null; r = traffic.next()) {
    if (!keep(r.partition)) continue;
    batch.push({ partition: r.partition, key: Buffer.from(r.key ?? ''), value: Buffer.from(JSON.stringify(worldCodec.toJSON(r.event))), timestamp: String(Math.floor(r.timestampUs / 1000)) });
    if (batch.length === 2000) {
      batches.push(batch);
      batch = [];
    }
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/**
 * The bare consumer: a new kafkajs consumer in group `groupId` reads `topic` from the beginning
 * with eachBatch, counting, until it has seen `events` records; returns how many it saw.
 */
export async function countTopic(kafka: Kafka, topic: string, groupId: string, events: number): Promise<number> {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          seen += batch.messages.length;
          if (seen >= events) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return seen;
}

/** Send the requests, 4 in flight, acks=-1. */
export async function sendBenchMessages(producer: Producer, topic: string, batches: readonly Message[][]): Promise<void> {
  const inFlight: Promise<unknown>[] = [];
  for (const b of batches) {
    inFlight.push(producer.send({ topic, messages: b, acks: -1 }));
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

export async function runKafkaBench(brokers: string[], events: number, reps: number, dir: string): Promise<{ rows: KafkaBenchRow[]; notes: string[] }> {
  const kafka = new Kafka({ clientId: 'tapedeck-bench', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const stamp = `${process.pid}-${Date.now()}`;
  const topic = `bench-src-${stamp}`;
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
  let targets = 0;
  const newTarget = async (): Promise<string> => {
    const t = `bench-dst-${stamp}-${targets++}`;
    await admin.createTopics({ topics: [{ topic: t, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
    return t;
  };

  // The messages: what the topic holds and what the producer baseline sends. Built here for
  // the topic, and again for the producer cases, so that the consumer and recorder cases run
  // without half a million messages in this thread's heap (they slow its garbage collection).
  const producer = kafka.producer({ allowAutoTopicCreation: false, maxInFlightRequests: 4 });
  await producer.connect();
  process.stderr.write(`kafka: producing ${events} events into ${topic}...\n`);
  await sendBenchMessages(producer, topic, buildBenchMessages(events, PARTITIONS));

  const rows: KafkaBenchRow[] = [];
  const notes: string[] = [];
  /** Measure `cases` in rounds (rounds.ts); baselines come first. */
  const measureKafkaRounds = async (cases: readonly BenchCase[]): Promise<void> => {
    const measured = await measureRounds(cases, reps);
    for (const [i, c] of cases.entries()) {
      const m = measured[i];
      const base = c.baseline === null ? undefined : rows.find((r) => r.name === c.baseline);
      if (c.baseline !== null && base === undefined) throw new Error(`bench: ${c.name}'s baseline ${c.baseline} was not measured before it`);
      rows.push({ ...m, description: c.description, baseline: c.baseline, ratioToBaseline: base === undefined ? null : m.eventsPerSec / base.eventsPerSec });
    }
  };
  const measure = (name: string, description: string, baseline: string | null, run: () => Promise<number>): Promise<void> => measureKafkaRounds([{ name, description, baseline, run }]);

  let groups = 0;
  // The bare consumers run on threads of their own (bench/consumer-worker.ts): kafkajs as it is
  // (the baseline), and with tapedeck's record-batch decoder (a reference).
  const consumerThread = async (fastDecoder: boolean): Promise<Worker> => {
    const worker = new Worker(new URL('./consumer-worker.js', import.meta.url), { workerData: { brokers, events, fastDecoder } });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (m: string) => (m === 'ready' ? resolve() : reject(new Error(`bench consumer thread: ${m}`))));
      worker.once('error', reject);
    });
    return worker;
  };
  const consumeOn = (worker: Worker, prefix: string): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      worker.once('message', (m: string) => (m.startsWith('done ') ? resolve(Number(m.slice(5))) : reject(new Error(`bench consumer thread: ${m}`))));
      worker.postMessage({ topic, group: `${prefix}-${stamp}-${groups++}` });
    });
  const endThread = async (worker: Worker): Promise<void> => {
    worker.postMessage(null);
    await new Promise((resolve) => worker.once('exit', resolve));
  };
  const record = async (file: string): Promise<number> => {
    const result = await recordTape(new KafkaSource({ brokers, topics: [topic], codec: worldEngine.codec, fromBeginning: true, untilCaughtUp: true }), {
      path: join(dir, file),
      overwrite: true,
      engine: worldEngine,
      runSeed: 1,
    });
    return result.events;
  };
  const bareThread = await consumerThread(false);
  const fastThread = await consumerThread(true);
  try {
    await measureKafkaRounds([
      {
        name: 'kafka-bare-consumer',
        description: 'a bare kafkajs eachBatch consumer on a thread of its own, reading the topic from the beginning, counting (baseline)',
        baseline: null,
        run: () => consumeOn(bareThread, 'bench-bare'),
      },
      {
        name: 'kafka-bare-consumer-main-thread',
        description: "the bare consumer on the benchmark's main thread (reference; the baseline of earlier runs, when this thread also held the producer cases' messages)",
        baseline: 'kafka-bare-consumer',
        run: () => countTopic(kafka, topic, `bench-bare-main-${stamp}-${groups++}`, events),
      },
      {
        name: 'kafka-bare-consumer-fast-decoder',
        description: "the bare consumer on a thread of its own with tapedeck's record-batch decoder in place of kafkajs's (recorder/sources/kafka-decode.ts), counting (reference)",
        baseline: 'kafka-bare-consumer',
        run: () => consumeOn(fastThread, 'bench-fast'),
      },
      {
        name: 'record-kafka',
        description: 'record --source kafka --until-caught-up: consume, parse JSON, encode, apply with live checkpoints, write the tape',
        baseline: 'kafka-bare-consumer',
        run: () => record('kafka-bench.tape'),
      },
      // The same, with a new reader thread each run, as one `tapedeck record` has: record-kafka's
      // runs reuse the reader thread the previous run kept (recorder/pipeline.ts), so this one
      // shows what a process's first recording pays on top (starting the thread, loading its
      // modules, its code not yet compiled). Ending the kept thread is not timed: a process's
      // first recording has none to end.
      {
        name: 'record-kafka-cold',
        description: 'record-kafka with a new reader thread each run, as a single `tapedeck record` process has',
        baseline: 'kafka-bare-consumer',
        run: () => record('kafka-bench-cold.tape'),
        before: () => endKeptKafkaWorker(),
      },
    ]);
  } finally {
    await endThread(bareThread);
    await endThread(fastThread);
  }
  const batches = buildBenchMessages(events, PARTITIONS);
  const produce = (to: string): Promise<void> => sendBenchMessages(producer, to, batches);
  const senders = defaultSenders();
  // The same number of bare producers on as many threads (reference): what threads alone give.
  const workers = await Promise.all(
    Array.from({ length: senders }, (_, thread) => {
      const worker = new Worker(new URL('./producer-worker.js', import.meta.url), { workerData: { brokers, events, partitions: PARTITIONS, thread, threads: senders } });
      return new Promise<Worker>((resolve, reject) => {
        worker.once('message', () => resolve(worker));
        worker.once('error', reject);
      });
    }),
  );
  try {
    await measureKafkaRounds([
      {
        name: 'kafka-bare-producer',
        description: 'a bare kafkajs producer sending the same messages, built beforehand, 2,000 per request, 4 in flight (baseline)',
        baseline: null,
        run: async () => {
          await produce(await newTarget());
          return events;
        },
      },
      {
        name: 'republish-max',
        description: `replay --to-kafka --speed max of the recorded tape: ${senders} sender threads, each reading the tape, rendering its partitions' events as JSON and sending them with its own producer (same batch size, one request in flight per lane of partitions)`,
        baseline: 'kafka-bare-producer',
        run: async () => {
          const result = await republishTape(join(dir, 'kafka-bench.tape'), { brokers, topic: await newTarget(), engine: worldEngine, speed: 'max' });
          if (result.senders !== senders) throw new Error(`republish ran ${result.senders} sender threads, not ${senders}`);
          return result.events;
        },
      },
      {
        name: `kafka-bare-producers-${senders}`,
        description: `${senders} bare kafkajs producers on as many threads, each sending its share of the partitions (p mod ${senders}) of the same messages, built beforehand, as the baseline does (reference)`,
        baseline: 'kafka-bare-producer',
        run: async () => {
          const to = await newTarget();
          await Promise.all(
            workers.map(
              (worker) =>
                new Promise<void>((resolve, reject) => {
                  worker.once('message', (m: string) => (m === 'done' ? resolve() : reject(new Error(`bench producer thread: ${m}`))));
                  worker.postMessage(to);
                }),
            ),
          );
          return events;
        },
      },
    ]);
  } finally {
    for (const worker of workers) worker.postMessage(null);
    await Promise.all(workers.map((w) => new Promise((resolve) => w.once('exit', resolve))));
  }
  // kcat is a reference: without it (CI installs it; Debian's package is kcat) the other figures still count.
  if (spawnSync('kcat', ['-V'], { encoding: 'utf8' }).error !== undefined) {
    process.stderr.write('kcat-consume: not run: kcat is not installed (apt-get install kcat)\n');
    notes.push('kcat-consume not run: kcat is not installed (apt-get install kcat)');
  } else {
    await measure('kcat-consume', 'kcat -C -e reading the same topic from the beginning (reference)', null, async () => {
      const r = spawnSync('kcat', ['-b', brokers[0], '-t', topic, '-C', '-e', '-q', '-o', 'beginning', '-f', '%o\n'], { encoding: 'utf8', maxBuffer: 256 << 20 });
      if (r.status !== 0) throw new Error(`kcat failed (exit ${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
      return r.stdout.length === 0 ? 0 : r.stdout.trimEnd().split('\n').length;
    });
  }

  await producer.disconnect();
  const topics = [topic, ...Array.from({ length: targets }, (_, i) => `bench-dst-${stamp}-${i}`)];
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
  return { rows, notes };
}
