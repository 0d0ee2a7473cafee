// The real Kafka broker the tests use: started by scripts/kafka/broker.sh (CI's .ci/run does
// it). Tests that need it call kafkaAvailable(): in CI a missing broker is a failure, never a
// skip; on a developer's machine the suite says loudly that it skipped them and how to start it.

import { spawnSync } from 'node:child_process';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners, type Admin, type Message } from 'kafkajs';
import { WorldTraffic, worldCodec } from '../../engine/world/index.js';
import { interrupt, REPO, type RunningTapedeck } from './cli.js';

export const KAFKA_BROKERS = (process.env.TAPEDECK_KAFKA_BROKERS ?? `127.0.0.1:${process.env.TAPEDECK_KAFKA_PORT ?? '19092'}`).split(',');

function reachable(hostPort: string, timeoutMs = 1000): Promise<boolean> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/** True when the broker answers. In CI, throws instead of returning false. */
export async function kafkaAvailable(): Promise<boolean> {
  if (await reachable(KAFKA_BROKERS[0])) return true;
  const message = `no Kafka broker at ${KAFKA_BROKERS.join(',')}: start one with scripts/kafka/broker.sh start`;
  if (process.env.CI) throw new Error(`${message} (CI must run the Kafka tests, not skip them)`);
  process.stderr.write(`\n*** SKIPPING Kafka tests: ${message} ***\n\n`);
  return false;
}

export function kafka(): Kafka {
  return new Kafka({ clientId: 'tapedeck-tests', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
}

export async function withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Each partition's end offset (high watermark), by partition number as a string. Asked right
 * after the broker was frozen or restarted, the broker may refuse for a moment (see settled).
 */
export async function topicEnds(topic: string): Promise<Record<string, number>> {
  return settled(`the end offsets of ${topic}`, () =>
    withAdmin(async (admin) => Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [String(p.partition), Number(p.high)]))),
  );
}

/** The offsets `group` has committed for `topic` (-1: none), by partition number as a string. */
export async function groupOffsets(group: string, topic: string): Promise<Record<string, number>> {
  return settled(`the offsets of group ${group} on ${topic}`, () =>
    withAdmin(async (admin) => Object.fromEntries((await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0].partitions.map((p) => [String(p.partition), Number(p.offset)]))),
  );
}

/** The metadata errors a topic created a moment ago may still answer with. */
const SETTLING = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION']);

/** The broker's error type of a kafkajs error: its own, or (after kafkajs's retries) its originalError's. */
function settlingType(error: unknown): string | null {
  const type = (error as { type?: unknown }).type ?? (error as { originalError?: { type?: unknown } }).originalError?.type;
  return typeof type === 'string' && SETTLING.has(type) ? type : null;
}

/** What an `ask` of settled answers when the broker has answered, but not yet what is waited for. */
class NotYet {
  constructor(readonly why: string) {}
}

/**
 * `ask` again while it answers NotYet or the broker answers one of the SETTLING errors, 100 ms
 * apart, up to `timeoutMs`; any other error at once. A broker just thawed (SIGCONT) or restarted
 * has answered "This server is not the leader for that topic-partition"
 * (`NOT_LEADER_FOR_PARTITION`) to a request for a topic's offsets for a moment: it failed a test
 * in a CI-like run after its broker had been frozen.
 */
