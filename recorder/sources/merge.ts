// `tapedeck merge A.tape B.tape ... --out ALL.tape`: a source that reads several tapes and
// hands their events to the recorder as one stream, so the merged tape gets its blocks,
// position index, checkpoints and snapshots exactly as a recording would (the checkpoints are
// computed again over the merged stream: the inputs' checkpoints cover their own parts only).
//
// Order. The inputs are merged by timestamp (ties: the input listed first), each input in its
// own order, so every partition's order within an input is kept. For tapes recorded from
// Kafka, a record is identified by (topic, partition, offset): a record already merged (the
// same partition captured by two recorders, one after a rebalance, or an overlap) is skipped
// and counted, and a record that would come after a higher offset of its partition without
// having been merged is an error, since the merged tape would not keep that partition's order.
//
// Rejects (quarantined inputs) are carried over, each placed where it sat among its input's
// events. The merged tape's source position, for `record --resume` into it, is the union of
// the inputs' stored positions (the furthest offset per partition).

import { statSync } from 'node:fs';
import { TapedeckError } from '../../engine/errors.js';
import type { EventCodec } from '../../engine/types.js';
import type { BlockCursor } from '../../tape/block.js';
import { TapeReader } from '../../tape/reader.js';
import type { RejectRecord } from '../../tape/schema.js';
import type { Source, SourceItem, SourceRecord, SourceReject } from '../source.js';

const BATCH_EVENTS = 4096;

interface Input {
  readonly path: string;
  readonly reader: TapeReader;
  readonly blocks: Iterator<BlockCursor>;
  cursor: BlockCursor | null;
  /** Maps the input's stream index to the merged tape's. */
  readonly streamMap: number[];
  readonly rejects: (RejectRecord & { rejectNo: number })[];
  nextReject: number;
  events: number;
}

export interface MergeStats {
  readonly eventsPerInput: readonly number[];
  readonly duplicatesSkipped: number;
}

/**
 * A tape given twice (by two names: a link, `./a.tape`), or a copy of one (the same recording:
 * made at the same moment from the same source, perhaps resumed further since), would put
 * each of its events into the merged tape twice; merge refuses it. Kafka tapes are let be: a
 * record two tapes hold is kept once there (and recorders in one group may well start in the
 * same millisecond with the same description).
 */
function refuseRepeatedInputs(paths: readonly string[], readers: readonly TapeReader[], kafka: boolean): void {
  const seen = new Map<string, number>();
  for (const [i, path] of paths.entries()) {
    const file = statSync(path);
    const identity = `${file.dev}:${file.ino}`;
    const earlier = seen.get(identity);
    if (earlier !== undefined) {
      throw new TapedeckError('E_MERGE_SAME_TAPE', `${paths[earlier]} and ${path} are the same file: merging a tape with itself would hold each of its events twice`);
    }
    seen.set(identity, i);
    if (kafka) continue;
    const m = readers[i].meta;
    const copyOf = readers.findIndex((r, j) => j < i && r.meta.createdAt === m.createdAt && JSON.stringify(r.meta.source) === JSON.stringify(m.source));
    if (copyOf >= 0) {
      throw new TapedeckError(
        'E_MERGE_SAME_TAPE',
        `${path} is a copy of ${paths[copyOf]} (the same recording: made at ${m.createdAt} from the same source): merging them would hold the events they share twice; keep the longer one`,
      );
    }
  }
}

export class MergeSource<E> implements Source<E> {
  readonly name: string;
  readonly live = false;
  readonly description: unknown;
  private readonly inputs: Input[];
  private readonly inputTotal: number;
  private readonly kafka: boolean;
  private readonly topics: string[];
  /** (stream, partition) -> next position (Kafka tapes): for duplicate detection and the merged position. */
  private readonly next = new Map<number, number>();
  private readonly storedPositions: unknown[];
  private finished = false;
  private stopped = false;
  private duplicates = 0;

