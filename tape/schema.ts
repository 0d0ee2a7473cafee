// The tape's SQLite schema, format version 1. docs/tape-format.md explains every table; keep
// the two in step. A tape is recognised by application_id "TAPE" and its meta.format_version.

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

CREATE TABLE checkpoints (
  next_seq INTEGER PRIMARY KEY,
  digest   TEXT NOT NULL,
  now_us   INTEGER NOT NULL
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
  position TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE rejects (
  reject_no   INTEGER PRIMARY KEY,
  position    TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  reason      TEXT NOT NULL,
  raw         BLOB
);
`;

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
