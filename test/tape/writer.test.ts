// The tape writer's background checkpoints (tape/checkpointer.ts): a recording large enough
// to start them ends with a sound, self-contained tape (the thread's connection closed before
// the writer left WAL mode) and leaves no file descriptor behind.

import { copyFileSync, existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { ArraySource } from '../../recorder/sources/array.js';
import { join as joinEvent } from '../../engine/world/events.js';
import { TapeReader } from '../../tape/reader.js';
import { TapeWriter } from '../../tape/writer.js';
import { TapeWriteError } from '../../tape/errors.js';
import { EngineShapeError } from '../../engine/errors.js';
import { backgroundCheckpointJobs } from '../../tape/checkpointer.js';
import { tapedeck, tempDir } from '../support/cli.js';

/** Descriptors this process holds open on `path` or its -wal/-shm files. */
function openOn(path: string): string[] {
  const dir = '/proc/self/fd';
  const targets: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      const target = readlinkSync(join(dir, fd));
      if (target.startsWith(path)) targets.push(target);
    } catch {
      // The descriptor closed while listing.
    }
  }
  return targets;
}

/**
 * Wait (up to 5 s) until this process holds nothing open on `path` or its -wal/-shm files: a
 * file the writer let go of (the -wal file it removed, a tape it replaced) is closed on Node's
 * thread pool, so that its space is freed there. A descriptor left open would keep that space
 * taken for as long as the process runs (it shows as "x.tape-wal (deleted)").
 */
