// A source over records in memory: how `tapedeck simulate` writes a counterexample (a stream it
// generated and faulted) as a tape that `tapedeck replay` reproduces.

import type { Engine } from '../../engine/types.js';
import type { Source, SourceItem, SourceRecord } from '../source.js';

export interface ArrayRecord<E> {
  readonly event: E;
  readonly partition: number;
  readonly key: string | null;
  readonly timestampUs: number;
}

export class ArraySource<E> implements Source<E> {
  readonly name = 'array';
  readonly live = false;
  private stopped = false;

  constructor(
    private readonly engine: Engine<unknown, E>,
    private readonly records: readonly ArrayRecord<E>[],
    readonly description: unknown,
  ) {}

  async *batches(): AsyncIterable<readonly SourceRecord<E>[]> {
    const encoder = new TextEncoder();
    const size = 4096;
    for (let start = 0; start < this.records.length && !this.stopped; start += size) {
      yield this.records.slice(start, start + size).map((r, i) => ({
        timestampUs: r.timestampUs,
        partition: r.partition,
        position: start + i,
        key: r.key === null ? null : encoder.encode(r.key),
        payload: this.engine.codec.encode(r.event),
        event: r.event,
      }));
    }
  }

  resumeAfter(record: SourceItem<E>): unknown {
    return { nextIndex: (record as SourceRecord<E>).position + 1 };
  }

  stop(): void {
    this.stopped = true;
  }
}
