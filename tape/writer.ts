// Writes a tape. Every commit is one SQLite transaction holding a block of events together
// with the checkpoints and snapshots it completes and the source position after it, so a
// crash leaves either all of that or none of it.

import { existsSync, rmSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import type { EncodedBlock } from './block.js';
import { TapeError } from './errors.js';
import { metaToRows, SCHEMA_V1, TAPE_APPLICATION_ID, TAPE_FORMAT_VERSION, type Checkpoint, type SnapshotRecord, type TapeMeta } from './schema.js';

/**
 * relaxed: WAL with synchronous=NORMAL; a power loss may lose the last commits but never
 *          corrupts the tape (for sources that can be re-read, like a file or a generator).
 * durable: synchronous=FULL; a commit survives power loss once it returns (for stdin, Kafka).
 */
export type Durability = 'relaxed' | 'durable';

export interface SourcePositionRecord {
  readonly source: string;
  readonly nextSeq: number;
  /** JSON-serialisable position to resume the source from. */
  readonly position: unknown;
}

export interface CommitBatch {
  readonly block?: EncodedBlock;
  readonly checkpoints?: readonly Checkpoint[];
  readonly snapshots?: readonly SnapshotRecord[];
  readonly sourcePositions?: readonly SourcePositionRecord[];
}

export interface CreateTapeOptions {
  readonly durability?: Durability;
  /** Replace an existing file at the path. Without it, an existing file is an error. */
  readonly overwrite?: boolean;
}

export class TapeWriter {
  private readonly insertBlock: Database.Statement;
  private readonly insertCheckpoint: Database.Statement;
  private readonly insertSnapshot: Database.Statement;
  private readonly upsertPosition: Database.Statement;
  private readonly commitTx: (batch: CommitBatch) => void;

  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
  ) {
    this.insertBlock = db.prepare(
      'INSERT INTO blocks (block_no, first_seq, event_count, first_ts_us, min_ts_us, max_ts_us, byte_length, checksum, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertCheckpoint = db.prepare('INSERT INTO checkpoints (next_seq, digest, now_us) VALUES (?, ?, ?)');
    this.insertSnapshot = db.prepare('INSERT INTO snapshots (next_seq, digest, now_us, checksum, state) VALUES (?, ?, ?, ?, ?)');
    this.upsertPosition = db.prepare(
      'INSERT INTO source_positions (source, next_seq, position) VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET next_seq = excluded.next_seq, position = excluded.position',
    );
    this.commitTx = db.transaction((batch: CommitBatch) => {
      const b = batch.block;
      if (b !== undefined) {
        this.insertBlock.run(b.blockNo, b.firstSeq, b.eventCount, b.firstTsUs, b.minTsUs, b.maxTsUs, b.data.length, b.checksum, b.data);
      }
      for (const c of batch.checkpoints ?? []) this.insertCheckpoint.run(c.nextSeq, c.digest, c.nowUs);
      for (const s of batch.snapshots ?? []) this.insertSnapshot.run(s.nextSeq, s.digest, s.nowUs, crc32(s.state) >>> 0, s.state);
      for (const p of batch.sourcePositions ?? []) this.upsertPosition.run(p.source, p.nextSeq, JSON.stringify(p.position));
    });
  }

  static create(path: string, meta: TapeMeta, options: CreateTapeOptions = {}): TapeWriter {
    if (existsSync(path)) {
      if (!options.overwrite) throw new TapeError('E_TAPE_EXISTS', path, 'file already exists; choose another --out, or remove it first');
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
    }
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (cause) {
      throw new TapeError('E_TAPE_CREATE', path, `cannot create the tape: ${(cause as Error).message}`, { cause });
    }
    // Large pages keep event blobs in few overflow pages.
    db.pragma('page_size = 65536');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.durability === 'durable' ? 'FULL' : 'NORMAL'}`);
    db.pragma(`application_id = ${TAPE_APPLICATION_ID}`);
    db.pragma(`user_version = ${TAPE_FORMAT_VERSION}`);
    db.transaction(() => {
      db.exec(SCHEMA_V1);
      const insert = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      for (const [key, value] of metaToRows(meta)) insert.run(key, value);
    })();
    return new TapeWriter(path, db);
  }

  /** Write a block with what it completes, atomically. */
  commit(batch: CommitBatch): void {
    this.commitTx(batch);
  }

  close(): void {
    if (!this.db.open) return;
    // Fold the WAL back in and leave WAL mode, so that a finished tape is one self-contained
    // file that any sqlite3, even read-only, can open.
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.pragma('journal_mode = DELETE');
    this.db.close();
  }
}
