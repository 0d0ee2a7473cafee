// `record --source kafka` against the real broker (scripts/kafka/broker.sh).

import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldCodec } from '../../engine/world/index.js';
import { TapeReader } from '../../tape/reader.js';
import { tapedeck, tempDir } from '../support/cli.js';
import { createTopic, KAFKA_BROKERS, kafkaAvailable, produceWorld, readTopic, type TopicRecord } from '../support/kafka.js';

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

/** Compare a tape with the topic, partition by partition; returns the anomaly counts. */
export function compareWithTopic(tape: TapeRecord[], topic: Map<number, TopicRecord[]>): { lost: number; duplicated: number; reordered: number; altered: number } {
  const byPartition = new Map<number, TapeRecord[]>();
  for (const r of tape) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
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
    const tape = join(dir, 'capture.tape');
    const r = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--from-beginning', '--until-caught-up', '--out', tape, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ events, accepted: events, quarantined: 0 });
    const records = readTape(tape);
    expect(records).toHaveLength(events);
    expect(compareWithTopic(records, contents)).toEqual({ lost: 0, duplicated: 0, reordered: 0, altered: 0 });
    // Checkpoints were taken live; the tape replays and verifies.
    const replay = tapedeck(['replay', tape, '--json']);
    expect(replay.status, replay.stdout).toBe(0);
    expect(replay.json()).toMatchObject({ ok: true, events, mismatches: 0 });
    const reader = TapeReader.open(tape);
    expect(reader.meta.source).toMatchObject({ kind: 'kafka', topics: [topic], brokers: KAFKA_BROKERS });
    reader.close();
  }, 180_000);

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

  it('names a missing topic and an unreachable broker (exit 2)', () => {
    const missing = tapedeck(['record', '--source', 'kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', 'no-such-topic-here', '--until-caught-up', '--out', join(dir, 'x.tape')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/topic no-such-topic-here does not exist/);
  }, 60_000);
});