  constructor(paths: readonly string[], private readonly codec: EventCodec<E>) {
    if (paths.length < 2) throw new TapedeckError('E_USAGE', 'merge needs at least two tapes');
    const readers = paths.map((p) => TapeReader.open(p));
    try {
      const first = readers[0].meta;
      const kinds = readers.map((r) => (r.meta.source as { kind?: string } | null)?.kind ?? 'unknown');
      for (const [i, r] of readers.entries()) {
        if (r.meta.engineName !== first.engineName || r.meta.codec !== first.codec) {
          throw new TapedeckError('E_MERGE_MISMATCH', `${paths[i]} holds ${r.meta.engineName} events (codec ${r.meta.codec}), ${paths[0]} ${first.engineName} (codec ${first.codec}): only tapes of one engine and codec merge`);
        }
        if (kinds[i] !== kinds[0]) throw new TapedeckError('E_MERGE_MISMATCH', `${paths[i]} was recorded from a ${kinds[i]} source, ${paths[0]} from ${kinds[0]}`);
      }
      if (codec.name !== first.codec) throw new TapedeckError('E_MERGE_MISMATCH', `the tapes use codec ${first.codec}, the engine given ${codec.name}`);
      this.kafka = kinds[0] === 'kafka';
      refuseRepeatedInputs(paths, readers, this.kafka);
      this.name = this.kafka ? 'kafka' : 'merge';
      this.topics = [];
      const streamMaps = readers.map((r) => {
        const topics = this.kafka ? ((r.meta.source as { topics?: string[] }).topics ?? []) : [''];
        return topics.map((t) => {
          let at = this.topics.indexOf(t);
          if (at < 0) at = this.topics.push(t) - 1;
          return at;
        });
      });
      this.storedPositions = readers.map((r) => r.sourcePositions().find((p) => p.source === this.name)?.position ?? null);
      const base = first.source as Record<string, unknown>;
      this.description = this.kafka
        ? { ...base, topics: this.topics, mergedFrom: [...paths] }
        : { kind: 'merge', mergedFrom: [...paths], sources: readers.map((r) => r.meta.source) };
      this.inputTotal = readers.reduce((n, r) => {
        const summary = r.summary();
        return n + summary.events + summary.rejects;
      }, 0);
      this.inputs = readers.map((reader, i) => ({
        path: paths[i],
        reader,
        blocks: reader.blocks(0)[Symbol.iterator](),
        cursor: null,
        streamMap: streamMaps[i],
        rejects: reader.rejects(),
        nextReject: 0,
        events: 0,
      }));
    } catch (error) {
      for (const r of readers) r.close();
      throw error;
    }
  }

  /** The inputs' events and rejects together (records two tapes hold are read from each): for the progress bar. */
  expectedRecords(): number {
    return this.inputTotal;
  }

  /** The run seed and engine options of the first input (the merged tape's engine starts there). */
  get firstMeta(): TapeReader['meta'] {
    return this.inputs[0].reader.meta;
  }

  get stats(): MergeStats {
    return { eventsPerInput: this.inputs.map((i) => i.events), duplicatesSkipped: this.duplicates };
  }

  close(): void {
    // (An input's blocks not all read, after a merge failed on another input, are ended by the
    // reader's close.)
    for (const input of this.inputs) input.reader.close();
  }

  stop(): void {
    this.stopped = true;
  }

  resumeAfter(item: SourceItem<E>): unknown {
    if (!this.kafka) return { mergedFrom: this.inputs.map((i) => i.path), position: (item as { position?: unknown }).position ?? null };
    const next: Record<string, Record<string, number>> = {};
    const put = (topic: string, partition: string, offset: number): void => {
      const t = (next[topic] ??= {});
      if (t[partition] === undefined || t[partition] < offset) t[partition] = offset;
    };
    for (const [key, offset] of this.next) put(this.topics[Math.floor(key / 65536)], String(key % 65536), offset);
    if (this.finished) {
      for (const stored of this.storedPositions) {
        for (const [topic, partitions] of Object.entries((stored as { next?: Record<string, Record<string, number>> } | null)?.next ?? {})) {
          for (const [partition, offset] of Object.entries(partitions)) put(topic, partition, offset);
        }
      }
    }
    return { next };
  }

