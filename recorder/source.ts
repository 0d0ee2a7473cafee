// What the recorder reads from. A source hands out batches of records, each already encoded
// by the engine's codec and also decoded (so the recorder can apply it for live checkpoints
// without decoding again), and says where to resume after any record it handed out.

import type { BlockEvent } from '../tape/block.js';

export interface SourceRecord<E = unknown> extends BlockEvent {
  /** The event as the engine applies it; must equal codec.decode(payload). */
  readonly event: E;
}

export interface Source<E = unknown> {
  /** Key in the tape's source_positions table, e.g. "synthetic" or "ndjson". */
  readonly name: string;
  /** JSON description stored in the tape's meta.source. */
  readonly description: unknown;
  /** Records in batches, until the source ends. */
  batches(): AsyncIterable<readonly SourceRecord<E>[]>;
  /** Where to resume to read the record after `record` (stored with the block it ends). */
  resumeAfter(record: SourceRecord<E>): unknown;
  /** Ask the source to end after the current batch (SIGINT, a stop condition). */
  stop(): void;
}
