// Reads a tape. Every block is checked against its checksum before any of its events is
// handed out, and every snapshot likewise: damaged data raises TapeCorruptError naming the
// block and its sequence range, never a wrong event.

import { existsSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { blockChecksum, BlockCursor, BlockFormatError, type BlockHeader } from './block.js';
import { TapeCorruptError, TapeError } from './errors.js';
import { metaFromRows, TAPE_APPLICATION_ID, TAPE_FORMAT_VERSION, type Checkpoint, type SnapshotRecord, type TapeMeta } from './schema.js';

interface BlockRow {
  block_no: number;
  first_seq: number;
  event_count: number;
  first_ts_us: number;
  min_ts_us: number;
  max_ts_us: number;
  byte_length: number;
  checksum: number;
  data: Uint8Array;
}

export interface TapeSummary {
  readonly blocks: number;
  readonly events: number;
  readonly minTsUs: number | null;
  readonly maxTsUs: number | null;
  readonly checkpoints: number;
  readonly snapshots: number;
  readonly rejects: number;
}

function isSqliteCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code === 'SQLITE_IOERR_SHORT_READ';
}

export class TapeReader {
  readonly meta: TapeMeta;

  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
  ) {
    this.meta = this.readMeta();
  }

  static open(path: string): TapeReader {
    if (!existsSync(path)) throw new TapeError('E_TAPE_NOT_FOUND', path, 'no such file');
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (cause) {
      throw new TapeError('E_TAPE_OPEN', path, `cannot open: ${(cause as Error).message}`, { cause });
    }
    try {
      return new TapeReader(path, db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private guard<T>(what: string, read: () => T): T {
    try {
      return read();
    } catch (error) {
      if (error instanceof TapeError) throw error;
      if (isSqliteCorruption(error)) throw new TapeCorruptError(this.path, `SQLite reports damage while reading ${what}: ${(error as Error).message}`, {}, { cause: error });
      throw error;
    }
  }

  private readMeta(): TapeMeta {
    let applicationId: number;
    try {
      applicationId = this.db.pragma('application_id', { simple: true }) as number;
    } catch (cause) {
      throw new TapeError('E_TAPE_NOT_A_TAPE', this.path, `not a tapedeck tape (not an SQLite database: ${(cause as Error).message})`, { cause });
    }
    if (applicationId !== TAPE_APPLICATION_ID) {
      throw new TapeError('E_TAPE_NOT_A_TAPE', this.path, 'not a tapedeck tape (SQLite application_id is not "TAPE")');
    }
    const rows = this.guard('the meta table', () => this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]);
    const { meta, missing, invalid } = metaFromRows(new Map(rows.map((r) => [r.key, r.value])));
    if (missing.length > 0 || invalid.length > 0) {
      const parts = [missing.length > 0 ? `missing ${missing.join(', ')}` : '', invalid.length > 0 ? `unreadable ${invalid.join(', ')}` : ''];
      throw new TapeCorruptError(this.path, `meta table is incomplete: ${parts.filter(Boolean).join('; ')}`);
    }
    if (meta.formatVersion > TAPE_FORMAT_VERSION) {
      throw new TapeError('E_TAPE_VERSION', this.path, `tape format ${meta.formatVersion} is newer than this tapedeck reads (${TAPE_FORMAT_VERSION}); upgrade tapedeck`);
    }
    return meta;
  }

  summary(): TapeSummary {
    return this.guard('the tape summary', () => {
      const b = this.db
        .prepare('SELECT COUNT(*) AS blocks, COALESCE(SUM(event_count), 0) AS events, MIN(min_ts_us) AS minTs, MAX(max_ts_us) AS maxTs FROM blocks')
        .get() as { blocks: number; events: number; minTs: number | null; maxTs: number | null };
      const count = (table: string): number => (this.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
      return {
        blocks: b.blocks,
        events: b.events,
        minTsUs: b.minTs,
        maxTsUs: b.maxTs,
        checkpoints: count('checkpoints'),
        snapshots: count('snapshots'),
        rejects: count('rejects'),
      };
    });
  }

  checkpoints(): Checkpoint[] {
    return this.guard('checkpoints', () =>
      (this.db.prepare('SELECT next_seq AS nextSeq, digest, now_us AS nowUs FROM checkpoints ORDER BY next_seq').all() as Checkpoint[]),
    );
  }

  /** Source positions to resume from, by source name. */
  sourcePositions(): { source: string; nextSeq: number; position: unknown }[] {
    return this.guard('source positions', () =>
      (this.db.prepare('SELECT source, next_seq AS nextSeq, position FROM source_positions').all() as { source: string; nextSeq: number; position: string }[]).map(
        (r) => ({ ...r, position: JSON.parse(r.position) as unknown }),
      ),
    );
  }

  /** The latest snapshot taken at or before `seq`, checked against its checksum; null if none. */
  snapshotAtOrBefore(seq: number): SnapshotRecord | null {
    const row = this.guard('snapshots', () =>
      this.db.prepare('SELECT next_seq, digest, now_us, checksum, state FROM snapshots WHERE next_seq <= ? ORDER BY next_seq DESC LIMIT 1').get(seq),
    ) as { next_seq: number; digest: string; now_us: number; checksum: number; state: Uint8Array } | undefined;
    if (row === undefined) return null;
    if (crc32(row.state) >>> 0 !== row.checksum) {
      throw new TapeCorruptError(this.path, `snapshot at event ${row.next_seq} fails its checksum`);
    }
    return { nextSeq: row.next_seq, digest: row.digest, nowUs: row.now_us, state: row.state };
  }

  /**
   * Verified blocks in order, starting with the block that holds `fromSeq`. Each block's
   * checksum and structure are checked before it is yielded; the cursor is positioned before
   * its first event and reused between blocks.
   */
  *blocks(fromSeq = 0): Generator<BlockCursor> {
    const cursor = new BlockCursor();
    const statement = this.db.prepare(
      'SELECT block_no, first_seq, event_count, first_ts_us, min_ts_us, max_ts_us, byte_length, checksum, data FROM blocks ' +
        'WHERE block_no >= COALESCE((SELECT MAX(block_no) FROM blocks WHERE first_seq <= ?), 0) ORDER BY block_no',
    );
    let expectedBlockNo = -1;
    let expectedSeq = -1;
    const rows = this.guard('blocks', () => statement.iterate(fromSeq)) as IterableIterator<BlockRow>;
    try {
      while (true) {
        const step = this.guard('blocks', () => rows.next());
        if (step.done) return;
        const row = step.value;
        const header = this.checkBlock(row, expectedBlockNo, expectedSeq);
        expectedBlockNo = row.block_no + 1;
        expectedSeq = row.first_seq + row.event_count;
        yield cursor.reset(header, row.data);
      }
    } finally {
      // Release the statement even when the caller stops early or a check throws, so that
      // the connection can close.
      rows.return?.();
    }
  }

  /** Check one block row and return its header; throws TapeCorruptError naming it. */
  private checkBlock(row: BlockRow, expectedBlockNo: number, expectedSeq: number): BlockHeader {
    const where = { blockNo: row.block_no, firstSeq: row.first_seq, eventCount: row.event_count };
    const header: BlockHeader = {
      blockNo: row.block_no,
      firstSeq: row.first_seq,
      eventCount: row.event_count,
      firstTsUs: row.first_ts_us,
      minTsUs: row.min_ts_us,
      maxTsUs: row.max_ts_us,
    };
    if (!(row.data instanceof Uint8Array)) throw new TapeCorruptError(this.path, 'event data is not a blob', where);
    if (row.data.length !== row.byte_length) {
      throw new TapeCorruptError(this.path, `event data is ${row.data.length} bytes, the block says ${row.byte_length}`, where);
    }
    if (blockChecksum(header, row.data) !== row.checksum) throw new TapeCorruptError(this.path, 'checksum mismatch', where);
    if (expectedBlockNo >= 0 && row.block_no !== expectedBlockNo) {
      throw new TapeCorruptError(this.path, `blocks jump from ${expectedBlockNo - 1} to ${row.block_no}`, where);
    }
    if (expectedSeq >= 0 && row.first_seq !== expectedSeq) {
      throw new TapeCorruptError(this.path, `sequence gap: expected the block to start at event ${expectedSeq}`, where);
    }
    return header;
  }

  /** Wrap a failure while decoding the block the cursor is in, naming the block. */
  blockError(cursor: BlockCursor, error: unknown): TapeCorruptError {
    const message = error instanceof BlockFormatError ? error.message : `cannot decode event ${cursor.seq + 1}: ${(error as Error).message}`;
    return new TapeCorruptError(this.path, message, cursor.header, { cause: error });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
