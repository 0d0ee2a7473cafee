// Reads a tape. Every block is checked against its checksum before any of its events is
// handed out, and every snapshot likewise: damaged data raises TapeCorruptError naming the
// block and its sequence range, never a wrong event.

import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import { blockChecksum, BlockCursor, BlockFormatError, type BlockHeader } from './block.js';
import { statTapePath, TapeCorruptError, TapeError, unreadableWhy } from './errors.js';
import { GZIP_MAGIC, startsWithBytes } from './ndjson.js';
import {
  checkpointChecksum,
  columnProblem,
  COLUMNS,
  type ColumnKind,
  META_CHECKSUM_KEY,
  metaChecksum,
  metaFromRows,
  POSITION_INDEX,
  rowChecksum,
  snapshotChecksum,
  TAPE_APPLICATION_ID,
  TAPE_FORMAT_VERSION,
  type Checkpoint,
  type RejectRecord,
  type SnapshotRecord,
  type TapeMeta,
} from './schema.js';

/** A row of the blocks table as better-sqlite3 returns it. */
export interface BlockRow {
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
  // SQLITE_ERROR from the reader's own fixed statements ("no such column") means the tape's
  // schema is not a tape's: a damaged byte in it renamed a column or a table.
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code === 'SQLITE_IOERR_SHORT_READ' || code === 'SQLITE_ERROR';
}

/**
 * A block row's header, and what is wrong with its data (not a blob, wrong length, checksum
 * mismatch), or null when it is sound. The one judgement of a block's integrity, shared by the
 * reader (which throws on it) and verify (which reports it and goes on).
 */
export function inspectBlockRow(row: BlockRow): { header: BlockHeader; problem: string | null } {
  const header: BlockHeader = {
    blockNo: row.block_no,
    firstSeq: row.first_seq,
    eventCount: row.event_count,
    firstTsUs: row.first_ts_us,
    minTsUs: row.min_ts_us,
    maxTsUs: row.max_ts_us,
  };
  let problem = columnProblem(row, COLUMNS.blocks);
  if (problem !== null) problem = `the block's row is unreadable: ${problem}`;
  else if (row.data.length !== row.byte_length) problem = `event data is ${row.data.length} bytes, the block says ${row.byte_length}`;
  else if (blockChecksum(header, row.data) !== row.checksum) problem = 'checksum mismatch';
  return { header, problem };
}

/** Rows of the other checksummed tables as better-sqlite3 returns them (their columns: COLUMNS). */
export interface CheckpointRow {
  next_seq: number;
  digest: string;
  now_us: number;
  checksum: number;
}
export interface SnapshotRow extends CheckpointRow {
  state: Uint8Array;
}
export interface SourcePositionRow {
  source: string;
  next_seq: number;
  position: string;
  read: number;
  rejected: number;
  checksum: number;
}
/** Every reject row, in order (RejectRow's columns): what the reader and verify read. */
export const SELECT_REJECTS = 'SELECT reject_no, next_seq, position, reason_code, reason, raw_length, raw, checksum FROM rejects ORDER BY reject_no';

export interface RejectRow {
  reject_no: number;
  next_seq: number;
  position: string;
  reason_code: string;
  reason: string;
  raw_length: number;
  raw: Uint8Array | null;
  checksum: number;
}

/** A column of the wrong type (checked first: the checksum computes with them), or a checksum mismatch. */
function storedRowProblem(what: string, row: { checksum: number }, kinds: Readonly<Record<string, ColumnKind>>, checksum: () => number): string | null {
  const unreadable = columnProblem(row, kinds);
  if (unreadable !== null) return `${what} is unreadable: ${unreadable}`;
  return checksum() === row.checksum ? null : `${what} fails its checksum`;
}

/*
 * What is wrong with a row of checkpoints, snapshots, source_positions or rejects, or null when
 * it is sound: as inspectBlockRow for blocks, the one judgement, shared by the reader (which
 * throws on it) and verify (which reports it and goes on).
 */
export const checkpointRowProblem = (r: CheckpointRow): string | null =>
  storedRowProblem(`checkpoint at event ${r.next_seq}`, r, COLUMNS.checkpoints, () => checkpointChecksum({ nextSeq: r.next_seq, digest: r.digest, nowUs: r.now_us }));
export const snapshotRowProblem = (r: SnapshotRow): string | null =>
  storedRowProblem(`snapshot at event ${r.next_seq}`, r, COLUMNS.snapshots, () => snapshotChecksum({ nextSeq: r.next_seq, digest: r.digest, nowUs: r.now_us, state: r.state }));
