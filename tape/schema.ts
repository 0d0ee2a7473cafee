// The tape's SQLite schema, format version 1. docs/tape-format.md explains every table; keep
// the two in step. A tape is recognised by application_id "TAPE" and its meta.format_version.
// Every row carries a CRC-32 (blocks over their header and data, the rest through
// rowChecksum), so that damage anywhere is detected and named rather than read.

import { crc32 } from './crc32.js';

export const TAPE_FORMAT_VERSION = 1;
/** PRAGMA application_id: the bytes "TAPE". */
export const TAPE_APPLICATION_ID = 0x54415045;

/**
 * The index of block_sources by source position ("where is offset N of partition P"), built
 * when a writer finishes the tape (TapeWriter.close) rather than kept up while it records. Its
 * keys begin with the partition, so each block's rows would land at as many places in it as
 * the block has partitions: with 64 KiB pages and 64 partitions, once the index had grown to
 * 64 leaf pages every commit rewrote 64 of them into the WAL (4 MiB for about 640 KB of
 * events), and a 20M-event recording wrote 7.4 times the tape's size. Built at the end, it
 * takes a sort (about 0.2 s for 20M events). A tape whose recording did not finish (a crash,
 * kill -9) lacks it until a resume finishes it; every query answers the same without it, by
 * reading block_sources through. A writer that appends (resume) drops it first.
 */
export const POSITION_INDEX = 'block_sources_by_position';
export const CREATE_POSITION_INDEX = `CREATE INDEX IF NOT EXISTS ${POSITION_INDEX} ON block_sources (stream, partition, max_position)`;

export const SCHEMA_V1 = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE blocks (
  block_no    INTEGER PRIMARY KEY,
  first_seq   INTEGER NOT NULL UNIQUE,
  event_count INTEGER NOT NULL CHECK (event_count > 0),
  first_ts_us INTEGER NOT NULL,
  min_ts_us   INTEGER NOT NULL,
  max_ts_us   INTEGER NOT NULL,
  byte_length INTEGER NOT NULL,
  checksum    INTEGER NOT NULL,
  data        BLOB NOT NULL
);
CREATE INDEX blocks_by_max_ts ON blocks (max_ts_us);

CREATE TABLE block_sources (
  block_no     INTEGER NOT NULL,
  stream       INTEGER NOT NULL,
  partition    INTEGER NOT NULL,
  event_count  INTEGER NOT NULL,
  min_position INTEGER NOT NULL,
  max_position INTEGER NOT NULL,
  PRIMARY KEY (block_no, stream, partition)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  next_seq INTEGER PRIMARY KEY,
  digest   TEXT NOT NULL,
  now_us   INTEGER NOT NULL,
  checksum INTEGER NOT NULL
);

CREATE TABLE snapshots (
  next_seq INTEGER PRIMARY KEY,
  digest   TEXT NOT NULL,
  now_us   INTEGER NOT NULL,
  checksum INTEGER NOT NULL,
  state    BLOB NOT NULL
);