async function settled<T>(what: string, ask: () => Promise<T | NotYet>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let waitingFor: string;
    let cause: unknown;
    try {
      const answer = await ask();
      if (!(answer instanceof NotYet)) return answer;
      waitingFor = answer.why;
    } catch (error) {
      const type = settlingType(error);
      if (type === null) throw error;
      waitingFor = `the broker answers ${type}: ${(error as Error).message}`;
      cause = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not settled after ${timeoutMs / 1000} s (${waitingFor})`, { cause });
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Create `topics` and wait until every partition has a leader that serves it. kafkajs's own
 * wait (`waitForLeaders`) retries only while the broker says a leader is not available; a KRaft
 * broker asked right after the creation may first say it does not host the topic at all
 * (`UNKNOWN_TOPIC_OR_PARTITION`, "This server does not host this topic-partition"), which
 * kafkajs gives up on: it failed a suite's setup in a CI-like run. And a partition the metadata
 * already gives a leader may still be refused by that leader for a moment
 * (`NOT_LEADER_FOR_PARTITION`, seen right after a broker restart). So the wait here (settled)
 * ends when the metadata names a leader for every partition and each topic's offsets can be
 * read, up to `timeoutMs`.
 */
export async function createTopicsSettled(admin: Admin, topics: readonly { topic: string; numPartitions: number }[], timeoutMs = 60_000): Promise<void> {
  await admin.createTopics({ topics: topics.map((t) => ({ ...t, replicationFactor: 1 })), waitForLeaders: false });
  const names = topics.map((t) => t.topic);
  await settled(
    `topics ${names.join(', ')} created`,
    async () => {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: names });
      const unsettled = topics.filter((t) => {
        const partitions = found.find((f) => f.name === t.topic)?.partitions ?? [];
        return partitions.length !== t.numPartitions || partitions.some((p) => !(p.leader >= 0));
      });
      if (unsettled.length > 0) return new NotYet(`no leader yet for a partition of ${unsettled.map((t) => t.topic).join(', ')}`);
      for (const t of topics) await admin.fetchTopicOffsets(t.topic);
      return undefined;
    },
    timeoutMs,
  );
}

let topicCounter = 0;
/** A fresh topic with a unique name, every partition with a leader. */
export async function createTopic(prefix: string, partitions: number): Promise<string> {
  const topic = `${prefix}-${process.pid}-${Date.now()}-${topicCounter++}`;
  await withAdmin((admin) => createTopicsSettled(admin, [{ topic, numPartitions: partitions }]));
  return topic;
}

/**
 * Produce `events` world events as JSON values, partition = zone mod partitions, key = player;
 * returns the count. Timestamps start at `startUs` (the generator's fixed start by default).
 */
export async function produceWorld(topic: string, events: number, partitions: number, seed = 1, startUs?: number): Promise<number> {
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const traffic = new WorldTraffic({ seed, events, partitions, ...(startUs === undefined ? {} : { startUs }) });
    let batch: Message[] = [];
    const sends: Promise<unknown>[] = [];
    for (let r = traffic.next(); r !== null; r = traffic.next()) {
      const json = worldCodec.toJSON(r.event);
      batch.push({
        partition: r.partition,
        key: Buffer.from(r.key ?? ''),
        value: JSON.stringify(json),
        timestamp: String(Math.floor(r.timestampUs / 1000)),
        headers: { source: 'tapedeck-test', seq: String(r.index) },
      });
      if (batch.length === 10_000) {
        sends.push(producer.send({ topic, messages: batch, acks: -1 }));
        batch = [];
        if (sends.length >= 4) await Promise.all(sends.splice(0));
      }
    }
    if (batch.length > 0) sends.push(producer.send({ topic, messages: batch, acks: -1 }));
    await Promise.all(sends);
    return events;
  } finally {
    await producer.disconnect();
  }
}

/** Send `batches` to `topic`, one request each (acks from all replicas), with a producer of their own. */
export async function produceBatches(topic: string, batches: Iterable<readonly Message[]>): Promise<void> {
  const producer = kafka().producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (const messages of batches) await producer.send({ topic, acks: -1, messages: [...messages] });
  } finally {
    await producer.disconnect();
  }
}

export interface TopicRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  timestampMs: number;
  headers: Record<string, string>;
}

/** Every record of the topic, per partition in offset order (a plain consumer from the beginning). */
export async function readTopic(topic: string): Promise<Map<number, TopicRecord[]>> {
  // Just after a broker (re)start its partitions may have no leader yet: retry what kafkajs calls retriable, for up to 60 s.
  const ends = await withAdmin(async (admin) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await admin.fetchTopicOffsets(topic);
      } catch (error) {
        if ((error as { retriable?: boolean }).retriable !== true || attempt >= 60) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  });
  const remaining = new Map(ends.map((p) => [p.partition, Number(p.high) - Number(p.low)]));
  const out = new Map<number, TopicRecord[]>(ends.map((p) => [p.partition, []]));
  let left = [...remaining.values()].reduce((a, b) => a + b, 0);
  if (left === 0) return out;
  const consumer = kafka().consumer({ groupId: `tapedeck-test-reader-${Date.now()}-${topicCounter++}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          const list = out.get(batch.partition)!;
          for (const m of batch.messages) {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = String(v);
            list.push({ partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value?.toString() ?? null, timestampMs: Number(m.timestamp), headers });
            left--;
          }
          if (left <= 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return out;
}

/**
 * Run `during` with the broker frozen (SIGSTOP: its connections stay open and nothing
 * answers, as with a broker that hangs or a network that drops packets), thawing it after,
 * whatever happens.
 */
export async function withBrokerFrozen<T>(during: () => Promise<T>): Promise<T> {
  const status = brokerScript('status');
  const pid = /\(pid (\d+)\)/.exec(status.stdout)?.[1];
  if (pid === undefined) throw new Error(`cannot find the broker's pid in: ${status.stdout}${status.stderr}`);
  process.kill(Number(pid), 'SIGSTOP');
  try {
    return await during();
  } finally {
    process.kill(Number(pid), 'SIGCONT');
  }
}

/**
 * Ctrl-C to `run` once the broker has been frozen for `afterMs` (requests already sent wait
 * for it meanwhile); its exit code and how long the exit took after the signal. The broker is
 * let go once the process has ended.
 */
export async function interruptWhileFrozen(run: RunningTapedeck, afterMs: number): Promise<{ code: number | null; ms: number }> {
  return withBrokerFrozen(async () => {
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    return interrupt(run);
  });
}

/** Run scripts/kafka/broker.sh `command` (start, stop, restart, status); a failure is thrown with what the script said. */
function brokerScript(command: 'start' | 'stop' | 'restart' | 'status'): { stdout: string; stderr: string } {
  const run = spawnSync(join(REPO, 'scripts', 'kafka', 'broker.sh'), [command], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`scripts/kafka/broker.sh ${command} failed (exit ${run.status}): ${run.stdout}${run.stderr}`);
  return run;
}

/**
 * Run `during` with the broker stopped (its process gone: connections refused), starting it
 * again after, whatever happens, so that the tests after it find it.
 */
export async function withBrokerStopped<T>(during: () => Promise<T>): Promise<T> {
  brokerScript('stop');
  try {
    return await during();
  } finally {
    brokerScript('start');
  }
}

/** Restart the broker (stop, then start: connections drop, and it comes back with its data). */
export function restartBroker(): void {
  brokerScript('restart');
}
