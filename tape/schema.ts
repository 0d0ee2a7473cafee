// The tape's SQLite schema, format version 1. docs/tape-format.md explains every table; keep
// the two in step. A tape is recognised by application_id "TAPE" and its meta.format_version.
// Every row carries a CRC-32 (blocks over their header and data, the rest through
// rowChecksum), so that damage anywhere is detected and named rather than read.

import { crc32 } from 'node:zlib';

export const TAPE_FORMAT_VERSION = 1;
/** PRAGMA application_id: the bytes "TAPE". */
export const TAPE_APPLICATION_ID = 0x54415045;

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
CREATE INDEX block_sources_by_position ON block_sources (stream, partition, max_position);

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
  // Empty blobs are skipped: zlib.crc32 on Node 20 returns 0 for a Buffer over a zero-length
  // ArrayBuffer (as better-sqlite3 returns empty blobs) instead of the running value.
  if (blob !== undefined && blob !== null && blob.length > 0) crc = crc32(blob, crc);
  return crc >>> 0;
}

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