export const sourcePositionRowProblem = (r: SourcePositionRow): string | null =>
  storedRowProblem(typeof r.source === 'string' ? `source position of "${r.source}"` : 'a source position', r, COLUMNS.source_positions, () =>
    rowChecksum([r.source, r.next_seq, r.position, r.read, r.rejected]),
  );
export const rejectRowProblem = (r: RejectRow): string | null =>
  storedRowProblem(`reject ${r.reject_no}`, r, COLUMNS.rejects, () => rowChecksum([r.next_seq, r.position, r.reason_code, r.reason, r.raw_length], r.raw));

export interface StoredSourcePosition {
  readonly source: string;
  readonly nextSeq: number;
  readonly position: unknown;
  readonly read: number;
  readonly rejected: number;
}

/**
 * A crash in the middle of one of the few writes a tape makes with a rollback journal (a
 * recorder switching a finished tape to WAL mode to resume it, or back when it closes) leaves
 * a hot journal beside the tape. SQLite rolls it back when a connection that may write opens
 * the tape; a read-only one cannot, and fails ("attempt to write a readonly database"). So a
 * reader that finds a journal lets a writable connection do that first. Where the tape cannot
 * be written (a read-only copy), the read-only open that follows reports the problem.
 */
function rollBackHotJournal(path: string): void {
  try {
    const db = new Database(path, { fileMustExist: true });
    try {
      // The first read takes a shared lock, which rolls a hot journal back (a journal that a
      // live writer holds is not hot, and is left alone).
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } finally {
      db.close();
    }
  } catch {
    // Reported by the read-only open.
  }
}

export class TapeReader {
  readonly meta: TapeMeta;

  private constructor(
    readonly path: string,
    /** The connection, for tape/verify.ts; other callers use the methods. */
    readonly db: Database.Database,
  ) {
    this.meta = this.readMeta();
  }

  /** The blocks() generators not yet ended (see close). */
  private readonly openBlocks = new Set<Generator<BlockCursor>>();

