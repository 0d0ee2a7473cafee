// Writes a tape. Every commit is one SQLite transaction holding blocks of events together
// with their position index, the checkpoints, snapshots and rejects it completes, and the
// source position after it, so a crash leaves either all of that or none of it.

import { close, closeSync, constants as fsConstants, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { BackgroundCheckpointer } from './checkpointer.js';
import { openPrivate, syncFolderOf, whyWriteFailed } from './private.js';
import Database from 'better-sqlite3';
import { SOURCE_FIELDS, type EncodedBlock, type PackedSources } from './block.js';
import { statTapePath, TapeError, TapeWriteError } from './errors.js';
import {
  checkpointChecksum,
  CREATE_POSITION_INDEX,
  META_CHECKSUM_KEY,
  metaChecksum,
  metaToRows,
  POSITION_INDEX,
  rowChecksum,
  SCHEMA_V1,
  snapshotChecksum,
  TAPE_APPLICATION_ID,
  TAPE_FORMAT_VERSION,
  type Checkpoint,
  type RejectRecord,
  type SnapshotRecord,
  type TapeMeta,
} from './schema.js';

/**
 * relaxed: WAL with synchronous=NORMAL; a power loss may lose the last commits but never
 *          corrupts the tape (for sources that can be re-read, like a file or a generator).
 * durable: WAL with synchronous=FULL; a commit survives power loss once it returns (for
 *          sources that cannot be re-read: stdin, Kafka).
 */
export type Durability = 'relaxed' | 'durable';

export interface SourcePositionRecord {
  readonly source: string;
  readonly nextSeq: number;
  /** JSON-serialisable position to resume the source from. */
  readonly position: unknown;
  /** Inputs read from the source so far (accepted + rejected). */
  readonly read: number;
  /** Inputs quarantined so far. */
  readonly rejected: number;
}

export interface CommitBatch {
  /** Consecutive blocks, in order. */
  readonly blocks?: readonly EncodedBlock[];
  readonly checkpoints?: readonly Checkpoint[];
  readonly snapshots?: readonly SnapshotRecord[];
  readonly rejects?: readonly RejectRecord[];
  readonly sourcePositions?: readonly SourcePositionRecord[];
}

export interface CreateTapeOptions {
  readonly durability?: Durability;
  /** Replace an existing file at the path. Without it, an existing file is an error. */
  readonly overwrite?: boolean;
}

/**
 * Bytes of blocks committed between two background checkpoints (see checkpointer.ts); the first
 * starts the thread. Measured 2026-11-29 (1M synthetic events, bench record-synthetic
 * interleaved with a build at 4 MiB, three pairs): 307-324 ms against 361-417 ms; the close's
 * final checkpoint took 6-11 ms against 18-35 ms. 512 KiB measured the same as 1 MiB.
 */
const CHECKPOINT_BYTES = 1 << 20;
/** Rows of block_sources one insert statement takes at most (6 values a row; SQLite allows 32,766). */
const SOURCE_ROWS_PER_INSERT = 64;

/** How long close() keeps trying to leave WAL mode while another connection has the tape open (see leaveWal). */
const LEAVE_WAL_WAIT_MS = 10_000;

/**
 * A descriptor of the file at `path`, whose space is then freed when it is closed (with
 * `close`, on a thread of Node's pool), not when the file is removed or replaced; null when
 * there is none, it is a symbolic link, or it cannot be read. (O_NONBLOCK: a FIFO there does
 * not wait for a writer.)
 */
function openToFree(path: string): number | null {
  try {
    return openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return null;
  }
}

/** Sync the file at `path` to disk (its data and size). */
function syncFile(path: string): void {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Why SQLite could not write the tape, in words (the disk is full, an I/O error), with SQLite's
 * own message and code; null for an error that is not SQLite's. (whyWriteFailed says the same
 * of the system's errors.)
 */
function whySqliteFailed(error: unknown): string | null {
  if (!(error instanceof Database.SqliteError)) return null;
  const code = error.code;
  const why =
    code === 'SQLITE_FULL'
      ? 'the disk is full'
      : code.startsWith('SQLITE_IOERR')
        ? 'the disk reported an I/O error'
        : code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')
          ? 'another process has the tape open'
          : code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code === 'SQLITE_PERM'
            ? 'the file cannot be written'
            : 'SQLite refused the write';
  return `${why} (SQLite: ${error.message}, ${code})`;
}

/** SQLite's error from writing the tape at `path` (`what`: "write to the tape") as a TapeWriteError; anything else as it is. */
function writeError(path: string, what: string, error: unknown): unknown {
  const why = whySqliteFailed(error);
  return why === null ? error : new TapeWriteError(path, `cannot ${what}: ${why}`, { cause: error });
}

export class TapeWriter {
  private readonly insertBlock: Database.Statement;
  /**
   * Statements inserting n rows of block_sources at once (n from 1 to SOURCE_ROWS_PER_INSERT),
   * made as needed. The array is made at its full length, not grown by its first stores: an
   * array that gains holes changes its hidden class, and the optimized insertSources, made for
   * the last tape's array, was thrown away at the next tape's ("wrong map", `--trace-deopt`, in
   * the second and third recording of a process).
   */
  private readonly insertBlockSources: (Database.Statement | undefined)[] = Array.from({ length: SOURCE_ROWS_PER_INSERT + 1 }, () => undefined);
  /** The bound values of one such insert, reused. */
  private readonly sourceValues: number[] = [];
  private readonly insertCheckpoint: Database.Statement;
  private readonly insertSnapshot: Database.Statement;
  private readonly insertReject: Database.Statement;
  private readonly upsertPosition: Database.Statement;
  private readonly commitTx: (batch: CommitBatch) => void;
  /** Bytes of blocks committed since the last background checkpoint was asked for. */
  private uncheckpointed = 0;
  /** Started once the tape has CHECKPOINT_BYTES of blocks (small tapes never need it); false: unavailable. */
  private checkpointer: BackgroundCheckpointer | null | false = null;
  /** The file this connection opened (device and inode), which `path` must still name: see stillInPlace. */
  private readonly opened: { readonly dev: number; readonly ino: number };

  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
    private readonly durability: Durability,
    /** How long close() waits for other connections to let go before leaving the tape in WAL mode. */
    private readonly leaveWalWaitMs = LEAVE_WAL_WAIT_MS,
  ) {
    const file = statSync(path);
    this.opened = { dev: file.dev, ino: file.ino };
    this.insertBlock = db.prepare(
      'INSERT INTO blocks (block_no, first_seq, event_count, first_ts_us, min_ts_us, max_ts_us, byte_length, checksum, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertCheckpoint = db.prepare('INSERT INTO checkpoints (next_seq, digest, now_us, checksum) VALUES (?, ?, ?, ?)');
    this.insertSnapshot = db.prepare('INSERT INTO snapshots (next_seq, digest, now_us, checksum, state) VALUES (?, ?, ?, ?, ?)');
    this.insertReject = db.prepare(
      'INSERT INTO rejects (next_seq, position, reason_code, reason, raw_length, raw, checksum) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.upsertPosition = db.prepare(
      'INSERT INTO source_positions (source, next_seq, position, read, rejected, checksum) VALUES (?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (source) DO UPDATE SET next_seq = excluded.next_seq, position = excluded.position, read = excluded.read, ' +
        'rejected = excluded.rejected, checksum = excluded.checksum',
    );
    this.commitTx = db.transaction((batch: CommitBatch) => {
      for (const b of batch.blocks ?? []) {
        this.insertBlock.run(b.blockNo, b.firstSeq, b.eventCount, b.firstTsUs, b.minTsUs, b.maxTsUs, b.data.length, b.checksum, b.data);
        this.insertSources(b.blockNo, b.sources);
      }
      for (const c of batch.checkpoints ?? []) this.insertCheckpoint.run(c.nextSeq, c.digest, c.nowUs, checkpointChecksum(c));
      for (const s of batch.snapshots ?? []) this.insertSnapshot.run(s.nextSeq, s.digest, s.nowUs, snapshotChecksum(s), s.state);
      for (const r of batch.rejects ?? []) {
        const position = JSON.stringify(r.position);
        const checksum = rowChecksum([r.nextSeq, position, r.reasonCode, r.reason, r.rawLength], r.raw);
        this.insertReject.run(r.nextSeq, position, r.reasonCode, r.reason, r.rawLength, r.raw, checksum);
      }
      for (const p of batch.sourcePositions ?? []) {
        const position = JSON.stringify(p.position);
        const checksum = rowChecksum([p.source, p.nextSeq, position, p.read, p.rejected]);
        this.upsertPosition.run(p.source, p.nextSeq, position, p.read, p.rejected, checksum);
      }
    });
  }

  /**
   * A block's rows of the position index, up to SOURCE_ROWS_PER_INSERT in one statement: a
   * block of 64 partitions is one insert, not 64 (a statement's run costs more than its rows).
   */
  private insertSources(blockNo: number, sources: PackedSources): void {
    const values = this.sourceValues;
    const spans = sources.length / SOURCE_FIELDS;
    for (let from = 0; from < spans; from += SOURCE_ROWS_PER_INSERT) {
      const rows = Math.min(SOURCE_ROWS_PER_INSERT, spans - from);
      let statement = this.insertBlockSources[rows];
      if (statement === undefined) {
        const placeholders = Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ');
        // OR FAIL: an insert of many rows that may abort on a constraint makes SQLite keep a
        // statement journal to undo its own rows, and with 64 KiB pages that journal spills to
        // a temporary file: 54 MB of writes for 1M events, more than the tape's own WAL. FAIL
        // keeps the rows before the failing one, but the error rolls the whole transaction
        // back (commitTx), so no part of a failed insert is ever committed.
        statement = this.db.prepare(`INSERT OR FAIL INTO block_sources (block_no, stream, partition, event_count, min_position, max_position) VALUES ${placeholders}`);
        this.insertBlockSources[rows] = statement;
      }
      values.length = rows * 6;
      for (let i = 0; i < rows; i++) {
        const s = (from + i) * SOURCE_FIELDS;
        const o = i * 6;
        values[o] = blockNo;
        values[o + 1] = sources[s];
        values[o + 2] = sources[s + 1];
        values[o + 3] = sources[s + 2];
        values[o + 4] = sources[s + 3];
        values[o + 5] = sources[s + 4];
      }
      statement.run(values);
    }
  }

  private static configure(db: Database.Database, durability: Durability | undefined): void {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'durable' ? 'FULL' : 'NORMAL'}`);
  }

  /** Remove a closed tape this process created and nothing should keep (with its -wal and -shm files). */
  static discard(path: string): void {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
  }

  /**
   * A tape may be written at `path` (--out): not a folder, nor a file that exists unless
   * `overwrite` (--force). `resumable`: whether the error offers --resume to continue it.
   */
  static checkTarget(path: string, overwrite: boolean, resumable = true): void {
    const existing = statTapePath(path, 'E_TAPE_CREATE');
    if (existing === undefined) return;
    if (existing.isDirectory()) throw new TapeError('E_TAPE_CREATE', path, 'is a folder; --out names the tape file to write, e.g. --out folder/name.tape');
    if (!overwrite) {
      throw new TapeError('E_TAPE_EXISTS', path, `file already exists; choose another --out, ${resumable ? 'add --resume to continue it, ' : ''}or --force to replace it`);
    }
  }

  static create(path: string, meta: TapeMeta, options: CreateTapeOptions = {}): TapeWriter {
    TapeWriter.checkTarget(path, options.overwrite === true);
    // A -wal, -shm or -journal file at the path is the replaced tape's (--force), or left from
    // an earlier tape deleted after a crash: SQLite would apply it to the new tape and damage
    // it. It goes first. (The tape it belonged to is replaced below.)
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(path + suffix, { force: true });
    // Build the empty tape under a temporary name and rename it into place, so that a crash
    // during creation never leaves a file at `path` that is not a tape.
    const building = `${path}.creating`;
    // (Its -wal and -shm files too: a crash after it was switched to WAL mode leaves them.)
    TapeWriter.discard(building);
    let db: Database.Database;
    try {
      // Owner-only from the start; SQLite gives its -wal and -shm files the database file's mode.
      closeSync(openPrivate(building));
      db = new Database(building);
    } catch (cause) {
      throw new TapeError('E_TAPE_CREATE', path, `cannot create the tape: ${whyWriteFailed(cause) ?? (cause as Error).message}`, { cause });
    }
    try {
      // No rollback journal and no syncs while the file is built: nothing is at `path` yet, and
      // a crash leaves only the temporary file, which the next creation removes. One sync of
      // the finished file before the rename (below) puts it on disk before `path` names it.
      // (SQLite's own journalled commits made 19 syncs of it: 10 to 30 ms of the recording's
      // start, while the generator thread waited for room.)
      db.pragma('journal_mode = OFF');
      db.pragma('synchronous = OFF');
      // Large pages keep event blobs in few overflow pages.
      db.pragma('page_size = 65536');
      db.transaction(() => {
        db.pragma(`application_id = ${TAPE_APPLICATION_ID}`);
        db.pragma(`user_version = ${TAPE_FORMAT_VERSION}`);
        db.exec(SCHEMA_V1);
        const rows = metaToRows(meta);
        const insert = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
        for (const [key, value] of rows) insert.run(key, value);
        insert.run(META_CHECKSUM_KEY, String(metaChecksum(rows)));
      })();
      // Made in WAL mode (the mode is kept in the file), so that opening it to write does not
      // switch modes in a journalled transaction of its own. Closing this connection folds
      // the WAL back in and removes it.
      db.pragma('journal_mode = WAL');
      db.close();
      syncFile(building);
    } catch (cause) {
      // Nothing is at `path` yet: the half-built file goes.
      if (db.open) db.close();
      TapeWriter.discard(building);
      const why = whyWriteFailed(cause);
      if (why !== null) throw new TapeError('E_TAPE_CREATE', path, `cannot create the tape: ${why}`, { cause });
      throw writeError(path, 'create the tape', cause);
    }
    TapeWriter.moveIntoPlace(building, path);
    try {
      // The rename itself on disk: the first commits, a durable source's included, are synced
      // to a file the folder names.
      syncFolderOf(path);
    } catch (cause) {
      throw new TapeError('E_TAPE_CREATE', path, `cannot create the tape: its folder could not be synced: ${whyWriteFailed(cause) ?? (cause as Error).message}`, { cause });
    }
    return TapeWriter.openForAppend(path, { durability: options.durability });
  }

  /**
   * Rename the new tape `building` to `path`, replacing the file there (--force) in the same
   * step, so that `path` always names either that file or the whole new tape. The replaced
   * file's space is freed on a thread of Node's pool, not on this one: freeing a large file
   * takes the file system a while (unlinking a 1 GB file here: 150 to 300 ms; the 25 MB of 1M
   * world events, about 8 ms), and the recording, whose generator thread is already running,
   * need not wait for it. An open descriptor keeps the replaced file until it is closed there.
   */
  private static moveIntoPlace(building: string, path: string): void {
    // Nothing there, a symbolic link (renamed over as it is), or a file this process may not
    // read: the rename frees it, if anything.
    const replaced = openToFree(path);
    try {
      renameSync(building, path);
    } finally {
      if (replaced !== null) close(replaced, () => undefined);
    }
  }

  /**
   * Open an existing tape to append to it (resume). The caller has read it with TapeReader
   * first and knows where it ends.
   */
  static openForAppend(path: string, options: { durability?: Durability; leaveWalWaitMs?: number } = {}): TapeWriter {
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: true });
    } catch (cause) {
      throw new TapeError('E_TAPE_OPEN', path, `cannot open the tape for writing: ${(cause as Error).message}`, { cause });
    }
    try {
      // Into WAL mode: that needs the tape to itself for a moment; a process reading a finished
      // tape (a replay) holds it shared, and SQLite gives up after its busy timeout.
      TapeWriter.configure(db, options.durability);
      // The index by source position is not kept up while recording (see POSITION_INDEX):
      // close() builds it again over every row.
      db.exec(`DROP INDEX IF EXISTS ${POSITION_INDEX}`);
      return new TapeWriter(path, db, options.durability ?? 'relaxed', options.leaveWalWaitMs);
    } catch (cause) {
      db.close();
      const why = whySqliteFailed(cause);
      if (why === null) throw cause;
      throw new TapeError('E_TAPE_OPEN', path, `cannot open the tape for writing: ${why}`, { cause });
    }
  }

  /**
   * Write blocks with what they complete, atomically. A failure (TapeWriteError: the disk is
   * full, an I/O error) leaves the tape as the last commit left it.
   */
  commit(batch: CommitBatch): void {
    this.stillInPlace();
    try {
      this.commitTx(batch);
    } catch (error) {
      if (error instanceof Database.SqliteError && (error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || error.code === 'SQLITE_CONSTRAINT_UNIQUE') && batch.blocks !== undefined && batch.blocks.length > 0) {
        // The blocks this run numbered from where the tape ended are there already: another
        // process appended to the tape since this one opened it. (Only a key taken twice says
        // so: a value a column refuses, such as a missing one, is an error of this run's.)
        throw new TapeWriteError(
          this.path,
          `cannot write to the tape: it already holds block ${batch.blocks[0].blockNo}, written by another recording of this tape that is running or ran since this one started (two recordings cannot write one tape at once; SQLite: ${error.message})`,
          { cause: error, conflict: true },
        );
      }
      throw writeError(this.path, 'write to the tape', error);
    }
    if (batch.blocks !== undefined && this.checkpointer !== false) {
      for (const b of batch.blocks) this.uncheckpointed += b.data.length;
      if (this.uncheckpointed >= CHECKPOINT_BYTES) {
        this.uncheckpointed = 0;
        this.checkpointer ??= BackgroundCheckpointer.start(this.path, this.durability === 'durable' ? 'FULL' : 'NORMAL') ?? false;
        if (this.checkpointer !== false) this.checkpointer.request();
      }
    }
  }

  /**
   * Finish the tape: fold the WAL back in and leave WAL mode, so that a finished tape is one
   * self-contained file that any sqlite3, even read-only, can open. Returns false when another
   * process kept the tape open throughout (see leaveWal): the tape is then complete and sound,
   * but stays in WAL mode, its -wal file beside it, as after a crash; every reader and
   * --resume read it as it is, and the next writer to close it folds it in. A failure
   * (TapeWriteError) still closes the connection, leaving the tape the same way: nothing
   * committed is lost.
   */
  close(): boolean {
    if (!this.db.open) return true;
    let wal: number | null = null;
    try {
      // The background checkpointer folds in the last commits while this thread builds the
      // index by source position over every block's rows (see POSITION_INDEX), so that the
      // final checkpoint below has little left to copy. Then it closes its connection, whatever
      // happened here: leaving WAL mode needs this one to be the only one, and a connection
      // left open would hold the tape's files.
      if (this.checkpointer) this.checkpointer.request();
      try {
        // The -wal file's space is freed on a thread of Node's pool once SQLite has removed it
        // (see moveIntoPlace): with the file system's online discard, truncating the 12 MB it
        // grew to in the bench's 1M-event recording took 5 ms of the recorder's thread.
        wal = openToFree(`${this.path}-wal`);
        this.db.exec(CREATE_POSITION_INDEX);
      } finally {
        if (this.checkpointer) this.checkpointer.stop();
      }
      // Everything committed is folded into the database file (a FULL checkpoint: leaving WAL
      // mode then removes the -wal file). A reader's open snapshot keeps part of the WAL from
      // being folded in: SQLite reports that in the row it returns, not as an error, and
      // leaveWal then waits for the reader.
      this.db.pragma('wal_checkpoint(FULL)');
      try {
        this.stillInPlace();
      } catch (error) {
        // A file moved away (or deleted) keeps its -wal file at the old name when its
        // connection closes: emptied, so that a file put at that name later (a tape moved
        // back, another file moved there) does not meet these commits as its own.
        this.db.pragma('wal_checkpoint(TRUNCATE)');
        throw error;
      }
      return this.leaveWal();
    } catch (error) {
      if (error instanceof TapeWriteError) throw error;
      throw writeError(this.path, 'finish the tape', error);
    } finally {
      this.db.close();
      if (wal !== null) close(wal, () => undefined);
    }
  }

  /**
   * The tape's file was moved, deleted or replaced (`rm`, `mv`, another recording with --force)
   * while this connection writes it: SQLite goes on writing the file it opened, wherever it now
   * is, and says so (SQLITE_READONLY_DBMOVED) only when the tape is finished, so a recording
   * would run to its end and then report a failure at a path that is not its tape. Checked
   * before each commit (a stat) and before finishing: the writer stops at once, saying where
   * its commits are.
   */
  private stillInPlace(): void {
    let file: { dev: number; ino: number } | undefined;
    try {
      file = statSync(this.path, { throwIfNoEntry: false });
    } catch {
      return; // (Not looked at: a folder on the way made unreadable. The writes themselves go on.)
    }
    if (file !== undefined && file.dev === this.opened.dev && file.ino === this.opened.ino) return;
    const what =
      file === undefined
        ? "the tape's file was moved or deleted while this run was writing it, so the run stops. Its commits are in the file it opened: moved, that file is the tape, sound, under its new name (--resume there continues it); deleted, they are lost"
        : "another file took the tape's place while this run was writing it (a recording with --force, or a file moved there), so the run stops; that file is left alone. This run's commits are in the file it opened: if that was moved away, it is the tape, sound, under its new name (--resume there continues it); else they are lost";
    throw new TapeWriteError(this.path, what, { conflict: true });
  }

  /**
   * Switch the tape out of WAL mode. That needs this connection to be the only one, and SQLite
   * does not wait for the others (the busy timeout does not apply here): a reader that has the
   * tape open at that moment (`inspect` or `verify` run during a recording, a test polling its
   * progress) made the switch, and so the recording, fail at its very end. Most readers hold
   * the tape for milliseconds, so the switch is tried again until they are gone, for up to
   * LEAVE_WAL_WAIT_MS; a reader that stays longer (a replay of the tape) leaves it in WAL mode
   * (false).
   */
  private leaveWal(): boolean {
    const deadline = Date.now() + this.leaveWalWaitMs;
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (let pauseMs = 1; ; pauseMs = Math.min(pauseMs * 2, 50)) {
      try {
        this.db.pragma('journal_mode = DELETE');
        return true;
      } catch (error) {
        if (!(error instanceof Database.SqliteError && error.code === 'SQLITE_BUSY')) throw error;
        if (Date.now() >= deadline) return false;
      }
      Atomics.wait(sleeper, 0, 0, pauseMs);
    }
  }
}
