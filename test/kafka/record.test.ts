// `record --source kafka` against the real broker (scripts/kafka/broker.sh).

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../engine/types.js';
import { DEFAULT_START_US, worldCodec, worldEngine } from '../../engine/world/index.js';
import { keptKafkaWorker } from '../../recorder/pipeline.js';
import { recordTape } from '../../recorder/record.js';
import { KafkaSource } from '../../recorder/sources/kafka.js';
import { republishTape } from '../../replayer/republish.js';
import { TapeReader } from '../../tape/reader.js';
import { interrupt, REPO, type RunningTapedeck, startTapedeck, tapedeck, tempDir } from '../support/cli.js';
import { killRandom, killUntilDone, waitForCommitted } from '../support/kill.js';
import { expectSoundTapeOf, keptAfterWriteFailure } from '../support/write-failure.js';
import { propertyParams } from '../support/property.js';
import { expectEndedStuck, interruptWhenStuck, STUCK_ENV, writeStuckEngine, writeStuckRenderEngine } from '../support/stuck-engine.js';
import { createTopic, groupOffsets, kafka, KAFKA_BROKERS, kafkaAvailable, produceBatches, produceWorld, readTopic, interruptWhileFrozen, restartBroker, topicEnds, withAdmin, withBrokerFrozen, withBrokerStopped, type TopicRecord } from '../support/kafka.js';

const available = await kafkaAvailable();
const decoder = new TextDecoder();

interface TapeRecord {
  seq: number;
  partition: number;
  offset: number;
  key: string | null;
  json: string;
  timestampUs: number;
  headers: Record<string, string>;
  stream: number;
}

/** A tape of JSON events (a user's engine without a codec): its blocks' sizes, and each partition's records in tape order. */
function readJsonTape(path: string): { sizes: number[]; got: Map<number, { offset: number; key: string | null; timestampUs: number; json: string }[]> } {
  const reader = TapeReader.open(path);
  const sizes: number[] = [];
  const got = new Map<number, { offset: number; key: string | null; timestampUs: number; json: string }[]>();
  try {
    for (const cursor of reader.blocks(0)) {
      sizes.push(cursor.bytes.length);
      while (reader.advance(cursor)) {
        const key = cursor.key();
        const list = got.get(cursor.partition) ?? [];
        list.push({ offset: cursor.position, key: key === null ? null : decoder.decode(key), timestampUs: cursor.timestampUs, json: decoder.decode(cursor.payload()) });
        got.set(cursor.partition, list);
      }
    }
  } finally {
    reader.close();
  }
  return { sizes, got };
}

function readTape(path: string): TapeRecord[] {
  const reader = TapeReader.open(path);
  const out: TapeRecord[] = [];
  try {
    for (const cursor of reader.blocks(0)) {
      while (reader.advance(cursor)) {
        const key = cursor.key();
        const headers: Record<string, string> = {};
        for (const h of cursor.headers()) headers[decoder.decode(h.name)] = decoder.decode(h.value);
        out.push({
          seq: cursor.seq,
          partition: cursor.partition,
          offset: cursor.position,
          key: key === null ? null : decoder.decode(key),
          json: JSON.stringify(worldCodec.toJSON(worldCodec.decode(cursor.payload()))),
          timestampUs: cursor.timestampUs,
          headers,
          stream: cursor.stream,
        });
      }
    }
  } finally {
    reader.close();
  }
  return out;
}

function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const list = out.get(key);
    if (list === undefined) out.set(key, [item]);
    else list.push(item);
  }
  return out;
}