  /** Advance an input to its next event (null at its end). */
  private advance(input: Input): BlockCursor | null {
    while (true) {
      if (input.cursor !== null && input.reader.advance(input.cursor)) return input.cursor;
      const nextBlock = input.blocks.next();
      if (nextBlock.done) {
        input.cursor = null;
        return null;
      }
      input.cursor = nextBlock.value;
    }
  }

  async *batches(): AsyncIterable<readonly SourceItem<E>[]> {
    const heads: (BlockCursor | null)[] = this.inputs.map((input) => this.advance(input));
    let batch: SourceItem<E>[] = [];
    while (!this.stopped) {
      // The input whose next event is earliest (ties: the one listed first).
      let pick = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i];
        if (h !== null && (pick < 0 || h.timestampUs < heads[pick]!.timestampUs)) pick = i;
      }
      const input = this.inputs[pick] ?? null;
      // Rejects that sat before this event in their input (or all that remain at the end).
      for (const other of this.inputs) {
        const upTo = other === input ? heads[pick]!.seq : other.cursor === null ? Number.MAX_SAFE_INTEGER : -1;
        while (other.nextReject < other.rejects.length && other.rejects[other.nextReject].nextSeq <= upTo) {
          batch.push(this.toReject(other, other.rejects[other.nextReject++]));
        }
      }
      if (input === null) break;
      const cursor = heads[pick]!;
      const stream = input.streamMap[cursor.stream] ?? 0;
      const key = stream * 65536 + cursor.partition;
      const expected = this.next.get(key);
      if (this.kafka && expected !== undefined && cursor.position < expected) {
        if (!this.wasMerged(key, cursor.position)) {
          const topic = this.topics[stream];
          throw new TapedeckError(
            'E_MERGE_ORDER',
            `${input.path}: ${topic} partition ${cursor.partition} offset ${cursor.position} comes, by timestamp, after offset ${expected - 1} of that partition from another tape; ` +
              'merging would break the partition\'s order (the tapes overlap in time with out-of-order timestamps)',
          );
        }
        this.duplicates++;
      } else {
        if (this.kafka) this.markMerged(key, cursor.position);
        const payload = cursor.payload().slice();
        const record: SourceRecord<E> = {
          timestampUs: cursor.timestampUs,
          partition: cursor.partition,
          position: cursor.position,
          stream,
          key: cursor.key()?.slice() ?? null,
          headers: cursor.headers(),
          payload,
          event: this.codec.decode(payload),
        };
        batch.push(record);
        input.events++;
      }
      heads[pick] = this.advance(input);
      if (batch.length >= BATCH_EVENTS) {
        yield batch;
        batch = [];
      }
    }
    this.finished = !this.stopped;
    if (batch.length > 0) yield batch;
  }

  /** Offsets merged per (stream, partition), as runs [first, last]. */
  private readonly merged = new Map<number, [number, number][]>();

  private markMerged(key: number, offset: number): void {
    this.next.set(key, Math.max(this.next.get(key) ?? 0, offset + 1));
    const runs = this.merged.get(key);
    if (runs === undefined) this.merged.set(key, [[offset, offset]]);
    else if (runs[runs.length - 1][1] === offset - 1) runs[runs.length - 1][1] = offset;
    else runs.push([offset, offset]);
  }

  private wasMerged(key: number, offset: number): boolean {
    return (this.merged.get(key) ?? []).some(([lo, hi]) => offset >= lo && offset <= hi);
  }

  private toReject(input: Input, r: RejectRecord): SourceReject {
    return {
      reject: true,
      position: r.position,
      where: `${input.path} reject before event ${r.nextSeq}`,
      reasonCode: r.reasonCode,
      reason: r.reason,
      raw: r.raw,
      rawLength: r.rawLength,
    };
  }
}