  static open(path: string): TapeReader {
    const file = statTapePath(path, 'E_TAPE_PERMISSION');
    if (file === undefined) throw new TapeError('E_TAPE_NOT_FOUND', path, 'no such file');
    if (file.isDirectory()) throw new TapeError('E_TAPE_NOT_FOUND', path, 'is a folder, not a tape file');
    // (A tape is made whole under another name and renamed into place: never empty, even
    // after a crash. Its -wal beside it could hold pages; then SQLite decides.)
    if (file.size === 0 && !existsSync(`${path}-wal`)) throw new TapeError('E_TAPE_NOT_A_TAPE', path, 'is empty (0 bytes), not a tapedeck tape');
    if (existsSync(`${path}-journal`)) rollBackHotJournal(path);
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (cause) {
      const unreadable = unreadableWhy(path);
      if (unreadable !== null) throw new TapeError('E_TAPE_PERMISSION', path, unreadable, { cause });
      throw new TapeError('E_TAPE_OPEN', path, `cannot open: ${(cause as Error).message}`, { cause });
    }
    try {
      // Every read of this reader sees the tape as one commit left it: a tape being recorded
      // (or resumed) gains blocks, checkpoints and a new source position at every commit, and
      // reads from two commits (the blocks from one, the position from the next) would not
      // add up. The read transaction holds that snapshot until close().
      db.exec('BEGIN');
      return new TapeReader(path, db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  guard<T>(what: string, read: () => T): T {
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
      throw new TapeError('E_TAPE_NOT_A_TAPE', this.path, `not a tapedeck tape (not an SQLite database: ${(cause as Error).message})${recordHint(this.path)}`, { cause });
    }
    if (applicationId !== TAPE_APPLICATION_ID) {
      throw new TapeError('E_TAPE_NOT_A_TAPE', this.path, 'not a tapedeck tape (SQLite application_id is not "TAPE")');
    }
    const rows = this.guard('the meta table', () => this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]);
    for (const row of rows) {
      const problem = columnProblem(row, COLUMNS.meta);
      if (problem !== null) throw new TapeCorruptError(this.path, `the meta table has an unreadable row: ${problem}`);
    }
    const pairs = rows.map((r) => [r.key, r.value] as const);
    const stored = rows.find((r) => r.key === META_CHECKSUM_KEY);
    if (stored === undefined || Number(stored.value) !== metaChecksum(pairs)) {
      throw new TapeCorruptError(this.path, stored === undefined ? `meta table has no ${META_CHECKSUM_KEY}` : 'meta table fails its checksum');
    }
    const { meta, missing, invalid } = metaFromRows(new Map(pairs));
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
      // TOTAL, not SUM: a damaged count must not overflow SQLite's integer sum before it is checked.
      const b = this.db
        .prepare('SELECT COUNT(*) AS blocks, TOTAL(event_count) AS events, MIN(min_ts_us) AS minTs, MAX(max_ts_us) AS maxTs FROM blocks')
        .get() as { blocks: number; events: number; minTs: number | null; maxTs: number | null };
      const problem =
        columnProblem(b, { events: 'count' }) ??
        (b.minTs === null ? null : columnProblem(b, { minTs: 'integer' })) ??
        (b.maxTs === null ? null : columnProblem(b, { maxTs: 'integer' }));
      if (problem !== null) throw new TapeCorruptError(this.path, `the blocks table does not add up: ${problem}`);
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

  /**
   * The recorded time the events `fromSeq` to `toSeq` span (µs): the latest timestamp of the
   * blocks holding them less the earliest, from the blocks' columns (an estimate to the block:
   * a range that starts or ends inside a block counts the whole block); 0 when none holds them.
   */
  timeSpanUs(fromSeq: number, toSeq: number): number {
    return this.guard('the blocks table', () => {
      const b = this.db
        .prepare('SELECT MIN(min_ts_us) AS minTs, MAX(max_ts_us) AS maxTs FROM blocks WHERE first_seq <= ? AND first_seq + event_count > ?')
        .get(toSeq, fromSeq) as { minTs: number | null; maxTs: number | null };
      if (b.minTs === null || b.maxTs === null) return 0;
      const problem = columnProblem(b, { minTs: 'integer' }) ?? columnProblem(b, { maxTs: 'integer' });
      if (problem !== null) throw new TapeCorruptError(this.path, `the blocks table does not add up: ${problem}`);
      return Math.max(0, b.maxTs - b.minTs);
    });
  }

  /** Every checkpoint, in order, each checked against its checksum. */
  checkpoints(): Checkpoint[] {
    const rows = this.guard('checkpoints', () =>
      this.db.prepare('SELECT next_seq, digest, now_us, checksum FROM checkpoints ORDER BY next_seq').all(),
    ) as CheckpointRow[];
    return rows.map((r) => {
      const problem = checkpointRowProblem(r);
      if (problem !== null) throw new TapeCorruptError(this.path, problem);
      return { nextSeq: r.next_seq, digest: r.digest, nowUs: r.now_us };
    });
  }

  /**
   * Whether the tape has its index by source position, which a writer builds when it finishes
   * the tape (see POSITION_INDEX): false for a tape whose recording did not finish.
   */
  hasPositionIndex(): boolean {
    return this.guard('the schema', () => this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(POSITION_INDEX) !== undefined);
  }

  /** Source positions to resume from, each checked against its checksum. */
  sourcePositions(): StoredSourcePosition[] {
    const rows = this.guard('source positions', () =>
      this.db.prepare('SELECT source, next_seq, position, read, rejected, checksum FROM source_positions ORDER BY source').all(),
    ) as SourcePositionRow[];
    return rows.map((r) => {
      const problem = sourcePositionRowProblem(r);
      if (problem !== null) throw new TapeCorruptError(this.path, problem);
      return { source: r.source, nextSeq: r.next_seq, position: this.parsePosition(r.position, `source position of "${r.source}"`), read: r.read, rejected: r.rejected };
    });
  }

  /** Quarantined inputs in order (at most `limit`), each checked against its checksum. */
  rejects(limit = Number.MAX_SAFE_INTEGER): (RejectRecord & { rejectNo: number })[] {
    const rows = this.guard('rejects', () =>
      this.db
        .prepare(`${SELECT_REJECTS} LIMIT ?`)
        .all(limit),
    ) as RejectRow[];
    return rows.map((r) => this.rejectRecord(r));
  }

  /**
   * Every quarantined input in order, one row at a time (a tape may hold many, each up to the
   * recording's line limit), each checked against its checksum; at the end, the rows must be as
   * many as the source positions count quarantined (TapeCorruptError if not, as verify says).
   */
  *eachReject(): Generator<RejectRecord & { rejectNo: number }> {
    const statement = this.guard('rejects', () => this.db.prepare(SELECT_REJECTS));
    const rows = this.guard('rejects', () => statement.iterate()) as IterableIterator<RejectRow>;
    let count = 0;
    try {
      while (true) {
        const step = this.guard('rejects', () => rows.next());
        if (step.done) break;
        count++;
        yield this.rejectRecord(step.value);
      }
    } finally {
      rows.return?.();
    }
    const counted = this.sourcePositions().reduce((n, p) => n + p.rejected, 0);
    if (count !== counted) throw new TapeCorruptError(this.path, `the rejects table holds ${count} rows, but the source positions count ${counted} quarantined inputs`);
  }

  private rejectRecord(r: RejectRow): RejectRecord & { rejectNo: number } {
    const problem = rejectRowProblem(r);
    if (problem !== null) throw new TapeCorruptError(this.path, problem);
    return {
      rejectNo: r.reject_no,
      nextSeq: r.next_seq,
      position: this.parsePosition(r.position, `reject ${r.reject_no}`),
      reasonCode: r.reason_code,
      reason: r.reason,
      rawLength: r.raw_length,
      raw: r.raw,
    };
  }

  /** A stored position (JSON text that passed its row's checksum); TapeCorruptError if it does not parse. */
  private parsePosition(text: string, what: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new TapeCorruptError(this.path, `${what} holds a position that is not JSON`, {}, { cause });
    }
  }

  /** The latest snapshot taken at or before `seq`, checked against its checksum; null if none. */
  snapshotAtOrBefore(seq: number): SnapshotRecord | null {
    const row = this.guard('snapshots', () =>
      this.db.prepare('SELECT next_seq, digest, now_us, checksum, state FROM snapshots WHERE next_seq <= ? ORDER BY next_seq DESC LIMIT 1').get(seq),
    ) as SnapshotRow | undefined;
    if (row === undefined) return null;
    const problem = snapshotRowProblem(row);
    if (problem !== null) throw new TapeCorruptError(this.path, problem);
    return { nextSeq: row.next_seq, digest: row.digest, nowUs: row.now_us, state: row.state };
  }

  /**
   * Verified blocks in order, starting with the block that holds `fromSeq`. Each block's
   * checksum and structure are checked before it is yielded; the cursor is positioned before
   * its first event and reused between blocks.
   */
  blocks(fromSeq = 0): Generator<BlockCursor> {
    const blocks = this.readBlocks(fromSeq, () => this.openBlocks.delete(blocks));
    this.openBlocks.add(blocks);
    return blocks;
  }

  /** blocks(), calling `ended` when it ends (read to the end, stopped early, or failed). */
  private *readBlocks(fromSeq: number, ended: () => void): Generator<BlockCursor> {
    const cursor = new BlockCursor();
    const statement = this.guard('blocks', () =>
      this.db.prepare(
        'SELECT block_no, first_seq, event_count, first_ts_us, min_ts_us, max_ts_us, byte_length, checksum, data FROM blocks ' +
          'WHERE block_no >= COALESCE((SELECT MAX(block_no) FROM blocks WHERE first_seq <= ?), 0) ORDER BY block_no',
      ),
    );
    let expectedBlockNo = -1;
    let expectedSeq = -1;
    const rows = this.guard('blocks', () => statement.iterate(fromSeq)) as IterableIterator<BlockRow>;
    try {
      while (true) {
        const step = this.guard('blocks', () => rows.next());
        if (step.done) {
          this.checkEnd(expectedSeq);
          return;
        }
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
      ended();
    }
  }

  /**
   * After the last block: the tape must hold as many events as its source position and its
   * checkpoints say, or blocks at the end are missing (a reader would otherwise see a shorter
   * tape without an error).
   */
  private checkEnd(endSeq: number): void {
    if (endSeq < 0) endSeq = 0;
    const positions = this.sourcePositions();
    const lastCheckpoint = this.guard('checkpoints', () => this.db.prepare('SELECT MAX(next_seq) AS n FROM checkpoints').get()) as { n: number | null };
    const expected = Math.max(lastCheckpoint.n ?? 0, ...positions.map((p) => p.nextSeq));
    if (endSeq < expected) {
      throw new TapeCorruptError(this.path, `events are missing at the end: the blocks end after ${endSeq} events, but the tape's source position and checkpoints cover ${expected}`);
    }
  }

  /** Check one block row and return its header; throws TapeCorruptError naming it. */
  checkBlock(row: BlockRow, expectedBlockNo: number, expectedSeq: number): BlockHeader {
    const number = (value: unknown): number | undefined => (Number.isSafeInteger(value) ? (value as number) : undefined);
    const where = { blockNo: number(row.block_no), firstSeq: number(row.first_seq), eventCount: number(row.event_count) };
    const { header, problem } = inspectBlockRow(row);
    if (problem !== null) throw new TapeCorruptError(this.path, problem, where);
    if (expectedBlockNo >= 0 && row.block_no !== expectedBlockNo) {
      throw new TapeCorruptError(this.path, `blocks jump from ${expectedBlockNo - 1} to ${row.block_no}`, where);
    }
    if (expectedSeq >= 0 && row.first_seq !== expectedSeq) {
      throw new TapeCorruptError(this.path, `sequence gap: expected the block to start at event ${expectedSeq}`, where);
    }
    return header;
  }

  /** The first event, in tape order, whose timestamp is at or after `timestampUs`; null if none. */
  firstSeqAtOrAfter(timestampUs: number): number | null {
    const row = this.guard('blocks', () =>
      this.db.prepare('SELECT first_seq FROM blocks WHERE max_ts_us >= ? ORDER BY block_no LIMIT 1').get(timestampUs),
    ) as { first_seq: number } | undefined;
    if (row === undefined) return null;
    for (const cursor of this.blocks(row.first_seq)) {
      while (this.advance(cursor)) if (cursor.timestampUs >= timestampUs) return cursor.seq;
    }
    return null;
  }

  /** The last event, in tape order, whose timestamp is at or before `timestampUs`; null if none. */
  lastSeqAtOrBefore(timestampUs: number): number | null {
    const row = this.guard('blocks', () =>
      this.db.prepare('SELECT first_seq FROM blocks WHERE min_ts_us <= ? ORDER BY block_no DESC LIMIT 1').get(timestampUs),
    ) as { first_seq: number } | undefined;
    if (row === undefined) return null;
    let last: number | null = null;
    for (const cursor of this.blocks(row.first_seq)) {
      while (this.advance(cursor)) if (cursor.timestampUs <= timestampUs) last = cursor.seq;
      break;
    }
    return last;
  }

  /**
   * Move the cursor to the next event of its block (false at the end). A block that does not
   * parse becomes a TapeCorruptError naming it, never a half-read event.
   */
  advance(cursor: BlockCursor): boolean {
    try {
      return cursor.next();
    } catch (error) {
      throw this.blockError(cursor, error);
    }
  }

  /** Wrap a failure while decoding the block the cursor is in, naming the block. */
  blockError(cursor: BlockCursor, error: unknown): TapeCorruptError {
    const message = error instanceof BlockFormatError ? error.message : `cannot decode event ${cursor.seq + 1}: ${(error as Error).message}`;
    return new TapeCorruptError(this.path, message, cursor.header, { cause: error });
  }

  close(): void {
    // A caller that left blocks() part way without ending it (its generator suspended, never
    // returned) still holds a statement, under which the connection cannot close.
    for (const blocks of [...this.openBlocks]) blocks.return(undefined);
    this.openBlocks.clear();
    if (this.db.open) this.db.close();
  }
}

/**
 * For a file given as a tape that is not one: when it looks like what `record` reads (NDJSON
 * event lines, or a gzip file of them), how to make a tape of it; else ''.
 */
function recordHint(path: string): string {
  const bytes = fileHead(path, 16);
  if (bytes === null) return '';
  const quoted = /^[\w./@%+=:,-]+$/.test(path) ? path : `'${path.replaceAll("'", "'\\''")}'`;
  const record = `tapedeck record --source ndjson --input ${quoted} --out events.tape`;
  if (startsWithBytes(bytes, GZIP_MAGIC)) return `; it is gzip-compressed, perhaps NDJSON event lines: to make a tape of them, ${record}`;
  const text = bytes.toString('latin1').replace(/^\ufeff|^\xef\xbb\xbf/, '').trimStart();
  if (text.startsWith('{"')) return `; it looks like NDJSON event lines: to make a tape of them, ${record}`;
  return '';
}

/**
 * Whether the file at `path` starts as a tape does: an SQLite database whose application_id is
 * "TAPE" (its header's bytes 68 to 71). A quick look, not a check: a damaged tape may pass.
 * False when it cannot be read.
 */
export function looksLikeTape(path: string): boolean {
  const head = fileHead(path, 72);
  return head !== null && head.length === 72 && head.toString('latin1', 0, 16) === 'SQLite format 3\0' && head.readUInt32BE(68) === TAPE_APPLICATION_ID;
}

/** The first `length` bytes of the file at `path` (fewer if it is shorter); null when it cannot be read. */
function fileHead(path: string, length: number): Buffer | null {
  const head = Buffer.alloc(length);
  try {
    const fd = openSync(path, 'r');
    try {
      return head.subarray(0, readSync(fd, head, 0, length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}