/** Compare a tape with the topic, partition by partition; returns the anomaly counts. */
/** Wait (up to 60 s) until `group` is stable with `count` members. */
async function waitForMembers(group: string, count: number): Promise<void> {
  for (let waited = 0; ; waited += 250) {
    const described = await withAdmin(async (admin) => (await admin.describeGroups([group])).groups[0]);
    if (described.state === 'Stable' && described.members.length === count) return;
    if (waited > 60_000) throw new Error(`the group did not settle on ${count} member(s): ${JSON.stringify(described)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Wait (up to 60 s) until `group`'s offsets are the topic's ends, and return them. */
async function waitForGroupAtEnd(group: string, topic: string): Promise<Record<string, number>> {
  const ends = await topicEnds(topic);
  for (let waited = 0; JSON.stringify(await groupOffsets(group, topic)) !== JSON.stringify(ends); waited += 250) {
    if (waited > 60_000) throw new Error(`the group did not reach the topic's end: ${JSON.stringify(await groupOffsets(group, topic))} of ${JSON.stringify(ends)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return ends;
}

/**
 * A topic of 4 partitions holding 10,000 records, and two live recorders of one group on it:
 * the first records them all, then the second joins; the group splits the partitions between
 * the two, and the second starts each of its partitions at the offset the first committed.
 */
async function twoLiveRecorders(dir: string, name: string, seed: number) {
  const created = await createTopic(name, 4);
  await produceWorld(created, 10_000, 4, seed);
  const group = `${name}-${created}`;
  const a = join(dir, `${name}-a.tape`);
  const b = join(dir, `${name}-b.tape`);
  const live = (tape: string) => startTapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', created, '--group', group, '--from-beginning', '--out', tape, '--json']);
  const first = live(a);
  await waitForCommitted(a, 10_000);
  const second = live(b);
  await waitForMembers(group, 2);
  return { created, group, a, b, first, second };
}

/** A live capture of `topic` (1,000 records) in a group of its own, started and waited for until the tape holds them all. */
async function liveGroupCapture(dir: string, name: string, topic: string, pipeline: string) {
  const group = `${name}-${pipeline}-${topic}`;
  const tape = join(dir, `${name}-${pipeline}.tape`);
  const run = startTapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--group', group, '--from-beginning', '--pipeline', pipeline, '--out', tape, '--json']);
  await waitForCommitted(tape, 1_000, 30_000);
  return { group, tape, run };
}

/** A capture stopped by a signal: its summary says so, with `events`; its tape verifies and equals the topic. */
async function expectStoppedWhole(run: RunningTapedeck, tape: string, topic: string, events: number): Promise<void> {
  expect(JSON.parse(run.stdout().trim().split('\n').pop()!)).toMatchObject({ events, stopped: true });
  expect(tapedeck(['verify', tape]).status).toBe(0);
  expect(compareWithTopic(readTape(tape), await readTopic(topic))).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
}

export function compareWithTopic(tape: TapeRecord[], topic: Map<number, TopicRecord[]>): { lost: number; duplicated: number; reordered: number; altered: number } {
  const byPartition = groupBy(tape, (r) => r.partition);
  let lost = 0;
  let duplicated = 0;
  let reordered = 0;
  let altered = 0;
  for (const [partition, expected] of topic) {
    const got = byPartition.get(partition) ?? [];
    const seen = new Set<number>();
    let last = -1;
    for (const r of got) {
      if (seen.has(r.offset)) duplicated++;
      seen.add(r.offset);
      if (r.offset < last) reordered++;
      last = Math.max(last, r.offset);
    }
    const byOffset = new Map(got.map((r) => [r.offset, r]));
    for (const m of expected) {
      const r = byOffset.get(m.offset);
      if (r === undefined) {
        lost++;
        continue;
      }
      const same =
        r.key === m.key &&
        r.json === JSON.stringify(JSON.parse(m.value!)) &&
        r.timestampUs === m.timestampMs * 1000 &&
        JSON.stringify(r.headers) === JSON.stringify(m.headers);
      if (!same) altered++;
    }
  }
  return { lost, duplicated, reordered, altered };
}

/**
 * compareWithTopic for a capture stopped by --max-events: only the part of each partition up
 * to the last offset the tape holds is expected (a record before it that the tape lacks is
 * lost). When the topic holds exactly as many records as the tape, this is compareWithTopic.
 */
function comparePrefixWithTopic(tape: TapeRecord[], topic: Map<number, TopicRecord[]>): ReturnType<typeof compareWithTopic> {
  const lastOffset = new Map<number, number>();
  for (const r of tape) lastOffset.set(r.partition, Math.max(lastOffset.get(r.partition) ?? -1, r.offset));
  const prefix = new Map([...topic].map(([partition, records]) => [partition, records.filter((m) => m.offset <= (lastOffset.get(partition) ?? -1))]));
  return compareWithTopic(tape, prefix);
}

describe.runIf(available)('record --source kafka (real broker)', () => {
  const dir = tempDir();
  const events = 100_000;
  let topic: string;
  let contents: Map<number, TopicRecord[]>;

  beforeAll(async () => {
    topic = await createTopic('record', 12);
    await produceWorld(topic, events, 12, 3);
    contents = await readTopic(topic);
  }, 120_000);

  it('captures every partition of a 12-partition topic exactly: offsets, keys, values, timestamps, headers', () => {
    // The reader thread converts values when the main thread is behind, else the main thread
    // does (auto); each way alone must give the same capture.
    for (const convert of ['auto', 'reader', 'main'] as const) {
      const tape = join(dir, `capture-${convert}.tape`);
      const r = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--until-caught-up', '--out', tape, '--json'], {
        env: { TAPEDECK_KAFKA_CONVERT: convert },
      });
      expect(r.status, r.stderr).toBe(0);
      const result = r.json<{ kafkaReader: { decoder: string; fastBatches: number; chunks: number; convertedChunks: number } }>();
      expect(result).toMatchObject({ events, accepted: events, quarantined: 0 });
      // The reader decoded with the fast decoder, and converted the values it was told to.
      expect(result.kafkaReader.decoder).toBe('fast');
      expect(result.kafkaReader.fastBatches).toBeGreaterThan(0);
      if (convert === 'reader') expect(result.kafkaReader.convertedChunks).toBe(result.kafkaReader.chunks);
      if (convert === 'main') expect(result.kafkaReader.convertedChunks).toBe(0);
      const records = readTape(tape);
      expect(records).toHaveLength(events);
      expect(compareWithTopic(records, contents), convert).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
      // Checkpoints were taken live; the tape replays and verifies.
      const replay = tapedeck(['replay', tape, '--json']);
      expect(replay.status, replay.stdout).toBe(0);
      expect(replay.json()).toMatchObject({ ok: true, events, mismatches: 0 });
      const reader = TapeReader.open(tape);
      expect(reader.meta.source).toMatchObject({ kind: 'kafka', topics: [topic], brokers: KAFKA_BROKERS });
      reader.close();
    }
  }, 300_000);

  it('stops after --max-events and resumes from the tape’s positions to the end, without loss or duplicates', () => {
    const tape = join(dir, 'partial.tape');
    const first = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--max-events', '30000', '--out', tape, '--json']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ events: 30000 });
    const rest = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--resume', '--until-caught-up', '--out', tape, '--json']);
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.json()).toMatchObject({ events, eventsThisRun: events - 30000 });
    expect(compareWithTopic(readTape(tape), contents)).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    expect(tapedeck(['verify', tape]).status).toBe(0);
  }, 180_000);

  it('a write that fails mid-capture (the file size limit met): exit 2 naming what the tape keeps; the tape verifies, and --resume completes the capture', () => {
    const tape = join(dir, 'limited.tape');
    const args = ['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--until-caught-up', '--out', tape];
    // Files up to 1 MiB (2048 blocks of 512 bytes): the capture of 100,000 records is larger.
    const failed = tapedeck(args, { fileSizeLimitBlocks: 2048, timeoutMs: 120_000 });
    const kept = keptAfterWriteFailure(
      failed,
      /tapedeck: error \[E_TAPE_WRITE\]: .*limited\.tape: cannot write to the tape: .*\. The tape keeps the ([\d,]+) events committed before it, sound; once the cause is fixed, the same command with --resume continues the recording from there/,
    );
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(events);
    expectSoundTapeOf(tape, kept);
    const rest = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--resume', '--until-caught-up', '--out', tape, '--json']);
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.json()).toMatchObject({ events });
    expect(compareWithTopic(readTape(tape), contents)).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
  }, 300_000);

  it('knows how many records a capture expects, for its progress bar: up to the end offsets, at most --max-events, none for a live capture', async () => {
    const expected = async (options: { untilCaughtUp?: boolean; maxEvents?: number; from?: { next: Record<string, Record<string, number>> } }) => {
      const source = new KafkaSource({ brokers: KAFKA_BROKERS, topics: [topic], codec: worldEngine.codec, fromBeginning: true, ...options });
      await source.prepare();
      return source.expectedRecords();
    };
    expect(await expected({ untilCaughtUp: true })).toBe(events);
    expect(await expected({ untilCaughtUp: true, maxEvents: 30_000 })).toBe(30_000);
    expect(await expected({ maxEvents: 30_000 })).toBe(30_000);
    expect(await expected({})).toBeNull();
    // From a stored position: what is left of each partition.
    const partition0 = contents.get(0)!.length;
    expect(await expected({ untilCaughtUp: true, from: { next: { [topic]: { '0': partition0 } } } })).toBe(events - partition0);
    expect(await expected({ untilCaughtUp: true, from: { next: { [topic]: Object.fromEntries([...contents].map(([p, records]) => [String(p), records.length])) } } })).toBe(0);
  }, 120_000);

  it('merge keeps a record captured by two recorders once, and the merged tape resumes from the furthest positions', () => {
    const a = join(dir, 'merge-a.tape');
    const b = join(dir, 'merge-b.tape');
    expect(tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--until-caught-up', '--out', a]).status).toBe(0);
    expect(tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--max-events', '30000', '--out', b]).status).toBe(0);
    const merged = join(dir, 'merged.tape');
    const r = tapedeck(['merge', b, a, '--out', merged, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ events, duplicatesSkipped: 30000 });
    expect(compareWithTopic(readTape(merged), contents)).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    const resumed = tapedeck(['record', '--source', 'kafka', '--resume', '--until-caught-up', '--out', merged, '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({ events, eventsThisRun: 0 });
  }, 180_000);

  it('names a missing topic and an unreachable broker (exit 2)', () => {
    const missing = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', 'no-such-topic-here', '--until-caught-up', '--out', join(dir, 'x.tape')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/topic no-such-topic-here does not exist/);
    const down = tapedeck(['record', '--source', 'kafka', '--brokers', '127.0.0.1:1', '--topic', topic, '--until-caught-up', '--out', join(dir, 'y.tape')]);
    expect(down.status).toBe(2);
    expect(down.stderr).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1/);
  }, 120_000);

  it('bad records: strict stops naming topic, partition and offset; --quarantine keeps them with their reason, once', async () => {
    const bad = await createTopic('bad', 1);
    const producer = kafka().producer();
    await producer.connect();
    await producer.send({
      topic: bad,
      messages: [
        { key: 'a', value: JSON.stringify({ type: 'join', payload: { player: 1, zone: 0, x: 1, y: 1 } }) },
        { key: 'b', value: null },
        { key: 'c', value: 'not json at all' },
        { key: 'd', value: JSON.stringify({ type: 'teleport', payload: {} }) },
        { key: 'e', value: JSON.stringify({ type: 'join', payload: { player: 2, zone: 0, x: 2, y: 2 } }) },
        // Kafka's "no timestamp": a tape cannot order or pace it.
        { key: 'f', value: JSON.stringify({ type: 'join', payload: { player: 3, zone: 0, x: 3, y: 3 } }), timestamp: '-1' },
      ],
    });
    await producer.disconnect();
    // The same whether the consumer runs on a reader thread (the default; the values converted
    // there or on the main thread) or on the main thread.
    for (const [pipeline, convert] of [
      ['on', 'reader'],
      ['on', 'main'],
      ['off', 'auto'],
    ]) {
      const env = { TAPEDECK_KAFKA_CONVERT: convert };
      const strictTape = join(dir, `bad-strict-${pipeline}-${convert}.tape`);
      const strict = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', bad, '--from-beginning', '--until-caught-up', '--pipeline', pipeline, '--out', strictTape], { env });
      expect(strict.status).toBe(2);
      expect(strict.stderr).toMatch(new RegExp(`kafka topic ${bad} partition 0 offset 1: .*null value.*\\[null-value\\]`));
      expect(readTape(strictTape)).toHaveLength(1);
      const qTape = join(dir, `bad-quarantine-${pipeline}-${convert}.tape`);
      const q = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', bad, '--from-beginning', '--until-caught-up', '--quarantine', '--pipeline', pipeline, '--out', qTape, '--json'], { env });
      expect(q.status, q.stderr).toBe(0);
      expect(q.json()).toMatchObject({ read: 6, accepted: 2, quarantined: 4, pipelined: pipeline === 'on' });
      const reader = TapeReader.open(qTape);
      const rejects = reader.rejects();
      reader.close();
      expect(rejects.map((r) => [r.reasonCode, (r.position as { offset: number }).offset])).toEqual([
        ['null-value', 1],
        ['invalid-json', 2],
        ['codec-rejected', 3],
        ['bad-timestamp', 5],
      ]);
      // Resuming reads nothing again: each reject is stored once, with the position past it.
      const again = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--resume', '--until-caught-up', '--quarantine', '--pipeline', pipeline, '--out', qTape, '--json'], { env });
      expect(again.status, again.stderr).toBe(0);
      expect(again.json()).toMatchObject({ read: 6, quarantined: 4, eventsThisRun: 0 });
    }
  }, 180_000);

  it('--redact and --hash reach every value and key before the tape, whichever thread converts', async () => {
    const KV = join(REPO, 'fixtures/engines/kv-lww.mjs');
    const topic = await createTopic('redact', 2);
    const producer = kafka().producer();
    await producer.connect();
    const messages = Array.from({ length: 2000 }, (_, i) => ({
      partition: i % 2,
      key: `user-${i % 50}@example.com`,
      value: JSON.stringify({ type: 'put', payload: { k: 'abcd'[i % 4], ver: i, v: i % 10, email: `secret-${i}@example.com`, card: `4000-0000-0000-${String(i % 7).padStart(4, '0')}` } }),
    }));
    // Rejected after parsing (the JSON codec refuses an empty type): kept, redacted too.
    messages.push({ partition: 0, key: 'user-x@example.com', value: JSON.stringify({ type: '', payload: { email: 'secret-x@example.com', card: '5500-0000-0000-0004' } }) });
    await producer.send({ topic, messages });
    await producer.disconnect();
    const keyFile = join(dir, 'redact.key');
    writeFileSync(keyFile, 'k3y-that-must-not-leak');
    const exports: string[] = [];
    for (const convert of ['reader', 'main']) {
      const tape = join(dir, `redact-${convert}.tape`);
      const r = tapedeck(
        ['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--until-caught-up', '--engine', KV, '--quarantine', '--redact', 'payload.email', '--hash', 'payload.card', '--hash', 'key', '--hash-key-file', keyFile, '--out', tape, '--json'],
        { env: { TAPEDECK_KAFKA_CONVERT: convert } },
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.json()).toMatchObject({ read: 2001, accepted: 2000, quarantined: 1, pipelined: true });
      const bytes = Buffer.concat(readdirSync(dir).filter((f) => f.startsWith(`redact-${convert}.tape`)).map((f) => readFileSync(join(dir, f))));
      for (const secret of ['secret-', '@example.com', '4000-0000', '5500-0000', 'k3y-that-must-not-leak']) expect(bytes.includes(secret), `${convert}: ${secret}`).toBe(false);
      const exported = tapedeck(['export', tape, '--engine', KV]).stdout.trim().split('\n');
      expect(exported).toHaveLength(2000);
      const first = JSON.parse(exported[0]) as { key: string; payload: { email?: string; card: string } };
      expect(first.payload.email).toBeUndefined();
      expect(first.payload.card).toMatch(/^hmac:[0-9a-f]{32}$/);
      expect(first.key).toMatch(/^hmac:[0-9a-f]{32}$/);
      exports.push([...exported].sort().join('\n'));
    }
    // The same events, redacted and hashed the same way, on either thread.
    expect(exports[1]).toBe(exports[0]);
  }, 120_000);

  it('every commit stores the position just past the records it holds, whichever thread converts', async () => {
    // A kill -9 between two commits resumes from the stored position: a position behind the
    // stored records duplicates some, one ahead loses some. Checked at every commit (a Kafka
    // commit holds up to 32 blocks), with small blocks, records with and without headers, and
    // rejects kept in quarantine.
    const topic = await createTopic('positions', 2);
    const producer = kafka().producer();
    await producer.connect();
    const messages = Array.from({ length: 3000 }, (_, i) => ({
      partition: i % 2,
      key: `k${i % 17}`,
      value: i % 211 === 5 ? null : i % 97 === 3 ? 'not json' : JSON.stringify({ type: 'join', payload: { player: i, zone: i % 5, x: i % 100, y: 7 } }),
      ...(i % 3 === 0 ? { headers: { trace: `t${i}` } } : {}),
    }));
    await producer.send({ topic, messages });
    await producer.disconnect();
    const rejected = messages.filter((m) => m.value === null || m.value === 'not json').length;
    const kept: (number | null)[] = [];
    for (const convert of ['reader', 'main']) {
      const tape = join(dir, `positions-${convert}.tape`);
      let commits = 0;
      const before = process.env.TAPEDECK_KAFKA_CONVERT;
      process.env.TAPEDECK_KAFKA_CONVERT = convert;
      try {
        const result = await recordTape(new KafkaSource({ brokers: KAFKA_BROKERS, topics: [topic], codec: worldEngine.codec, fromBeginning: true, untilCaughtUp: true }), {
          path: tape,
          engine: worldEngine,
          runSeed: 1,
          // Blocks of 5 records, 32 a commit: about 19 commits of the 3,000.
          blockEvents: 5,
          quarantine: true,
          pipeline: 'on',
          onProgress: () => {
            commits++;
            const reader = TapeReader.open(tape);
            try {
              const next = new Map<number, number>([
                [0, 0],
                [1, 0],
              ]);
              for (const cursor of reader.blocks(0)) while (reader.advance(cursor)) next.set(cursor.partition, Math.max(next.get(cursor.partition)!, cursor.position + 1));
              for (const r of reader.rejects()) {
                const at = r.position as { partition: number; offset: number };
                next.set(at.partition, Math.max(next.get(at.partition)!, at.offset + 1));
              }
              const stored = reader.sourcePositions()[0].position as { next: Record<string, Record<string, number>> };
              expect(stored.next[topic], `${convert}: commit ${commits}`).toEqual({ 0: next.get(0), 1: next.get(1) });
            } finally {
              reader.close();
            }
          },
        });
        expect(result).toMatchObject({ read: 3000, quarantined: rejected, pipelined: true });
        expect(commits).toBeGreaterThan(10);
      } finally {
        if (before === undefined) delete process.env.TAPEDECK_KAFKA_CONVERT;
        else process.env.TAPEDECK_KAFKA_CONVERT = before;
      }
      // The reader thread is kept for the process's next recording.
      kept.push(keptKafkaWorker());
    }
    expect(kept[0]).not.toBeNull();
    expect(kept[1]).toBe(kept[0]);
    // A recording that fails (strict mode, a bad record) does not hand its reader on.
    const failed = await recordTape(new KafkaSource({ brokers: KAFKA_BROKERS, topics: [topic], codec: worldEngine.codec, fromBeginning: true, untilCaughtUp: true }), {
      path: join(dir, 'positions-strict.tape'),
      engine: worldEngine,
      runSeed: 1,
      pipeline: 'on',
    }).catch((error: unknown) => error);
    // The first bad record of either partition (which comes first depends on the fetches).
    expect(String(failed)).toMatch(/partition (0 offset 50|1 offset 1): .*\[invalid-json\]/);
    expect(keptKafkaWorker()).toBeNull();
  }, 120_000);

  it('records values larger than a fetch asks for per partition (1.5 MB JSON): every record, in blocks of at most 4 MiB and one event, on either converting thread', async () => {
    // A user's engine of JSON events (examples/counter-engine.mjs). The reader asks for 512 KiB
    // a partition per fetch; the broker answers with a whole batch however large, and blocks
    // are finished at 4 MiB of data (BLOCK_MAX_BYTES): one or two of these values to a block.
    const created = await createTopic('large', 2);
    const count = 24;
    await produceBatches(
      created,
      Array.from({ length: count }, (_, i) => {
        // Every third value is small, between large ones; the large ones differ in size and bytes.
        const pad = String.fromCharCode(97 + (i % 26)).repeat(i % 3 === 0 ? 100 : 1_500_000 - (i % 5) * 1000);
        const value = JSON.stringify({ type: `t${i % 3}`, payload: { amount: i, pad } });
        return [{ partition: i % 2, key: `k${i}`, value, timestamp: String(1_767_225_600_000 + i) }];
      }),
    );
    const topicRecords = await readTopic(created);
    const engine = join(REPO, 'examples', 'counter-engine.mjs');
    for (const convert of ['reader', 'main'] as const) {
      const tape = join(dir, `large-${convert}.tape`);
      const r = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', created, '--from-beginning', '--until-caught-up', '--engine', engine, '--out', tape, '--json'], {
        env: { TAPEDECK_KAFKA_CONVERT: convert },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.json()).toMatchObject({ events: count, accepted: count, quarantined: 0 });
      const { sizes, got } = readJsonTape(tape);
      expect(sizes.length, convert).toBeGreaterThanOrEqual(6);
      expect(Math.max(...sizes), convert).toBeLessThanOrEqual((4 << 20) + 1_600_000);
      // Each partition's records in offset order, each the topic's value, key and timestamp.
      for (const [partition, expected] of topicRecords) {
        const records = got.get(partition) ?? [];
        expect(records.map((x) => x.offset), `${convert} partition ${partition}`).toEqual(expected.map((m) => m.offset));
        records.forEach((x, i) => {
          const m = expected[i];
          expect(x.key).toBe(m.key);
          expect(x.timestampUs).toBe(m.timestampMs * 1000);
          expect(x.json === JSON.stringify(JSON.parse(m.value!)), `${convert} partition ${partition} offset ${m.offset}`).toBe(true);
        });
      }
      const replay = tapedeck(['replay', tape, '--engine', engine, '--json']);
      expect(replay.status, replay.stdout).toBe(0);
      expect(replay.json()).toMatchObject({ ok: true, events: count, mismatches: 0 });
    }
  }, 180_000);

  it('while the engine stalls, the reader holds at most about 54 MiB of 100 KB records ahead of the main thread (it took what the broker gave, up to 65,536 records), and the tape has every record', async () => {
    // 1,000 records of 100 KB (100 MB) on 4 partitions and an engine that stalls for 4 s on its
    // first event: meanwhile the broker hands the reader as much of the topic as it takes.
    const created = await createTopic('slow-large', 4);
    const count = 1000;
    await produceBatches(
      created,
      Array.from({ length: count / 20 }, (_, b) =>
        Array.from({ length: 20 }, (_, j) => ({ partition: (b * 20 + j) % 4, value: JSON.stringify({ type: 'big', payload: { amount: b * 20 + j, pad: 'x'.repeat(100_000) } }) })),
      ),
    );
    const engine = join(dir, 'slow-counter.mjs');
    writeFileSync(
      engine,
      readFileSync(join(REPO, 'examples', 'counter-engine.mjs'), 'utf8')
        .replace("name: 'counter'", "name: 'slow-counter'")
        .replace('apply(state, event, ctx) {', 'apply(state, event, ctx) {\n    if (state.total === 0) for (const until = performance.now() + 4000; performance.now() < until; );'),
    );
    const tape = join(dir, 'slow-large.tape');
    const r = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', created, '--from-beginning', '--until-caught-up', '--engine', engine, '--out', tape, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const result = r.json<{ events: number; kafkaReader: { peakBytesAhead: number } }>();
    console.log(`[slow-large] the reader held at most ${result.kafkaReader.peakBytesAhead} bytes ahead of the main thread`);
    expect(result.events).toBe(count);
    // Records fetched and not packed: 16 MiB and one fetch (at most 2 MiB) taken past it;
    // chunks not taken: 32 MiB and one chunk (at most 4 MiB and a record) sent past it. More
    // than the first alone: the chunks' blocks count too (they counted 0 when measured after
    // their buffers were handed over, and then bounded nothing: 17.0 MB printed).
    expect(result.kafkaReader.peakBytesAhead).toBeGreaterThan(20 << 20);
    expect(result.kafkaReader.peakBytesAhead).toBeLessThanOrEqual((16 << 20) + (2 << 20) + (32 << 20) + (4 << 20) + 200_000);
    // Each partition's records in offset order, each with the topic's value.
    const { got } = readJsonTape(tape);
    for (const [partition, expected] of await readTopic(created)) {
      const records = got.get(partition) ?? [];
      expect(records.map((x) => x.offset), `partition ${partition}`).toEqual(expected.map((m) => m.offset));
      expect(records.every((x, i) => x.json === JSON.stringify(JSON.parse(expected[i].value!))), `partition ${partition} values`).toBe(true);
    }
  }, 180_000);

  it('a resume after retention deleted offsets the tape had not reached stops with E_KAFKA_GAP (exit 2), keeping the tape; a new tape records what the topic holds now', async () => {
    const created = await createTopic('gap', 2);
    await produceWorld(created, 2000, 2, 7);
    const tape = join(dir, 'gap.tape');
    const brokers = KAFKA_BROKERS.join(',');
    const first = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--from-beginning', '--max-events', '300', '--out', tape, '--json']);
    expect(first.status, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ events: 300 });
    // Retention (here deleteRecords) moves each partition's start to 100 before its end: past
    // where the tape stopped.
    const kept = await withAdmin(async (admin) => {
      await admin.fetchTopicMetadata({ topics: [created] });
      const offsets = await admin.fetchTopicOffsets(created);
      await admin.deleteTopicRecords({ topic: created, partitions: offsets.map((o) => ({ partition: o.partition, offset: String(Number(o.high) - 100) })) });
      return offsets.length * 100;
    });
    const resumed = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--resume', '--until-caught-up', '--out', tape]);
    expect(resumed.status, resumed.stderr).toBe(2);
    expect(resumed.stderr).toMatch(
      /error \[E_KAFKA_GAP\]: .* partition [01]: the capture is at offset (\d+), but the topic now starts at (\d+) \(retention deleted offsets \1\.\.\d+ before they were recorded\); nothing was recorded past the gap\. The tape keeps what it holds, sound; to capture what the topic holds now, record into a new tape/,
    );
    expect(tapedeck(['verify', tape]).status).toBe(0);
    expect(tapedeck(['inspect', tape, '--json']).json()).toMatchObject({ events: 300 });
    const fresh = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--from-beginning', '--until-caught-up', '--out', join(dir, 'after-gap.tape'), '--json']);
    expect(fresh.status, fresh.stderr).toBe(0);
    expect(fresh.json()).toMatchObject({ events: kept });
  }, 120_000);

  it('--group: the group ends at the tape\'s last position (caught up, or stopped by --max-events), and the group\'s next recorder goes on from there', async () => {
    const created = await createTopic('group', 4);
    const total = await produceWorld(created, 20_000, 4, 11);
    const brokers = KAFKA_BROKERS.join(',');
    /** The group's committed offsets and the tape's last stored position, partition by partition. */
    const offsets = async (group: string, tape: string) => {
      const committed = await groupOffsets(group, created);
      const reader = TapeReader.open(tape);
      try {
        const positions = reader.sourcePositions();
        const next = (positions[positions.length - 1].position as { next: Record<string, Record<string, number>> }).next[created];
        return {
          group: committed,
          tape: { ...next },
        };
      } finally {
        reader.close();
      }
    };
    const ends = await topicEnds(created);
    // The reader thread and the one-thread recorder: each hands the tape's last commit to the group.
    for (const pipeline of ['on', 'off']) {
      const group = `g-${pipeline}-${created}`;
      const whole = join(dir, `group-whole-${pipeline}.tape`);
      const r = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--group', group, '--from-beginning', '--until-caught-up', '--pipeline', pipeline, '--out', whole, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.json()).toMatchObject({ events: total, pipelined: pipeline === 'on' });
      expect(await offsets(group, whole)).toEqual({ group: ends, tape: ends });

      // A capture stopped after a few hundred records (one fetch): the group has the tape's
      // position, and the next recorder of the group, without --from-beginning, records the rest.
      const next = `g-max-${pipeline}-${created}`;
      const first = join(dir, `group-first-${pipeline}.tape`);
      const a = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--group', next, '--from-beginning', '--max-events', '300', '--pipeline', pipeline, '--out', first, '--json']);
      expect(a.status, a.stderr).toBe(0);
      expect(a.json()).toMatchObject({ events: 300 });
      const stopped = await offsets(next, first);
      expect(stopped.group).toEqual(stopped.tape);
      expect(Object.values(stopped.group).reduce((sum, offset) => sum + offset, 0)).toBe(300);
      const second = join(dir, `group-second-${pipeline}.tape`);
      const b = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--group', next, '--until-caught-up', '--pipeline', pipeline, '--out', second, '--json']);
      expect(b.status, b.stderr).toBe(0);
      expect(b.json()).toMatchObject({ events: total - 300 });
      const merged = join(dir, `group-merged-${pipeline}.tape`);
      const m = tapedeck(['merge', first, second, '--out', merged, '--json']);
      expect(m.status, m.stderr).toBe(0);
      expect(m.json()).toMatchObject({ events: total, duplicatesSkipped: 0 });
      expect(await offsets(next, second)).toEqual({ group: ends, tape: ends });
    }
  }, 180_000);

  it('a live capture commits what it read when the topic goes quiet, without waiting for more records or a stop, on the reader thread and on one thread', async () => {
    const created = await createTopic('quiet', 4);
    // Records that come in one burst, then nothing: the recorder takes the last of them well
    // within 100 ms of its first commit, so only a commit made while it waits can hold them.
    const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
    await producer.connect();
    const messages = Array.from({ length: 10_000 }, (_, i) => ({ partition: i % 4, key: String(i % 50), value: JSON.stringify({ type: 'move', payload: { player: i % 50, dx: 1, dy: -1 } }) }));
    await producer.send({ topic: created, messages, acks: -1 });
    await producer.disconnect();
    for (const pipeline of ['on', 'off']) {
      const tape = join(dir, `quiet-${pipeline}.tape`);
      const run = startTapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', created, '--from-beginning', '--pipeline', pipeline, '--out', tape]);
      // Commits come within 100 ms of the last record taken; 30 s is for a slow machine's start.
      await waitForCommitted(tape, 10_000, 30_000);
      expect(run.child.exitCode, run.stderr()).toBeNull();
      run.child.kill('SIGINT');
      expect((await run.exited).code, run.stderr()).toBe(0);
      expect(compareWithTopic(readTape(tape), await readTopic(created))).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    }
  }, 120_000);

  it('Ctrl-C while the broker does not answer: the recorder waits at most 10 s for the group and 5 s for leaving it, says so, and ends with its tape whole, on the reader thread and on one thread', async () => {
    const created = await createTopic('frozen', 2);
    await produceWorld(created, 1_000, 2, 3);
    for (const pipeline of ['on', 'off']) {
      const { group, tape, run } = await liveGroupCapture(dir, 'frozen', created, pipeline);
      const { code, ms } = await interruptWhileFrozen(run, 0);
      const stderr = run.stderr();
      expect(code, stderr).toBe(0);
      // 10 s for the group, 5 s for leaving, 2 s for a client that still holds the process; and room for a slow machine.
      expect(ms, stderr).toBeLessThan(25_000);
      expect(stderr).toMatch(new RegExp(`warning: group ${group} did not take the tape's last position within 10 s; its offsets may lag the tape`));
      expect(stderr).toMatch(new RegExp(`warning: the broker did not answer the consumer's leaving group ${group} within 5 s; stopped waiting`));
      await expectStoppedWhole(run, tape, created, 1_000);
    }
  }, 180_000);

  it('a codec that never returns on the reader thread: Ctrl-C ends the reader after 20 s, exit 0, the tape sound with every record before it; --resume completes it, equal to the topic', async () => {
    const created = await createTopic('stuck', 1);
    const engine = writeStuckEngine(dir);
    const value = (i: number, type = 'deposit'): string => JSON.stringify({ type, payload: { amount: 1 + (i % 100) } });
    await produceBatches(created, [Array.from({ length: 2_000 }, (_, i) => ({ key: `account-${i % 16}`, value: value(i) }))]);
    const tape = join(dir, 'stuck.tape');
    const args = ['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', created, '--from-beginning', '--engine', engine, '--out', tape];
    // The reader converts every value itself, so the codec runs on its thread.
    const run = startTapedeck(args, { env: { ...STUCK_ENV, TAPEDECK_KAFKA_CONVERT: 'reader' } });
    try {
      await waitForCommitted(tape, 2_000, 30_000);
      // Then a record the codec sticks on, and more behind it, in a fetch of their own.
      await produceBatches(created, [[{ key: 'account-0', value: value(2_000, 'stuck') }, ...Array.from({ length: 1_000 }, (_, i) => ({ key: `account-${i % 16}`, value: value(2_001 + i) }))]]);
      expect(expectEndedStuck(run, await interruptWhenStuck(run, tape, 2_000), tape, 'the Kafka reader thread', 20, 2_000)).toBe(2_000);
    } finally {
      run.child.kill('SIGKILL');
    }
    const resumed = tapedeck([...args, '--resume', '--until-caught-up', '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({ events: 3_001, eventsThisRun: 1_001 });
    const { got } = readJsonTape(tape);
    const topic = await readTopic(created);
    expect(got.get(0)!.map((r) => [r.offset, r.json])).toEqual(topic.get(0)!.map((m) => [m.offset, m.value]));
  }, 180_000);

  it('Ctrl-C after the broker has gone (stopped): the recorder ends at once, exit 0, its tape holding every record it read, on the reader thread and on one thread', async () => {
    // With the broker gone, kafkajs restarts its consumer again and again; between two
    // attempts it refuses to pause the consumer (no group), and the source then leaves at once
    // instead of keeping the consumer for the tape's last commit (the group had it already).
    const created = await createTopic('gone', 2);
    await produceWorld(created, 1_000, 2, 5);
    for (const pipeline of ['on', 'off']) {
      const { tape, run } = await liveGroupCapture(dir, 'gone', created, pipeline);
      const { code, ms } = await withBrokerStopped(async () => {
        // Long enough for the consumer to find the broker gone (its fetches and heartbeats fail).
        await new Promise((resolve) => setTimeout(resolve, 6_000));
        return interrupt(run);
      });
      const stderr = run.stderr();
      console.log(`[gone] ${pipeline}: Ctrl-C to exit ${ms} ms`);
      expect(code, stderr).toBe(0);
      expect(ms, stderr).toBeLessThan(25_000);
      await expectStoppedWhole(run, tape, created, 1_000);
    }
  }, 240_000);

  it('two live recorders in one --group share the partitions: merged, their tapes hold every record once, in order, and the group ends at the topic\'s end', async () => {
    const { created, group, a, b, first, second } = await twoLiveRecorders(dir, 'shared', 13);
    // Later records, later timestamps (merge orders by them).
    await produceWorld(created, 30_000, 4, 14, DEFAULT_START_US + 60_000_000);
    const ends = await waitForGroupAtEnd(group, created);
    first.child.kill('SIGINT');
    second.child.kill('SIGINT');
    for (const [name, run] of [['first', first], ['second', second]] as const) {
      expect((await run.exited).code, `${name}: ${run.stderr()}`).toBe(0);
    }
    const heldA = readTape(a).length;
    const heldB = readTape(b).length;
    expect(heldA).toBeGreaterThan(10_000);
    expect(heldB).toBeGreaterThan(0);
    const merged = join(dir, 'shared-merged.tape');
    const m = tapedeck(['merge', a, b, '--out', merged, '--json']);
    expect(m.status, m.stderr).toBe(0);
    expect(m.json()).toMatchObject({ events: 40_000 });
    expect(compareWithTopic(readTape(merged), await readTopic(created))).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    // What both captured (a partition handed over between two of the first one's commits to the group) is kept once.
    expect(m.json<{ duplicatesSkipped: number }>().duplicatesSkipped).toBe(heldA + heldB - 40_000);
    expect(await groupOffsets(group, created)).toEqual(ends);
  }, 240_000);

  it('a recorder that gets back partitions another recorder of its group advanced goes on from its own tape: its tape alone holds the whole topic, and the group ends at the topic\'s end', async () => {
    // B (second) takes half the partitions, from the offsets A (first) committed, and records what comes next.
    const { created, group, a, b, first, second } = await twoLiveRecorders(dir, 'regain', 21);
    await produceWorld(created, 20_000, 4, 22, DEFAULT_START_US + 60_000_000);
    await waitForGroupAtEnd(group, created);
    second.child.kill('SIGINT');
    expect((await second.exited).code, second.stderr()).toBe(0);
    const heldB = readTape(b).length;
    expect(heldB).toBeGreaterThan(0);
    // B left: A gets its partitions back and reads them again from where its own tape ends, past
    // what B recorded, so that its tape has no gap; meanwhile more records come.
    await waitForMembers(group, 1);
    await produceWorld(created, 10_000, 4, 23, DEFAULT_START_US + 120_000_000);
    const ends = await waitForGroupAtEnd(group, created);
    first.child.kill('SIGINT');
    expect((await first.exited).code, first.stderr()).toBe(0);
    const topic = await readTopic(created);
    expect(compareWithTopic(readTape(a), topic)).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    expect(tapedeck(['verify', a]).status).toBe(0);
    const merged = join(dir, 'regain-merged.tape');
    const m = tapedeck(['merge', a, b, '--out', merged, '--json']);
    expect(m.status, m.stderr).toBe(0);
    expect(m.json()).toMatchObject({ events: 40_000, duplicatesSkipped: heldB });
    expect(await groupOffsets(group, created)).toEqual(ends);
  }, 300_000);

  it('merge refuses (E_MERGE_ORDER, exit 2) tapes whose out-of-order timestamps would put a partition\'s later offset before an earlier one, and leaves no merged tape', async () => {
    const created = await createTopic('order', 1);
    // Offsets 0..3 with timestamps 1, 5, 2 and 6 s into the day: the first recorder takes 0
    // and 1, the group's next one 2 and 3. By timestamp, offset 2 comes before offset 1.
    const base = Math.floor(DEFAULT_START_US / 1000);
    const value = (player: number) => JSON.stringify({ type: 'move', payload: { player, dx: 1, dy: 1 } });
    await produceBatches(created, [[1, 5, 2, 6].map((s, i) => ({ partition: 0, key: String(i), value: value(i), timestamp: String(base + s * 1000) }))]);
    const brokers = KAFKA_BROKERS.join(',');
    const group = `order-${created}`;
    const a = join(dir, 'order-a.tape');
    const b = join(dir, 'order-b.tape');
    expect(tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--group', group, '--from-beginning', '--max-events', '2', '--out', a]).status).toBe(0);
    expect(tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', created, '--group', group, '--until-caught-up', '--out', b, '--json']).json()).toMatchObject({ events: 2 });
    const merged = join(dir, 'order-merged.tape');
    const r = tapedeck(['merge', a, b, '--out', merged]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /error \[E_MERGE_ORDER\]: .*order-a\.tape: order-\S+ partition 0 offset 1 comes, by timestamp, after offset 2 of that partition from another tape; merging would break the partition's order/,
    );
    expect(existsSync(merged)).toBe(false);
  }, 120_000);

  it('records messages produced by kcat, keys and headers included', async () => {
    const created = await createTopic('kcat', 3);
    const lines = [
      `p1|{"type":"join","payload":{"player":1,"zone":0,"x":5,"y":6}}`,
      `p2|{"type":"join","payload":{"player":2,"zone":1,"x":7,"y":8}}`,
      `p1|{"type":"move","payload":{"player":1,"dx":1,"dy":-1}}`,
    ];
    for (const [i, text] of lines.entries()) {
      const r = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', created, '-P', '-K', '|', '-p', String(i % 3), '-H', `origin=kcat-${i}`], { input: text + '\n', encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    // And one with neither key nor headers.
    const bare = `{"type":"join","payload":{"player":3,"zone":2,"x":1,"y":2}}`;
    const r = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', created, '-P', '-p', '2'], { input: bare + '\n', encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    for (const convert of ['reader', 'main']) {
      const tape = join(dir, `kcat-${convert}.tape`);
      const r = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', created, '--from-beginning', '--until-caught-up', '--out', tape, '--json'], {
        env: { TAPEDECK_KAFKA_CONVERT: convert },
      });
      expect(r.status, r.stderr).toBe(0);
      const records = readTape(tape);
      expect(records).toHaveLength(4);
      const byOrigin = new Map(records.map((x) => [x.headers.origin, x]));
      for (const [i, text] of lines.entries()) {
        const x = byOrigin.get(`kcat-${i}`)!;
        expect(x.partition).toBe(i % 3);
        expect(x.key).toBe(text.split('|')[0]);
        expect(JSON.parse(x.json)).toEqual(JSON.parse(text.slice(text.indexOf('|') + 1)));
      }
      const plain = records.find((x) => x.headers.origin === undefined)!;
      expect(plain).toMatchObject({ partition: 2, key: null, headers: {} });
      expect(JSON.parse(plain.json)).toEqual(JSON.parse(bare));
    }
  }, 120_000);
});

/**
 * After a republish of `tape` to `target` stopped with `lastAcked` reported: every event up to
 * it is in the target, each partition in tape order. Then resume with --from `resumeAt` and
 * check that each partition holds its acknowledged events, perhaps some sent after them before
 * the stop (again, in order), then all the rest. Returns how many arrived twice.
 */
async function expectDeliveredThenResume(tape: string, target: string, lastAcked: number, resumeAt: number, resumeArgs = ['--from', String(resumeAt)]): Promise<number> {
  const recorded = readTape(tape);
  const byPartition = groupBy(recorded, (x) => x.partition);
  const seen = (records: TopicRecord[]) => records.map((m) => `${m.key}|${JSON.stringify(JSON.parse(m.value!))}`);
  const want = (events: TapeRecord[]) => events.map((x) => `${x.key}|${x.json}`);
  const before = await readTopic(target);
  for (const [partition, events] of byPartition) {
    const acked = want(events.filter((x) => x.seq <= lastAcked));
    expect(seen(before.get(partition) ?? []).slice(0, acked.length), `partition ${partition}: the acknowledged events`).toEqual(acked);
  }
  const resumed = tapedeck(['replay', tape, '--to-kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', target, ...resumeArgs, '--json']);
  expect(resumed.status, resumed.stderr).toBe(0);
  expect(resumed.json()).toMatchObject({ events: recorded.length - resumeAt, lastAckedSeq: recorded.length - 1 });
  const after = await readTopic(target);
  let twice = 0;
  for (const [partition, events] of byPartition) {
    const got = seen(after.get(partition) ?? []);
    const acked = want(events.filter((x) => x.seq <= lastAcked));
    const rest = want(events.filter((x) => x.seq > lastAcked));
    const middle = got.slice(acked.length, got.length - rest.length);
    expect(got.slice(0, acked.length), `partition ${partition}: acknowledged events`).toEqual(acked);
    expect(got.slice(got.length - rest.length), `partition ${partition}: resumed events`).toEqual(rest);
    expect(middle, `partition ${partition}: events sent twice must be the first ones after the last acknowledged`).toEqual(rest.slice(0, middle.length));
    twice += middle.length;
  }
  return twice;
}

describe.runIf(available)('replay --to-kafka (republish, real broker)', () => {
  const dir = tempDir();
  const brokers = KAFKA_BROKERS.join(',');

  it('sends every event with its key, partition, timestamp and headers; kcat reads them back', async () => {
    const source = await createTopic('republish-src', 6);
    await produceWorld(source, 20_000, 6, 5);
    const tape = join(dir, 'src.tape');
    expect(tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', source, '--from-beginning', '--until-caught-up', '--out', tape]).status).toBe(0);
    const target = await createTopic('republish-dst', 6);
    const r = tapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, events: 20_000, lastAckedSeq: 19_999, remappedPartitions: [] });
    // kcat, an independent client, reads the target: partition, key, timestamp (ms), value, headers.
    const out = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', target, '-C', '-e', '-q', '-f', '%p\t%o\t%k\t%T\t%h\t%s\n'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(out.status, out.stderr).toBe(0);
    const got = out.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(got).toHaveLength(20_000);
    const byPartition = groupBy(got, (g) => Number(g[0]));
    const recorded = readTape(tape);
    const expectedByPartition = groupBy(recorded, (x) => x.partition);
    for (const [partition, expected] of expectedByPartition) {
      const lines = byPartition.get(partition)!;
      expect(lines.map((l) => l[2])).toEqual(expected.map((x) => x.key));
      expect(lines.map((l) => Number(l[3]))).toEqual(expected.map((x) => x.timestampUs / 1000));
      expect(lines.map((l) => JSON.stringify(JSON.parse(l[5])))).toEqual(expected.map((x) => x.json));
      expect(lines.every((l) => l[4].includes('source=tapedeck-test'))).toBe(true);
    }
  }, 180_000);

  it('sends the same messages, each partition in tape order, from 1, 2 or 3 sender threads or from the calling thread', async () => {
    const tape = join(dir, 'src.tape');
    expect(existsSync(tape)).toBe(true);
    const outputs: string[] = [];
    // The built-in engine object is loaded on sender threads; a copy of it (as a library user's
    // engine object would be) sends from the calling thread.
    const runs: { engine: unknown; senders?: number; threads: number }[] = [
      { engine: worldEngine, senders: 1, threads: 1 },
      { engine: worldEngine, senders: 2, threads: 2 },
      { engine: worldEngine, senders: 3, threads: 3 },
      { engine: { ...worldEngine }, threads: 0 },
    ];
    for (const run of runs) {
      const target = await createTopic('republish-threads', 6);
      const result = await republishTape(tape, { brokers: KAFKA_BROKERS, topic: target, engine: run.engine as Engine, senders: run.senders });
      expect(result.events).toBe(20_000);
      expect(result.senders).toBe(run.threads);
      expect(result.lastAckedSeq).toBe(19_999);
      // kcat prints each partition in offset order: sorting by partition only (a stable sort)
      // keeps the order in which the broker stored them.
      const out = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', target, '-C', '-e', '-q', '-f', '%p\t%k\t%T\t%h\t%s\n'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      expect(out.status, out.stderr).toBe(0);
      outputs.push(
        out.stdout
          .trim()
          .split('\n')
          .sort((a, b) => Number(a.split('\t')[0]) - Number(b.split('\t')[0]))
          .join('\n'),
      );
    }
    expect(outputs[0].split('\n')).toHaveLength(20_000);
    for (let i = 1; i < outputs.length; i++) expect(outputs[i] === outputs[0], `run ${i} sent other messages or another order than run 0`).toBe(true);
  }, 240_000);

  it('maps partitions mod the target\'s count and paces --speed K no faster than recorded time / K', async () => {
    const target = await createTopic('republish-narrow', 2);
    const tape = join(dir, 'paced.tape');
    // 3,000 events at 20,000/s: 150 ms of recorded time; at --speed 0.5 at least 300 ms.
    expect(tapedeck(['record', '--out', tape, '--events', '3000', '--rate', '20000', '--partitions', '4']).status).toBe(0);
    const r = tapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--speed', '0.5', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = r.json<{ events: number; elapsedMs: number; requestedEventsPerSec: number; recordedEventsPerSec: number; eventsPerSec: number; remappedPartitions: { from: number; to: number }[] }>();
    expect(report.events).toBe(3000);
    expect(report.remappedPartitions).toEqual([{ from: 2, to: 0 }, { from: 3, to: 1 }]);
    expect(report.requestedEventsPerSec).toBeCloseTo(report.recordedEventsPerSec * 0.5, 6);
    const spanMs = (3000 / report.recordedEventsPerSec) * 1000;
    expect(report.elapsedMs).toBeGreaterThanOrEqual(spanMs / 0.5 - 5);
    const count = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', target, '-C', '-e', '-q', '-f', '%p\n'], { encoding: 'utf8' });
    expect(count.stdout.trim().split('\n')).toHaveLength(3000);
  }, 120_000);

  it('Ctrl-C stops a paced republish cleanly: it names the last acknowledged event, and --from continues without loss', async () => {
    // 100,000 events recorded at 10,000/s, republished at recorded speed (10 s); SIGINT after 2.5 s.
    const tape = join(dir, 'republish-sigint.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '100000', '--rate', '10000', '--partitions', '4', '--seed', '41']).status).toBe(0);
    const target = await createTopic('republish-sigint', 4);
    const run = startTapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--speed', '1', '--json']);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    run.child.kill('SIGINT');
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(0);
    const report = JSON.parse(run.stdout().trim().split('\n').pop()!) as { stopped: boolean; stoppedBy: string | null; lastAckedSeq: number | null; events: number };
    expect(report).toMatchObject({ stopped: true, stoppedBy: 'SIGINT' });
    expect(report.lastAckedSeq).not.toBeNull();
    expect(report.lastAckedSeq!).toBeLessThan(99_999);
    const twice = await expectDeliveredThenResume(tape, target, report.lastAckedSeq!, report.lastAckedSeq! + 1);
    console.log(`republish SIGINT: stopped after ${report.events} events sent, last acknowledged ${report.lastAckedSeq}; ${twice} sent after it arrived twice`);
  }, 180_000);

  it('kill -9 mid-republish: --position-file kept the last acknowledged event, and --resume continues from it without loss', async () => {
    // 100,000 events recorded at 10,000/s, republished at recorded speed (10 s); kill -9 after 3 s.
    const tape = join(dir, 'republish-kill.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '100000', '--rate', '10000', '--partitions', '4', '--seed', '43']).status).toBe(0);
    const target = await createTopic('republish-kill', 4);
    const positionFile = join(dir, 'republish-kill.position.json');
    const run = startTapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--speed', '1', '--position-file', positionFile]);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    run.child.kill('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');
    const saved = JSON.parse(readFileSync(positionFile, 'utf8')) as { tape: string; topic: string; fromSeq: number; lastAckedSeq: number | null };
    expect(saved).toMatchObject({ tape, topic: target, fromSeq: 0 });
    expect(saved.lastAckedSeq).not.toBeNull();
    expect(saved.lastAckedSeq!).toBeLessThan(99_999);
    // A position file of another tape or topic is refused.
    const wrong = tapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', `${target}-other`, '--position-file', positionFile, '--resume']);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/is the position of .* sent to republish-kill/);
    const twice = await expectDeliveredThenResume(tape, target, saved.lastAckedSeq!, saved.lastAckedSeq! + 1, ['--position-file', positionFile, '--resume']);
    const after = JSON.parse(readFileSync(positionFile, 'utf8')) as { fromSeq: number; lastAckedSeq: number | null };
    expect(after).toMatchObject({ fromSeq: saved.lastAckedSeq! + 1, lastAckedSeq: 99_999 });
    console.log(`republish kill -9: the position file said ${saved.lastAckedSeq}; ${twice} events sent after it arrived twice`);
  }, 180_000);

  it('Ctrl-C while the broker does not answer: a republish waits at most 20 s for the requests in flight, says so, exits 0 naming the last acknowledged event (its position file too), and --resume completes the target', async () => {
    const tape = join(dir, 'republish-frozen.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '100000', '--rate', '10000', '--partitions', '4', '--seed', '47']).status).toBe(0);
    const target = await createTopic('republish-frozen', 4);
    const positionFile = join(dir, 'republish-frozen.position.json');
    const run = startTapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--speed', '1', '--position-file', positionFile, '--json']);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    // Paced requests go on going out, and wait for the broker.
    const { code, ms } = await interruptWhileFrozen(run, 1000);
    const stderr = run.stderr();
    expect(code, stderr).toBe(0);
    // 20 s for the requests in flight, and room for a slow machine; the client's own retries would wait for the broker for minutes.
    expect(ms, stderr).toBeGreaterThanOrEqual(19_000);
    expect(ms, stderr).toBeLessThan(35_000);
    expect(stderr).toMatch(/tapedeck: stopping after SIGINT: the broker or a sender thread has not answered yet \(the requests in flight are waited for at most 20 s\); SIGINT again quits at once \(.*position\.json keeps the last acknowledged event\)/);
    const report = JSON.parse(run.stdout().trim().split('\n').pop()!) as { stopped: boolean; stoppedBy: string | null; lastAckedSeq: number | null; unansweredRequests: number };
    expect(report).toMatchObject({ stopped: true, stoppedBy: 'SIGINT' });
    expect(report.unansweredRequests).toBeGreaterThan(0);
    expect(report.lastAckedSeq).not.toBeNull();
    expect(report.lastAckedSeq!).toBeLessThan(99_999);
    expect((JSON.parse(readFileSync(positionFile, 'utf8')) as { lastAckedSeq: number | null }).lastAckedSeq).toBe(report.lastAckedSeq);
    const twice = await expectDeliveredThenResume(tape, target, report.lastAckedSeq!, report.lastAckedSeq! + 1, ['--position-file', positionFile, '--resume']);
    console.log(`republish frozen broker: SIGINT to exit ${ms} ms, ${report.unansweredRequests} requests unanswered, last acknowledged ${report.lastAckedSeq}; ${twice} events sent after it arrived twice`);
  }, 180_000);

  it('a stop while the broker does not answer, sending from the calling thread (a library user\'s engine object): the republish ends within 20 s for the requests and 5 s for the disconnect, naming the last acknowledged event', async () => {
    const tape = join(dir, 'republish-frozen-main.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '100000', '--rate', '10000', '--partitions', '4', '--seed', '59']).status).toBe(0);
    const target = await createTopic('republish-frozen-main', 4);
    const controller = new AbortController();
    // A copy of the built-in engine object sends from this thread (see the test of sender threads above).
    const running = republishTape(tape, { brokers: KAFKA_BROKERS, topic: target, engine: { ...worldEngine }, speed: 1, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { result, ms } = await withBrokerFrozen(async () => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const t0 = Date.now();
      controller.abort();
      const ended = await running;
      return { result: ended, ms: Date.now() - t0 };
    });
    expect(result.senders).toBe(0);
    expect(result.stopped).toBe(true);
    expect(result.unansweredRequests).toBeGreaterThan(0);
    // 20 s for the requests in flight, at most 5 for the disconnect, and room for a slow machine.
    expect(ms).toBeGreaterThanOrEqual(19_000);
    expect(ms).toBeLessThan(40_000);
    expect(result.lastAckedSeq).not.toBeNull();
    expect(result.lastAckedSeq!).toBeLessThan(99_999);
    const twice = await expectDeliveredThenResume(tape, target, result.lastAckedSeq!, result.lastAckedSeq! + 1);
    console.log(`republish from the calling thread, frozen broker: abort to end ${ms} ms, ${result.unansweredRequests} requests unanswered, last acknowledged ${result.lastAckedSeq}; ${twice} events sent after it arrived twice`);
  }, 180_000);

  it('a codec that never returns on a sender thread: Ctrl-C ends the thread after 30 s, exit 0, naming it and the last acknowledged event; --from continues without loss', async () => {
    const tape = join(dir, 'republish-stuck.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '100000', '--partitions', '4', '--seed', '53']).status).toBe(0);
    const target = await createTopic('republish-stuck', 4);
    const engine = writeStuckRenderEngine(dir);
    const run = startTapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--engine', engine, '--workers', '2'], { env: { ...STUCK_ENV, TAPEDECK_TEST_STUCK_AT: '20000' } });
    // Each sender thread sticks on the 20,000th value it renders, within seconds at --speed max.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect(run.child.exitCode, run.stderr()).toBeNull();
    const { code, ms } = await interrupt(run);
    const stdout = run.stdout();
    expect(code, run.stderr()).toBe(0);
    expect(ms, run.stderr()).toBeGreaterThanOrEqual(29_000);
    expect(ms, run.stderr()).toBeLessThan(50_000);
    expect(run.stderr()).toMatch(/tapedeck: stopping after SIGINT: the broker or a sender thread has not answered yet/);
    expect(stdout).toMatch(/republish sender thread [12] sent nothing for 30 s after the stop and was ended \(is the engine's codec stuck\?\); how far it got is from its last report/);
    const said = /stopped by SIGINT: events up to (\d+) were acknowledged; continue with --from (\d+)/.exec(stdout);
    expect(said, stdout).not.toBeNull();
    const lastAcked = Number(said![1]);
    expect(Number(said![2])).toBe(lastAcked + 1);
    expect(lastAcked).toBeLessThan(99_999);
    const twice = await expectDeliveredThenResume(tape, target, lastAcked, lastAcked + 1);
    console.log(`republish stuck codec: SIGINT to exit ${ms} ms, last acknowledged ${lastAcked}; ${twice} events sent after it arrived twice`);
  }, 180_000);

  it('keeps every value of a header name that repeats, and null keys, through record and republish (kcat both ways)', async () => {
    const source = await createTopic('republish-headers', 1);
    const text = '{"type":"join","payload":{"player":7,"zone":0,"x":1,"y":2}}';
    const produced = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', source, '-P', '-p', '0', '-H', 'trace=a', '-H', 'hop=1', '-H', 'trace=b'], { input: text + '\n', encoding: 'utf8' });
    expect(produced.status, produced.stderr).toBe(0);
    const tape = join(dir, 'headers.tape');
    expect(tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', source, '--from-beginning', '--until-caught-up', '--out', tape]).status).toBe(0);
    const target = await createTopic('republish-headers-out', 1);
    const r = tapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target]);
    expect(r.status, r.stderr).toBe(0);
    const out = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', target, '-C', '-e', '-q', '-f', '%k|%h|%s\n'], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    // kcat prints an absent key as an empty string; the repeated name's values come together, in order.
    expect(out.stdout.trim()).toBe(`|trace=a,trace=b,hop=1|${text}`);
  }, 120_000);

  it('names a missing target topic (exit 2)', () => {
    const r = tapedeck(['replay', join(REPO, 'fixtures', 'golden-world.tape'), '--to-kafka', '--brokers', brokers, '--topic', 'no-such-target-topic']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no-such-target-topic does not exist/);
  }, 60_000);
});

describe.runIf(available)('ingest (the live service, real broker)', () => {
  const dir = tempDir();
  const brokers = KAFKA_BROKERS.join(',');

  it('applies every event, publishes every update off the engine path, records a tape that replays with every checkpoint verified', async () => {
    const input = await createTopic('ingest-in', 12);
    await produceWorld(input, 30_000, 12, 8);
    const output = await createTopic('ingest-out', 4);
    const tape = join(dir, 'ingest.tape');
    const r = tapedeck(['ingest', '--brokers', brokers, '--topic', input, '--out-topic', output, '--from-beginning', '--until-caught-up', '--record', tape, '--checkpoint-every', '2000', '--channel-capacity', '256', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = r.json<{ events: number; updatesEmitted: number; updatesPublished: number; channelCapacity: number; channelMaxDepth: number; latencyMs: { p50: number; p95: number; p99: number; p999: number; max: number; mean: number } }>();
    expect(report.events).toBe(30_000);
    expect(report.updatesEmitted).toBeGreaterThan(0);
    expect(report.updatesPublished).toBe(report.updatesEmitted);
    expect(report.channelCapacity).toBe(256);
    expect(report.channelMaxDepth).toBeLessThanOrEqual(256);
    const l = report.latencyMs;
    expect(l.p50).toBeLessThanOrEqual(l.p95);
    expect(l.p95).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.p999);
    expect(l.p999).toBeLessThanOrEqual(l.max);
    // The updates, read back by kcat.
    const out = spawnSync('kcat', ['-b', KAFKA_BROKERS[0], '-t', output, '-C', '-e', '-q', '-f', '%s\n'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(out.stdout.trim().split('\n')).toHaveLength(report.updatesEmitted);
    // The recorded tape equals the topic and replays with every checkpoint verified.
    expect(compareWithTopic(readTape(tape), await readTopic(input))).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    const replay = tapedeck(['replay', tape, '--json']);
    expect(replay.status, replay.stdout).toBe(0);
    expect(replay.json()).toMatchObject({ ok: true, events: 30_000, checkpointsVerified: 15, mismatches: 0, updatesEmitted: report.updatesEmitted });
  }, 180_000);

  it('--record onto a tape whose writes fail (the file size limit met): exit 2 naming what the tape keeps, and the tape verifies', async () => {
    const input = await createTopic('ingest-limited', 12);
    await produceWorld(input, 60_000, 12, 9);
    const tape = join(dir, 'ingest-limited.tape');
    const r = tapedeck(['ingest', '--brokers', brokers, '--topic', input, '--from-beginning', '--until-caught-up', '--record', tape], { fileSizeLimitBlocks: 2048, timeoutMs: 120_000 });
    const kept = keptAfterWriteFailure(r, /tapedeck: error \[E_TAPE_WRITE\]: .*ingest-limited\.tape: cannot write to the tape: .*\. The tape keeps the ([\d,]+) events committed before it, sound/);
    expectSoundTapeOf(tape, kept);
  }, 180_000);

  it('without --record it only runs the engine, and --status-every prints the live figures as JSON lines', async () => {
    const input = await createTopic('ingest-status', 3);
    await produceWorld(input, 5_000, 3, 4);
    const r = tapedeck(['ingest', '--brokers', brokers, '--topic', input, '--from-beginning', '--duration', '1500ms', '--status-every', '200ms', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ events: 5_000, record: null, updatesPublished: 0 });
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const last = JSON.parse(lines[lines.length - 1]) as { status: string; events: number; latencyMs: { p99: number } | null; channelDepth: number };
    expect(last).toMatchObject({ status: 'ingest', events: 5_000, channelDepth: 0 });
    expect(last.latencyMs).not.toBeNull();
  }, 120_000);

  it('--group: with --record the group ends at the tape\'s position; without it no offset is committed (the state lived only in that run)', async () => {
    const input = await createTopic('ingest-group', 3);
    await produceWorld(input, 3_000, 3, 5);
    const bare = `ingest-bare-${process.pid}-${Date.now()}`;
    const r = tapedeck(['ingest', '--brokers', brokers, '--topic', input, '--group', bare, '--from-beginning', '--until-caught-up', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ events: 3_000, record: null });
    expect(await groupOffsets(bare, input)).toEqual({ 0: -1, 1: -1, 2: -1 });
    const recorded = `ingest-recorded-${process.pid}-${Date.now()}`;
    const tape = join(tempDir(), 'ingest-group.tape');
    const withTape = tapedeck(['ingest', '--brokers', brokers, '--topic', input, '--group', recorded, '--from-beginning', '--until-caught-up', '--record', tape, '--json']);
    expect(withTape.status, withTape.stderr).toBe(0);
    const ends = await topicEnds(input);
    expect(Object.values(ends).reduce((a, b) => a + b, 0)).toBe(3_000);
    expect(await groupOffsets(recorded, input)).toEqual(ends);
  }, 120_000);

  it('Ctrl-C while the broker does not answer: ingest says it is waiting and that a second Ctrl-C quits, ends within the group\'s bounds, exit 0, its tape whole', async () => {
    const input = await createTopic('ingest-frozen', 3);
    await produceWorld(input, 3_000, 3, 6);
    const tape = join(dir, 'ingest-frozen.tape');
    const group = `ingest-frozen-${process.pid}-${Date.now()}`;
    const run = startTapedeck(['ingest', '--brokers', brokers, '--topic', input, '--group', group, '--from-beginning', '--record', tape]);
    await waitForCommitted(tape, 3_000, 30_000);
    const { code, ms } = await interruptWhileFrozen(run, 0);
    const stderr = run.stderr();
    expect(code, stderr).toBe(0);
    // 10 s for the group's last position, 5 s for leaving it; room for a slow machine.
    expect(ms, stderr).toBeLessThan(25_000);
    expect(stderr).toMatch(/tapedeck: stopping after SIGINT: the broker has not answered yet; SIGINT again quits at once \(the tape keeps its last commit\)/);
    expect(stderr).toMatch(new RegExp(`warning: group ${group} did not take the tape's last position within 10 s`));
    expect(run.stdout()).toMatch(/stopped by SIGINT: everything read is committed to the tape/);
    expect(tapedeck(['verify', tape]).status).toBe(0);
    expect(compareWithTopic(readTape(tape), await readTopic(input))).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
  }, 120_000);

  it('Ctrl-C while the broker does not answer, with --out-topic: the updates in flight are waited for at most 20 s, then counted as not acknowledged; exit 0', async () => {
    const input = await createTopic('ingest-frozen-out', 3);
    await produceWorld(input, 300_000, 3, 7);
    const output = await createTopic('ingest-frozen-updates', 3);
    const run = startTapedeck(['ingest', '--brokers', brokers, '--topic', input, '--from-beginning', '--out-topic', output, '--json']);
    // Once updates reach the output topic, the broker stops answering while the engine goes on.
    const deadline = Date.now() + 60_000;
    while (Object.values(await topicEnds(output)).reduce((a, b) => a + b, 0) === 0) {
      expect(Date.now(), run.stderr()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { code, ms } = await interruptWhileFrozen(run, 1000);
    const stderr = run.stderr();
    expect(code, stderr).toBe(0);
    // The group's bounds (a leave of at most 5 s), 20 s for the updates, 5 s for the producer's disconnect; room for a slow machine.
    expect(ms, stderr).toBeLessThan(50_000);
    expect(stderr).toMatch(new RegExp(`tapedeck: stopping after SIGINT: the broker has not answered yet \\(the updates in flight to ${output} are waited for at most 20 s\\); SIGINT again quits at once`));
    const report = JSON.parse(run.stdout().trim().split('\n').pop()!) as { stoppedBy: string | null; updatesEmitted: number; updatesPublished: number; updatesUnacknowledged: number };
    expect(report.stoppedBy).toBe('SIGINT');
    expect(report.updatesUnacknowledged).toBeGreaterThan(0);
    expect(report.updatesPublished + report.updatesUnacknowledged).toBe(report.updatesEmitted);
    // Every acknowledged update is in the topic; those in flight at the give-up may be too.
    const published = Object.values(await topicEnds(output)).reduce((a, b) => a + b, 0);
    expect(published).toBeGreaterThanOrEqual(report.updatesPublished);
    expect(published).toBeLessThanOrEqual(report.updatesEmitted);
    console.log(`ingest --out-topic, frozen broker: SIGINT to exit ${ms} ms; ${report.updatesEmitted} updates emitted, ${report.updatesPublished} acknowledged, ${report.updatesUnacknowledged} not; the topic holds ${published}`);
  }, 180_000);
});

describe.runIf(available)('record --source kafka: 1,000,000 events, kill -9 and broker restart (real broker)', () => {
  const dir = tempDir();
  const events = 1_000_000;
  let topic: string;
  let contents: Map<number, TopicRecord[]>;
  const brokers = KAFKA_BROKERS.join(',');

  beforeAll(async () => {
    topic = await createTopic('million', 12);
    await produceWorld(topic, events, 12, 11);
    contents = await readTopic(topic);
  }, 300_000);

  it('a capture of 1M events from 12 partitions equals the topic', () => {
    const tape = join(dir, 'million.tape');
    const r = tapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', topic, '--from-beginning', '--until-caught-up', '--out', tape, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ events, accepted: events });
    const anomalies = compareWithTopic(readTape(tape), contents);
    console.log(`1M capture: ${JSON.stringify(anomalies)}`);
    expect(anomalies).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
  }, 300_000);

  it('kill -9 at 20 or more random points, resuming each time: 0 lost, 0 duplicated, order per partition kept', async () => {
    const { seed } = propertyParams('kafka kill -9');
    const tape = join(dir, 'killed.tape');
    const args = ['record', '--source', 'kafka', '--brokers', brokers, '--topic', topic, '--from-beginning', '--until-caught-up', '--block-events', '2000', '--json'];
    const { kills, points, stdout } = await killUntilDone({ args, tape, events, random: killRandom(seed ?? 1), label: `seed ${seed}` });
    console.log(`kill points (planned events committed + ms, or ms after start : events the tape held after the kill): ${points}`);
    expect(kills, points).toBeGreaterThanOrEqual(20);
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toMatchObject({ events });
    const anomalies = compareWithTopic(readTape(tape), contents);
    console.log(`kill -9 x${kills} (seed ${seed}): lost ${anomalies.lost}, duplicated ${anomalies.duplicated}, reordered ${anomalies.reordered}, altered ${anomalies.altered}`);
    expect(anomalies).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    expect(tapedeck(['replay', tape]).status).toBe(0);
  }, 600_000);

  it('survives a broker restart mid-capture: reconnects and finishes with the same result', async () => {
    const restartTopic = await createTopic('restart', 6);
    await produceWorld(restartTopic, 100_000, 6, 21);
    const tape = join(dir, 'restart.tape');
    // Wait for 200k: half is there now, the other half is produced after the restart.
    const run = startTapedeck(['record', '--source', 'kafka', '--brokers', brokers, '--topic', restartTopic, '--from-beginning', '--max-events', '200000', '--out', tape, '--json']);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    restartBroker();
    await produceWorld(restartTopic, 100_000, 6, 22);
    const { code } = await run.exited;
    expect(code, run.stderr()).toBe(0);
    expect(JSON.parse(run.stdout().trim().split('\n').pop()!)).toMatchObject({ events: 200_000 });
    const captured = readTape(tape);
    const topicRecords = await readTopic(restartTopic);
    // The test's producer may write a batch twice when a request is retried around the restart
    // (it is not idempotent): the topic then holds more than 200,000 records, and the capture,
    // stopped at 200,000, cannot hold the last of them. Each partition's captured part must
    // still equal the topic's, from its start, with nothing lost, duplicated or reordered.
    const inTopic = [...topicRecords.values()].reduce((n, records) => n + records.length, 0);
    const distinct = new Set([...topicRecords.values()].flatMap((records) => records.map((m) => JSON.stringify([m.partition, m.key, m.value, m.timestampMs, m.headers]))));
    const anomalies = comparePrefixWithTopic(captured, topicRecords);
    console.log(`broker restart: ${JSON.stringify(anomalies)}; the topic holds ${inTopic} records (${inTopic - distinct.size} written twice by the producer), the tape ${captured.length}`);
    expect(captured.length).toBe(200_000);
    expect(inTopic - distinct.size, 'records the test producer wrote twice').toBe(inTopic - 200_000);
    expect(anomalies).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
  }, 300_000);

  it('republish: the broker stops mid-way; every event up to the reported last acknowledged one is in the target, and --from resumes with nothing lost', async () => {
    // 200,000 events recorded at 20,000/s, republished at recorded speed (10 s) by 2 sender
    // threads; the broker stops after 3 s.
    const tape = join(dir, 'republish-stop.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '200000', '--rate', '20000', '--partitions', '6', '--seed', '31']).status).toBe(0);
    const target = await createTopic('republish-stop', 6);
    const run = startTapedeck(['replay', tape, '--to-kafka', '--brokers', brokers, '--topic', target, '--speed', '1', '--workers', '2']);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const { code } = await withBrokerStopped(() => run.exited);
    const stderr = run.stderr();
    expect(code, stderr).toBe(2);
    const said = /E_KAFKA_PRODUCE.*Events up to (\d+|none) were acknowledged; continue with --from (\d+)/.exec(stderr);
    expect(said, stderr).not.toBeNull();
    const lastAcked = said![1] === 'none' ? -1 : Number(said![1]);
    const resumeAt = Number(said![2]);
    expect(resumeAt).toBe(lastAcked + 1);
    expect(lastAcked).toBeLessThan(199_999);

    const inFlightTwice = await expectDeliveredThenResume(tape, target, lastAcked, resumeAt);
    console.log(`republish broker stop: last acknowledged ${lastAcked}, resumed from ${resumeAt}; ${inFlightTwice} events sent after it before the stop arrived twice`);
  }, 300_000);
});
