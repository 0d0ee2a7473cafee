// What the recorder reads from. A source hands out batches of items in input order: records
// (already encoded by the engine's codec and also decoded, so the recorder can apply them for
// live checkpoints without decoding again) and rejects (inputs it could not accept, with the
// reason). It says where to resume after any item it handed out.

import type { BlockEvent, PackedBlock } from '../tape/block.js';
import type { WorldEventRing } from './sources/world-traffic-packer.js';
import type { RedactionParts } from './redact.js';

export interface SourceRecord<E = unknown> extends BlockEvent {
  /** The event as the engine applies it; must equal codec.decode(payload). */
  readonly event: E;
}

export interface SourceReject {
  readonly reject: true;
  /** JSON position stored with the reject, e.g. {file, line, byteOffset}. */
  readonly position: unknown;
  /** Human form of the position, e.g. "events.ndjson line 17 (byte 2034)". */
  readonly where: string;
  /** Stable reason code, e.g. "invalid-json"; docs/recording.md lists them. */
  readonly reasonCode: string;
  readonly reason: string;
  /** The raw input (possibly capped at the line limit), or null when not kept. */
  readonly raw: Uint8Array | null;
  readonly rawLength: number;
}

export type SourceItem<E = unknown> = SourceRecord<E> | SourceReject;

/** What a fast conversion returns for an input that is not an event (KafkaSource.fastEvent: the reject is kept aside). */
export const REJECTED: unique symbol = Symbol('rejected');

export function isReject<E>(item: SourceItem<E>): item is SourceReject {
  return (item as SourceReject).reject === true;
}

export interface Source<E = unknown> {
  /** Key in the tape's source_positions table, e.g. "synthetic" or "ndjson". */
  readonly name: string;
  /** JSON description stored in the tape's meta.source. */
  readonly description: unknown;
  /**
   * True when the input cannot be read again (stdin, a live topic): the recorder then syncs
   * every commit to disk and commits at least every 100 ms while input trickles in.
   */
  readonly live: boolean;
  /**
   * True when what was read but not committed can be read again after a crash, from the
   * stored position, though the source is live (a Kafka topic, within its retention): a
   * commit may then hold several blocks; each is still synced, and made at least every 100 ms.
   */
  readonly rereadable?: boolean;
  /** Optional: the file the source reads (its path as given), which the tape must not be. */
  readonly inputFile?: string;
  /** Items in batches, until the source ends or stop() is called. */
  batches(): AsyncIterable<readonly SourceItem<E>[]>;
  /** Where to resume to read the item after `item` (stored with the commit it ends). */
  resumeAfter(item: SourceItem<E>): unknown;
  /** Ask the source to end after the current batch (SIGINT, a stop condition). */
  stop(): void;
  /** Optional: about how many inputs this run will read, once prepare() has run; null when it has no known end. For progress bars. */
  expectedRecords?(): number | null;
  /** Optional: connect and check before the tape is created, so that a source that cannot start leaves no tape. */
  prepare?(): Promise<void>;
  /**
   * Optional: the position as the tape stores it, called at each commit with what resumeAfter
   * (or a worker) gave. A file source adds a checksum of the bytes before it, by which --resume
   * tells that it continues the same file.
   */
  sealPosition?(position: unknown): unknown;
  /** Optional: told after the tape committed `position` (a Kafka source commits it to its group). */
  committed?(position: unknown): void;
  /**
   * Optional: how to build this same source, at the same starting point, on a worker thread
   * (recorder/pipeline.ts), or null when it cannot be (stdin, a custom transform). `large`
   * says whether the input is big enough for the worker to pay for its start.
   */
  workerSpec?(): { readonly spec: SourceSpec; readonly large: boolean } | null;
  /**
   * Optional: release what the source holds open (an NDJSON source's file; a Kafka source's
   * consumer, which first gives its group the tape's last position). recordTape calls it when
   * the recording ends, however it ends, and waits for it; the source reads nothing afterwards.
   */
  close?(): void | Promise<void>;
  /**
   * Optional fast path, for a source that rejects nothing (the synthetic generator): the next
   * block, numbered `blockNo`, of up to `limit` of the next events numbered from `seq` (fewer
   * only at the source's end or at BLOCK_MAX_BYTES of data), made without an object per event;
   * null once the source is done or stopped. The blocks are those that batches() and
   * BlockBuilder.add would give. Given with resumePosition.
   */
  packBlock?(seq: number, limit: number, blockNo: number): PackedBlock | null;
  /**
   * Optional, with packBlock: the events of the block it returned last, as numbers, into slot
   * `slot` of `ring`; returns how many, or -1 when it has none to give (the world generator
   * gives them when it packs in WebAssembly; the recorder's main thread applies them without
   * decoding the block when its engine's codec is the world codec).
   */
  packedEvents?(ring: WorldEventRing, slot: number): number;
  /** With packBlock: where to resume to read the event after the last one it packed. */
  resumePosition?(): unknown;
  /** With a workerSpec of kind 'ndjson-text': the input's text from this run's start, read once. */
  text?(): AsyncIterable<Uint8Array>;
  /** With text(): the recorder has taken every input before this offset of the text. */
  textTaken?(offset: number): void;
}

/** A source as plain data, rebuilt by recorder/source-spec.ts (on a worker thread). */
export type SourceSpec =
  | { readonly kind: 'world-traffic'; readonly options: unknown; readonly startIndex: number }
  | { readonly kind: 'engine-generated'; readonly options: unknown; readonly startIndex: number }
  | {
      readonly kind: 'ndjson';
      readonly input: string;
      /** The main thread's open descriptor of `input`: a worker reads the same file, even if the path changes meanwhile. */
      readonly fd: number;
      /** The file's size when the main thread opened it (see NdjsonSourceOptions.sizeAtOpen). */
      readonly sizeAtOpen: number;
      readonly maxLineBytes: number;
      readonly from: unknown;
      readonly keepRaw: boolean;
      readonly redaction: RedactionParts | null;
    }
  /**
   * NDJSON whose text this thread reads and the recorder cuts into segments for the parse
   * workers (Source.text: a gzip file, decompressed in order): the rest as for 'ndjson'.
   */
  | {
      readonly kind: 'ndjson-text';
      readonly input: string;
      readonly maxLineBytes: number;
      readonly from: unknown;
      readonly keepRaw: boolean;
      readonly redaction: RedactionParts | null;
    }
  /** KafkaSource options for the reader thread (recorder/kafka-worker.ts), which runs the consumer in raw mode. */
  | { readonly kind: 'kafka'; readonly options: Record<string, unknown> };