CREATE TABLE source_positions (
  source   TEXT PRIMARY KEY,
  next_seq INTEGER NOT NULL,
  position TEXT NOT NULL,
  read     INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  checksum INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE rejects (
  reject_no   INTEGER PRIMARY KEY,
  next_seq    INTEGER NOT NULL,
  position    TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  reason      TEXT NOT NULL,
  raw_length  INTEGER NOT NULL,
  raw         BLOB,
  checksum    INTEGER NOT NULL
);
`;

/** Key of the meta row holding the CRC-32 of all the other meta rows. */
export const META_CHECKSUM_KEY = 'meta_crc32';

/**
 * CRC-32 of a row's fields: each field's text followed by a 0x1f separator, then the blob if
 * any. Used for every table but blocks (which have their own header layout, see block.ts).
 */
export function rowChecksum(fields: readonly (string | number)[], blob?: Uint8Array | null): number {
  let crc = crc32(fields.join('\x1f') + '\x1f');
  // (An empty blob leaves the running value as it is: crc32.ts sees to that for node:zlib's too.)
  if (blob !== undefined && blob !== null) crc = crc32(blob, crc);
  return crc;
}

/**
 * What a column must hold when a row is read back: `count` a safe integer >= 0, `uint32` an
 * integer in 0..2^32-1, `integer` any safe integer, `text` a string, `blob` bytes, `blob?`
 * bytes or null.
 */
export type ColumnKind = 'count' | 'uint32' | 'integer' | 'text' | 'blob' | 'blob?';

function holds(kind: ColumnKind, value: unknown): boolean {
  switch (kind) {
    case 'count':
      return Number.isSafeInteger(value) && (value as number) >= 0;
    case 'uint32':
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 0xffffffff;
    case 'integer':
      return Number.isSafeInteger(value);
    case 'text':
      return typeof value === 'string';
    case 'blob':
      return value instanceof Uint8Array;
    case 'blob?':
      return value === null || value instanceof Uint8Array;
  }
}

const KIND_NAMES: Record<ColumnKind, string> = {
  count: 'a count',
  uint32: 'a 32-bit unsigned integer',
  integer: 'an integer',
  text: 'text',
  blob: 'a blob',
  'blob?': 'a blob or null',
};

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Uint8Array) return `a blob of ${value.length} bytes`;
  if (typeof value === 'string') return `the text ${JSON.stringify(value.length > 24 ? `${value.slice(0, 24)}…` : value)}`;
  return String(value);
}

/**
 * The first column of `row` that does not hold what `kinds` says, described for a damage
 * report ("event_count holds -5, not a count"); null when every column does. The tables are
 * not STRICT, and a damaged file can hand back any type in any column, so readers check a row
 * before they compute its checksum or count with its values.
 */
export function columnProblem(row: object, kinds: Readonly<Record<string, ColumnKind>>): string | null {
  const values = row as Readonly<Record<string, unknown>>;
  for (const column in kinds) {
    const kind = kinds[column];
    if (!holds(kind, values[column])) return `${column} holds ${describeValue(values[column])}, not ${KIND_NAMES[kind]}`;
  }
  return null;
}

/** What each column of each table must hold when read back (see columnProblem). */
export const COLUMNS = {
  meta: { key: 'text', value: 'text' },
  blocks: {
    block_no: 'count',
    first_seq: 'count',
    event_count: 'uint32',
    first_ts_us: 'integer',
    min_ts_us: 'integer',
    max_ts_us: 'integer',
    byte_length: 'count',
    checksum: 'uint32',
    data: 'blob',
  },
  block_sources: { block_no: 'count', stream: 'count', partition: 'count', event_count: 'count', min_position: 'integer', max_position: 'integer' },
  checkpoints: { next_seq: 'count', digest: 'text', now_us: 'integer', checksum: 'uint32' },
  snapshots: { next_seq: 'count', digest: 'text', now_us: 'integer', checksum: 'uint32', state: 'blob' },
  source_positions: { source: 'text', next_seq: 'count', position: 'text', read: 'count', rejected: 'count', checksum: 'uint32' },
  rejects: {
    reject_no: 'count',
    next_seq: 'count',
    position: 'text',
    reason_code: 'text',
    reason: 'text',
    raw_length: 'count',
    raw: 'blob?',
    checksum: 'uint32',
  },
} as const satisfies Record<string, Record<string, ColumnKind>>;

/** CRC-32 of the meta rows other than META_CHECKSUM_KEY, in key order. */
export function metaChecksum(rows: readonly (readonly [string, string])[]): number {
  const sorted = rows.filter(([k]) => k !== META_CHECKSUM_KEY).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return rowChecksum(sorted.flat());
}

/** Metadata a tape carries, as stored in the meta table (all values are text). */
export interface TapeMeta {
  formatVersion: number;
  tapedeckVersion: string;
  engineName: string;
  engineVersion: string;
  /** JSON text of the engine options the events were recorded with. */
  engineOptions: unknown;
  codec: string;
  /** Seed of the per-event randomness engines draw from. */
  runSeed: number;
  /** What the events came from, as JSON. */
  source: unknown;
  createdAt: string;
  checkpointEvery: number;
  snapshotEvery: number;
}

const META_KEYS: Record<keyof TapeMeta, string> = {
  formatVersion: 'format_version',
  tapedeckVersion: 'tapedeck_version',
  engineName: 'engine_name',
  engineVersion: 'engine_version',
  engineOptions: 'engine_options',
  codec: 'codec',
  runSeed: 'run_seed',
  source: 'source',
  createdAt: 'created_at',
  checkpointEvery: 'checkpoint_every',
  snapshotEvery: 'snapshot_every',
};
const JSON_FIELDS = new Set<keyof TapeMeta>(['engineOptions', 'source']);
const NUMBER_FIELDS = new Set<keyof TapeMeta>(['formatVersion', 'runSeed', 'checkpointEvery', 'snapshotEvery']);

export function metaToRows(meta: TapeMeta): [string, string][] {
  return (Object.keys(META_KEYS) as (keyof TapeMeta)[]).map((field) => {
    const value = meta[field];
    return [META_KEYS[field], JSON_FIELDS.has(field) ? JSON.stringify(value ?? null) : String(value)];
  });
}

/** Parse meta rows; returns the missing keys instead of throwing, so the caller names the file. */
export function metaFromRows(rows: ReadonlyMap<string, string>): { meta: TapeMeta; missing: string[]; invalid: string[] } {
  const out: Record<string, unknown> = {};
  const missing: string[] = [];
  const invalid: string[] = [];
  for (const [field, key] of Object.entries(META_KEYS) as [keyof TapeMeta, string][]) {
    const text = rows.get(key);
    if (text === undefined) {
      missing.push(key);
      continue;
    }
    if (JSON_FIELDS.has(field)) {
      try {
        out[field] = JSON.parse(text);
      } catch {
        invalid.push(key);
      }
    } else if (NUMBER_FIELDS.has(field)) {
      const n = Number(text);
      if (!Number.isSafeInteger(n)) invalid.push(key);
      out[field] = n;
    } else {
      out[field] = text;
    }
  }
  return { meta: out as unknown as TapeMeta, missing, invalid };
}

export interface Checkpoint {
  /** The digest is of the state after applying every event with seq < nextSeq. */
  readonly nextSeq: number;
  readonly digest: string;
  readonly nowUs: number;
}

export interface SnapshotRecord extends Checkpoint {
  readonly state: Uint8Array;
}

/** A quarantined input, kept with its position and the reason it was refused. */
export interface RejectRecord {
  /** Events accepted before it: where it sits in the event sequence. */
  readonly nextSeq: number;
  /** Where it came from, e.g. {file, line, byteOffset} or {topic, partition, offset}. */
  readonly position: unknown;
  readonly reasonCode: string;
  readonly reason: string;
  /** Length of the raw input; `raw` may hold less (capped) or nothing. */
  readonly rawLength: number;
  readonly raw: Uint8Array | null;
}

export const checkpointChecksum = (c: Checkpoint): number => rowChecksum([c.nextSeq, c.digest, c.nowUs]);
export const snapshotChecksum = (s: SnapshotRecord): number => rowChecksum([s.nextSeq, s.digest, s.nowUs], s.state);