async function expectNothingOpenOn(path: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (openOn(path).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(openOn(path)).toEqual([]);
}

/** `read` on a read-only connection to the tape at `path`, closed afterwards. */
function readTape<T>(path: string, read: (db: Database.Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** A finished tape as a closed writer leaves it: one self-contained file, out of WAL mode, sound. */
function expectSelfContained(path: string): void {
  expect(existsSync(`${path}-wal`)).toBe(false);
  const db = new Database(path, { readonly: true });
  expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
  db.close();
  expect(tapedeck(['verify', path]).status).toBe(0);
}

describe('tape writer', () => {
  it.runIf(existsSync('/proc/self/fd'))('checkpoints a large tape in the background and leaves a self-contained tape, nothing open, once closed', async () => {
    const path = join(tempDir(), 'checkpointed.tape');
    const before = backgroundCheckpointJobs();
    // About 7 MiB of blocks: the background checkpoints start at 4 MiB.
    const result = await recordTape(new WorldTrafficSource({ seed: 3, events: 300_000 }), { path, engine: worldEngine, runSeed: 3, pipeline: 'off' });
    expect(result.events).toBe(300_000);
    expect(backgroundCheckpointJobs()).toBe(before + 1);
    await expectNothingOpenOn(path);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reader = TapeReader.open(path);
    expect(reader.summary().events).toBe(300_000);
    reader.close();
    expect(tapedeck(['verify', path]).status).toBe(0);
  });

  it('a reader closes while a caller is part way through its blocks (an iterator driven by hand, left suspended)', async () => {
    const path = join(tempDir(), 'part-way.tape');
    await recordTape(new WorldTrafficSource({ seed: 3, events: 20_000 }), { path, engine: worldEngine, runSeed: 3, pipeline: 'off' });
    const reader = TapeReader.open(path);
    const blocks = reader.blocks(0)[Symbol.iterator]();
    expect(blocks.next().done).toBe(false);
    expect(() => reader.close()).not.toThrow();
    // Ended by the close: the iterator gives nothing more.
    expect(blocks.next().done).toBe(true);
  });

  it('a reader that has the tape open while the recording closes is waited for, not an error', async () => {
    const path = join(tempDir(), 'read-while-closing.tape');
    // 0: open now; 1: opened; 2: never set (the reader holds the tape 300 ms, then closes).
    const flags = new Int32Array(new SharedArrayBuffer(12));
    const reader = new Worker(
      `const { workerData } = require('node:worker_threads');
      const Database = require(workerData.sqlite);
      const flags = new Int32Array(workerData.flags);
      Atomics.wait(flags, 0, 0);
      const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
      db.prepare('SELECT count(*) FROM blocks').get();
      Atomics.store(flags, 1, 1);
      Atomics.notify(flags, 1);
      Atomics.wait(flags, 2, 0, 300);
      db.close();`,
      { eval: true, workerData: { sqlite: createRequire(import.meta.url).resolve('better-sqlite3'), flags: flags.buffer, path } },
    );
    const exited = new Promise((resolve) => reader.once('exit', resolve));
    let opened = false;
    const result = await recordTape(new WorldTrafficSource({ seed: 4, events: 20_000 }), {
      path,
      engine: worldEngine,
      runSeed: 4,
      pipeline: 'off',
      // After the first commit (the last, for so few events), the reader opens the tape and
      // holds it while the writer closes.
      onProgress: () => {
        if (opened) return;
        opened = true;
        Atomics.store(flags, 0, 1);
        Atomics.notify(flags, 0);
        expect(Atomics.wait(flags, 1, 0, 10_000)).not.toBe('timed-out');
      },
    });
    await exited;
    expect(opened).toBe(true);
    expect(result.events).toBe(20_000);
    // The writer left WAL mode once the reader was gone: one self-contained file.
    expectSelfContained(path);
  });

  it('a reader that keeps the tape open longer than the writer waits leaves it in WAL mode, complete and sound; the next writer folds it in', async () => {
    const path = join(tempDir(), 'long-reader.tape');
    await recordTape(new WorldTrafficSource({ seed: 5, events: 20_000 }), { path, engine: worldEngine, runSeed: 5, pipeline: 'off' });
    const writer = TapeWriter.openForAppend(path, { leaveWalWaitMs: 200 });
    writer.commit({});
    // A replay, say: its read transaction holds the tape as it was when it began.
    const reader = TapeReader.open(path);
    expect(reader.summary().events).toBe(20_000);
    expect(writer.close()).toBe(false);
    expect(existsSync(`${path}-wal`)).toBe(true);
    expect(reader.summary().events).toBe(20_000);
    reader.close();
    expect(tapedeck(['verify', path]).status).toBe(0);
    expect(TapeWriter.openForAppend(path).close()).toBe(true);
    expectSelfContained(path);
  });

  it('a finished tape that another process is reading cannot be opened for writing: a clear error after SQLite\'s busy wait, and the reader reads on', async () => {
    const path = join(tempDir(), 'busy.tape');
    await recordTape(new WorldTrafficSource({ seed: 6, events: 20_000 }), { path, engine: worldEngine, runSeed: 6, pipeline: 'off' });
    const reader = TapeReader.open(path);
    try {
      let failure: unknown = null;
      try {
        TapeWriter.openForAppend(path).close();
      } catch (error) {
        failure = error;
      }
      expect((failure as { code?: unknown }).code).toBe('E_TAPE_OPEN');
      expect((failure as Error).message).toMatch(/cannot open the tape for writing: another process has the tape open \(SQLite: database is locked, SQLITE_BUSY\)/);
      expect(reader.summary().events).toBe(20_000);
    } finally {
      reader.close();
    }
    expect(tapedeck(['verify', path]).status).toBe(0);
  });

  it('stores every block\'s position index in full, however many partitions a block holds (inserted up to 64 rows a statement)', async () => {
    const path = join(tempDir(), 'partitions.tape');
    // Blocks of 1,000 events over 150 partitions (three inserts a block: 64, 64, 22), then 64, then 1.
    const records = [
      ...Array.from({ length: 3_000 }, (_, i) => ({ partition: i % 150, position: i })),
      ...Array.from({ length: 1_000 }, (_, i) => ({ partition: i % 64, position: 3_000 + i })),
      ...Array.from({ length: 1_000 }, (_, i) => ({ partition: 7, position: 4_000 + i })),
    ].map((r, i) => ({ event: joinEvent(i, r.partition % 64, 1, 1), partition: r.partition, key: null, timestampUs: 1_000_000 + i }));
    await recordTape(new ArraySource(worldEngine, records, { kind: 'test' }), { path, engine: worldEngine, runSeed: 1, blockEvents: 1_000, pipeline: 'off' });
    const expected = new Map<string, { count: number; min: number; max: number }>();
    records.forEach((r, seq) => {
      const key = `${Math.floor(seq / 1_000)}/${r.partition}`;
      const span = expected.get(key);
      if (span === undefined) expected.set(key, { count: 1, min: seq, max: seq });
      else {
        span.count++;
        span.max = seq;
      }
    });
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT block_no, stream, partition, event_count, min_position, max_position FROM block_sources ORDER BY block_no, partition').all() as Record<string, number>[];
    db.close();
    expect(rows.length).toBe(expected.size);
    expect(rows.filter((r) => r.block_no === 0).length).toBe(150);
    for (const r of rows) {
      expect(r.stream).toBe(0);
      expect(expected.get(`${r.block_no}/${r.partition}`)).toEqual({ count: r.event_count, min: r.min_position, max: r.max_position });
    }
    expect(tapedeck(['verify', path]).status).toBe(0);
  });

  it('builds the index by source position when the tape is finished, not while recording (what a crash leaves is sound without it and answers the same); appending drops it and finishing builds it over every row', async () => {
    const dir = tempDir();
    const path = join(dir, 'position-index.tape');
    const crashed = join(dir, 'crashed.tape');
    const indexesOf = (file: string): string[] =>
      readTape(file, (db) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'block_sources' AND sql IS NOT NULL").all() as { name: string }[]).map((r) => r.name));
    // Where offset `position` of `partition` is: the first block whose span of it reaches that far.
    const query = 'SELECT block_no FROM block_sources WHERE stream = 0 AND partition = ? AND max_position >= ? ORDER BY max_position LIMIT 1';
    const answers = (file: string): unknown[] =>
      readTape(file, (db) => {
        const find = db.prepare(query).pluck();
        return [0, 5, 17, 63].flatMap((partition) => [0, 9_999, 20_500, 29_999, 40_000].map((position) => find.get(partition, position) ?? null));
      });
    const during: string[][] = [];
    await recordTape(new WorldTrafficSource({ seed: 5, events: 30_000 }), {
      path,
      engine: worldEngine,
      runSeed: 5,
      // 120 blocks: a commit every 32 (RELAXED_COMMIT_BLOCKS), four in all.
      blockEvents: 250,
      pipeline: 'off',
      onProgress: () => {
        during.push(indexesOf(path));
        // The file and its WAL between two commits: what kill -9 would leave.
        if (during.length === 2) for (const suffix of ['', '-wal']) copyFileSync(path + suffix, crashed + suffix);
      },
    });
    expect(during.length).toBeGreaterThan(2);
    expect(during.every((names) => names.length === 0)).toBe(true);
    expect(indexesOf(path)).toEqual(['block_sources_by_position']);
    const plan = readTape(path, (db) => (db.prepare(`EXPLAIN QUERY PLAN ${query}`).all(17, 100) as { detail: string }[]).map((r) => r.detail).join('; '));
    expect(plan).toContain('block_sources_by_position');
    // The answers, by the index and by reading the table through (the crashed copy, cut at its commit).
    const found = answers(path);
    expect(found.filter((b) => b !== null).length).toBeGreaterThan(10);
    expect(indexesOf(crashed)).toEqual([]);
    const verifyCrashed = tapedeck(['verify', crashed]);
    expect(verifyCrashed.status, verifyCrashed.stdout + verifyCrashed.stderr).toBe(0);
    // inspect tells the two apart.
    expect(tapedeck(['inspect', crashed, '--json']).json<{ positionIndex: boolean }>().positionIndex).toBe(false);
    expect(tapedeck(['inspect', crashed]).stdout).toContain('index        by source position not built yet');
    expect(tapedeck(['inspect', path, '--json']).json<{ positionIndex: boolean }>().positionIndex).toBe(true);
    expect(tapedeck(['inspect', path]).stdout).not.toContain('by source position not built');
    const cut = answers(crashed);
    const crashedBlocks = readTape(crashed, (db) => db.prepare('SELECT count(*) FROM blocks').pluck().get() as number);
    expect(crashedBlocks).toBeGreaterThan(0);
    expect(cut).toEqual(found.map((b) => (b !== null && (b as number) < crashedBlocks ? b : null)));
    // Appending (as --resume does) drops it while it writes; finishing builds it again.
    const writer = TapeWriter.openForAppend(path);
    try {
      expect(indexesOf(path)).toEqual([]);
    } finally {
      writer.close();
    }
    expect(indexesOf(path)).toEqual(['block_sources_by_position']);
    expect(answers(path)).toEqual(found);
    expectSelfContained(path);
  });

  it('a batch whose position index fails part way through an insert leaves nothing of itself on the tape (the index rows go in OR FAIL)', async () => {
    const path = join(tempDir(), 'failed-batch.tape');
    await recordTape(new WorldTrafficSource({ seed: 4, events: 20_000 }), { path, engine: worldEngine, runSeed: 4, pipeline: 'off' });
    const count = (table: string): number => readTape(path, (db) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    const before = { blocks: count('blocks'), sources: count('block_sources') };
    const db = new Database(path, { readonly: true });
    const last = db.prepare('SELECT * FROM blocks ORDER BY block_no DESC LIMIT 1').get() as Record<string, number> & { data: Buffer };
    db.close();
    // 70 rows: the first insert takes 64, the second 6, and its last row repeats a partition.
    const sources = new Float64Array(Array.from({ length: 70 }, (_, i) => [0, Math.min(i, 68), 1, i, i]).flat());
    const block = {
      blockNo: last.block_no + 1,
      firstSeq: last.first_seq + last.event_count,
      eventCount: last.event_count,
      firstTsUs: last.first_ts_us,
      minTsUs: last.min_ts_us,
      maxTsUs: last.max_ts_us,
      checksum: last.checksum,
      data: last.data,
      sources,
    };
    const writer = TapeWriter.openForAppend(path);
    try {
      expect(() => writer.commit({ blocks: [block], checkpoints: [{ nextSeq: block.firstSeq + block.eventCount, digest: '0000000000000000', nowUs: 1 }] })).toThrow();
    } finally {
      writer.close();
    }
    expect({ blocks: count('blocks'), sources: count('block_sources'), checkpoints: count('checkpoints') }).toEqual({ ...before, checkpoints: 2 });
    const verify = tapedeck(['verify', path]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  });

  it('a new tape is not damaged by -wal and -shm files left beside a tape that was deleted after a crash', async () => {
    const dir = tempDir();
    const engine = worldEngine;
    // Tape a, open for writing with frames in its WAL (as a crashed recorder leaves it).
    const a = join(dir, 'a.tape');
    await recordTape(new WorldTrafficSource({ seed: 1, events: 60_000 }), { path: a, engine, runSeed: 1, pipeline: 'off' });
    const writer = TapeWriter.openForAppend(a);
    try {
      writer.commit({ checkpoints: [{ nextSeq: 70_000, digest: '0000000000000000', nowUs: 1 }] });
      expect(statSync(`${a}-wal`).size).toBeGreaterThan(0);
      // The user deletes b.tape after a crash; its -wal and -shm stay (here: a's).
      const b = join(dir, 'b.tape');
      copyFileSync(`${a}-wal`, `${b}-wal`);
      copyFileSync(`${a}-shm`, `${b}-shm`);
      const result = await recordTape(new WorldTrafficSource({ seed: 2, events: 20_000 }), { path: b, engine, runSeed: 2, pipeline: 'off' });
      expect(result.events).toBe(20_000);
      const verify = tapedeck(['verify', b]);
      expect(verify.status, verify.stdout + verify.stderr).toBe(0);
      // The same tape as one recorded where nothing was left.
      const c = join(dir, 'c.tape');
      await recordTape(new WorldTrafficSource({ seed: 2, events: 20_000 }), { path: c, engine, runSeed: 2, pipeline: 'off' });
      expect(tapedeck(['export', b]).stdout).toBe(tapedeck(['export', c]).stdout);
    } finally {
      writer.close();
    }
  });

  it.runIf(existsSync('/proc/self/fd'))('replacing a tape (--force) leaves the new tape at the path and nothing open on the old one; a FIFO there is replaced without waiting for a writer', async () => {
    const dir = tempDir();
    const engine = worldEngine;
    const path = join(dir, 'replaced.tape');
    await recordTape(new WorldTrafficSource({ seed: 1, events: 60_000 }), { path, engine, runSeed: 1, pipeline: 'off' });
    const old = statSync(path).ino;
    const result = await recordTape(new WorldTrafficSource({ seed: 2, events: 20_000 }), { path, engine, runSeed: 2, pipeline: 'off', overwrite: true });
    expect(result.events).toBe(20_000);
    expect(statSync(path).ino).not.toBe(old);
    await expectNothingOpenOn(path);
    const fresh = join(dir, 'fresh.tape');
    await recordTape(new WorldTrafficSource({ seed: 2, events: 20_000 }), { path: fresh, engine, runSeed: 2, pipeline: 'off' });
    expect(tapedeck(['export', path]).stdout).toBe(tapedeck(['export', fresh]).stdout);
    expectSelfContained(path);

    const fifo = join(dir, 'fifo.tape');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const overFifo = await recordTape(new WorldTrafficSource({ seed: 2, events: 20_000 }), { path: fifo, engine, runSeed: 2, pipeline: 'off', overwrite: true });
    expect(overFifo.events).toBe(20_000);
    expect(statSync(fifo).isFile()).toBe(true);
    expect(tapedeck(['export', fifo]).stdout).toBe(tapedeck(['export', fresh]).stdout);
  });

  it('a tape left with a hot rollback journal (a crash while its journal mode was switched) is rolled back when read, not reported damaged', async () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    await recordTape(new WorldTrafficSource({ seed: 4, events: 50_000 }), { path: tape, engine: worldEngine, runSeed: 4, pipeline: 'off' });
    // The state a crash leaves in the middle of a write with a rollback journal: some pages of
    // the tape already overwritten (a tiny page cache spills them), their old contents in the
    // journal. Copied mid-transaction; the original is rolled back.
    const crashed = join(dir, 'crashed.tape');
    const db = new Database(tape);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
      db.pragma('cache_size = 1');
      db.exec('BEGIN IMMEDIATE');
      db.exec('UPDATE blocks SET data = zeroblob(length(data))');
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('zz', 'x'.repeat(200_000));
      expect(existsSync(`${tape}-journal`)).toBe(true);
      copyFileSync(tape, crashed);
      copyFileSync(`${tape}-journal`, `${crashed}-journal`);
      db.exec('ROLLBACK');
    } finally {
      db.close();
    }
    const verify = tapedeck(['verify', crashed]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(existsSync(`${crashed}-journal`)).toBe(false);
    expect(tapedeck(['export', crashed]).stdout).toBe(tapedeck(['export', tape]).stdout);
  });

  it('an engine object whose digest() is not a string stops the recording with an error naming it, and the tape holds nothing from it', async () => {
    const path = join(tempDir(), 'number-digest.tape');
    const records = Array.from({ length: 3_000 }, (_, i) => ({ event: joinEvent(i, i % 64, 1, 1), partition: i % 64, key: null, timestampUs: 1_000_000 + i }));
    // Passed in by a program, not loaded from a module: the recorder checks the digests it stores.
    const numeric = { ...worldEngine, digest: () => 42 } as unknown as typeof worldEngine;
    let failure: unknown = null;
    try {
      await recordTape(new ArraySource(numeric, records, { kind: 'test' }), { path, engine: numeric, runSeed: 1, checkpointEvery: 1_000, pipeline: 'off' });
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(EngineShapeError);
    expect((failure as Error).message).toMatch(/engine "world": digest\(\) returned a number \(42\); it must return a string/);
    const reader = TapeReader.open(path);
    expect(reader.summary().events).toBe(0);
    reader.close();
  });

  it('a row a column refuses is reported as this run\'s error, with SQLite\'s reason, not as another recording\'s conflict', async () => {
    const path = join(tempDir(), 'refused-row.tape');
    await recordTape(new WorldTrafficSource({ seed: 7, events: 5_000 }), { path, engine: worldEngine, runSeed: 7, pipeline: 'off' });
    const reader = TapeReader.open(path);
    const last = [...reader.blocks(0)].at(-1)!.header;
    reader.close();
    const writer = TapeWriter.openForAppend(path);
    // A block after the tape's last, with a position index row whose partition is missing (NaN
    // is bound as NULL): a NOT NULL constraint, as a bug of this run's would break it.
    const block = { blockNo: last.blockNo + 1, firstSeq: last.firstSeq + last.eventCount, eventCount: 1, firstTsUs: 1, minTsUs: 1, maxTsUs: 1, data: new Uint8Array([1, 2, 3]), checksum: 0, sources: new Float64Array([0, Number.NaN, 1, 0, 0]) };
    let failure: unknown = null;
    try {
      writer.commit({ blocks: [block] });
    } catch (error) {
      failure = error;
    }
    writer.close();
    expect(failure).toBeInstanceOf(TapeWriteError);
    expect((failure as TapeWriteError).conflict).toBe(false);
    expect((failure as Error).message).toMatch(/NOT NULL constraint failed: block_sources\.partition/);
    expect((failure as Error).message).not.toMatch(/another recording/);
    // Rolled back whole: the tape is as it was.
    expect(tapedeck(['verify', path]).status).toBe(0);
  });

  it.runIf(existsSync('/proc/self/fd'))('a close that fails while the background checkpointer runs still ends that thread\'s connection: nothing is left open on the tape, which stays sound', async () => {
    const path = join(tempDir(), 'failed-close.tape');
    // The index by source position fails when the tape is finished (a full disk, say), after
    // enough blocks for the background checkpoints to have started.
    const exec = Database.prototype.exec;
    Database.prototype.exec = function (this: Database.Database, sql: string) {
      if (sql.startsWith('CREATE INDEX IF NOT EXISTS block_sources_by_position')) throw new Database.SqliteError('database or disk is full (simulated)', 'SQLITE_FULL');
      return exec.call(this, sql);
    };
    const before = backgroundCheckpointJobs();
    let failure: unknown = null;
    try {
      await recordTape(new WorldTrafficSource({ seed: 8, events: 300_000 }), { path, engine: worldEngine, runSeed: 8, pipeline: 'off' });
    } catch (error) {
      failure = error;
    } finally {
      Database.prototype.exec = exec;
    }
    expect(backgroundCheckpointJobs()).toBe(before + 1);
    expect((failure as Error).message).toMatch(/cannot finish the tape: the disk is full \(SQLite: database or disk is full \(simulated\), SQLITE_FULL\)/);
    await expectNothingOpenOn(path);
    const reader = TapeReader.open(path);
    expect(reader.summary().events).toBe(300_000);
    reader.close();
    expect(tapedeck(['verify', path]).status).toBe(0);
  });
});
