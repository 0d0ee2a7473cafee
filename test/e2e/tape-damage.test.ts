import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { replayTape } from '../../replayer/replay.js';
import { TapeError } from '../../tape/errors.js';
import { TapeReader } from '../../tape/reader.js';
import { COLUMNS, type ColumnKind } from '../../tape/schema.js';
import { verifyTape } from '../../tape/verify.js';
import { tapedeck, tempDir, writeGeneratedNdjson } from '../support/cli.js';

/**
 * Everything a reader hands out, as JSON (the snapshots it picks before each checkpoint apart);
 * or the error it threw.
 */
function readAll(path: string): { read: string | null; snapshots: string[]; error: unknown } {
  let reader: TapeReader | null = null;
  try {
    reader = TapeReader.open(path);
    const events: string[] = [];
    for (const cursor of reader.blocks(0)) {
      while (reader.advance(cursor)) events.push(`${cursor.seq}|${cursor.timestampUs}|${cursor.partition}|${cursor.position}|${Buffer.from(cursor.payload()).toString('hex')}`);
    }
    const checkpoints = reader.checkpoints();
    const snapshots = checkpoints.flatMap((c) => {
      const s = reader!.snapshotAtOrBefore(c.nextSeq);
      return s === null ? [] : [JSON.stringify({ ...s, state: Buffer.from(s.state).toString('hex') })];
    });
    // eachReject: what export --rejects reads (rejects(), merge's, reads the same rows).
    const rejects = [...reader.eachReject()].map((r) => ({ ...r, raw: r.raw && Buffer.from(r.raw).toString('hex') }));
    return { read: JSON.stringify([reader.meta, reader.summary(), events, checkpoints, reader.sourcePositions(), rejects]), snapshots, error: null };
  } catch (error) {
    return { read: null, snapshots: [], error };
  } finally {
    reader?.close();
  }
}

function replayDigest(path: string): { digest: string | null; error: unknown } {
  try {
    return { digest: replayTape(path).finalDigest, error: null };
  } catch (error) {
    return { digest: null, error };
  }
}

describe('damaged tapes', () => {
  it('replay and inspect refuse a tape whose event block was altered, naming the block and its events', () => {
    const dir = tempDir();
    const path = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '20000', '--block-events', '1000']).status).toBe(0);
    const db = new Database(path);
    const row = db.prepare('SELECT data FROM blocks WHERE block_no = 7').get() as { data: Buffer };
    row.data[100] ^= 0x10;
    db.prepare('UPDATE blocks SET data = ? WHERE block_no = 7').run(row.data);
    db.close();
    for (const command of ['replay', 'inspect']) {
      const r = tapedeck([command, path]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/tape is damaged in block 7 \(events 7000\.\.7999\): checksum mismatch/);
      expect(r.stdout).not.toMatch(/^OK/m);
    }
  });

  it('replay refuses a tape with a block missing from the sequence', () => {
    const dir = tempDir();
    const path = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '5000', '--block-events', '1000']).status).toBe(0);
    const db = new Database(path);
    db.prepare('DELETE FROM blocks WHERE block_no = 2').run();
    db.close();
    const r = tapedeck(['replay', path]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/block 3 \(events 3000\.\.3999\): blocks jump from 1 to 3/);
  });

  it('every reader refuses a tape whose last blocks are gone, instead of showing a shorter tape', () => {
    const dir = tempDir();
    const path = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '5000', '--block-events', '1000']).status).toBe(0);
    const db = new Database(path);
    db.prepare('DELETE FROM blocks WHERE block_no >= 3').run();
    db.close();
    for (const command of [['replay'], ['export'], ['inspect'], ['record', '--resume', '--out']]) {
      const r = tapedeck([...command, path]);
      expect(r.status, command[0]).toBe(2);
      expect(r.stderr, command[0]).toMatch(/events are missing at the end: the blocks end after 3000 events, but the tape's source position and checkpoints cover 5000/);
    }
    expect(tapedeck(['verify', path]).status).toBe(1);
  });

  it('record --resume refuses a tape with a damaged or missing block before its last snapshot (exit 2 naming the block), and leaves the tape as it was', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    writeGeneratedNdjson(input, 12_000);
    const lines = readFileSync(input, 'utf8').split('\n');
    const firstPart = join(dir, 'first.ndjson');
    writeFileSync(firstPart, lines.slice(0, 8000).join('\n') + '\n');
    const damages: [string, (db: Database.Database) => void, RegExp][] = [
      [
        'a byte flipped in block 1',
        (db) => {
          const row = db.prepare('SELECT data FROM blocks WHERE block_no = 1').get() as { data: Buffer };
          row.data[100] ^= 0xff;
          db.prepare('UPDATE blocks SET data = ? WHERE block_no = 1').run(row.data);
        },
        /tape is damaged in block 1 \(events 1000\.\.1999\): checksum mismatch/,
      ],
      ['block 1 deleted', (db) => db.prepare('DELETE FROM blocks WHERE block_no = 1').run(), /tape is damaged in block 2 \(events 2000\.\.2999\): blocks jump from 0 to 2/],
    ];
    for (const [what, damage, named] of damages) {
      const tape = join(dir, 'resumed.tape');
      const r = tapedeck(['record', '--source', 'ndjson', '--input', firstPart, '--block-events', '1000', '--snapshot-every', '4000', '--out', tape, '--force']);
      expect(r.status, r.stderr).toBe(0);
      const db = new Database(tape);
      damage(db);
      db.close();
      const before = readFileSync(tape);
      // The resume rebuilds the state from the snapshot at event 8000, after the damage: it
      // reads no event before it, and must still refuse to grow a damaged tape.
      const resumed = tapedeck(['record', '--source', 'ndjson', '--input', input, '--resume', '--out', tape]);
      expect(resumed.status, what).toBe(2);
      expect(resumed.stderr, what).toMatch(named);
      expect(readFileSync(tape).equals(before), what).toBe(true);
    }
  });

  it('verify names a quarantined input that went missing from the rejects table', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const line = (p: number) => `{"timestampUs":${p},"partition":0,"key":"${p}","type":"leave","payload":{"player":${p}}}`;
    writeFileSync(input, [line(1), 'bad', line(2), 'worse', line(3)].join('\n') + '\n');
    const path = join(dir, 't.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', path, '--quarantine']).status).toBe(0);
    expect(tapedeck(['verify', path]).status).toBe(0);
    const db = new Database(path);
    db.prepare('DELETE FROM rejects WHERE reject_no = 2').run();
    db.close();
    const r = tapedeck(['verify', path, '--json']);
    expect(r.status).toBe(1);
    expect(r.json<{ problems: string[] }>().problems).toContain('the rejects table holds 1 rows, but the source positions count 2 quarantined inputs');
  });

  // A damaged byte in the schema's text (stored in the file's first page) renames a column or
  // a table; SQLite then fails the readers' fixed statements with SQLITE_ERROR ("no such
  // column"), which must come out as damage, not as an internal error.
  it.each([
    ['a column of the blocks table', 'CREATE TABLE blocks (', 'event_count', 'no such column'],
    // (its autoindex still names the old table: SQLite refuses the schema as a whole)
    ['the checkpoints table', 'CREATE TABLE ', 'checkpoints', 'malformed database schema'],
  ])('refuse a tape whose schema text was damaged: %s', (_what, after, name, sqliteMessage) => {
    const dir = tempDir();
    const path = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '5000', '--block-events', '1000']).status).toBe(0);
    const bytes = readFileSync(path);
    const table = bytes.indexOf(after === 'CREATE TABLE ' ? `CREATE TABLE ${name}` : after);
    expect(table, 'the schema text is in the file').toBeGreaterThan(0);
    const at = bytes.indexOf(name, table);
    expect(at).toBeGreaterThan(0);
    bytes[at] ^= 0x01; // "event_count" -> "dvent_count", "checkpoints" -> "bheckpoints"
    writeFileSync(path, bytes);

    const report = verifyTape(path);
    expect(report.ok).toBe(false);
    expect(report.problems.join('\n')).toContain(sqliteMessage);
    const verified = tapedeck(['verify', path]);
    expect(verified.status, verified.stderr).toBe(1);
    expect(verified.stdout).toContain(sqliteMessage);
    for (const command of ['replay', 'inspect', 'export']) {
      const r = tapedeck([command, path]);
      expect(r.status, `${command}: ${r.stderr}`).toBe(2);
      expect(r.stderr, command).toMatch(/damage|not a tapedeck tape/);
      expect(r.stderr, command).not.toMatch(/SqliteError|    at /);
    }
    const read = readAll(path);
    expect(read.error).toBeInstanceOf(TapeError);
  });
});

describe('values of the wrong type in any column', () => {
  it('are reported as damage by verify, and every reader refuses them with a TapeError, never a crash or a wrong answer', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const line = (p: number) => `{"timestampUs":${p * 1000},"partition":${p % 3},"key":"k${p}","type":"join","payload":{"player":${p},"zone":0,"x":${p},"y":1}}`;
    const lines = Array.from({ length: 40 }, (_, i) => line(i + 1));
    lines.splice(10, 0, 'not json');
    lines.splice(25, 0, '{"timestampUs":-1}');
    writeFileSync(input, lines.join('\n') + '\n');
    const original = join(dir, 'original.tape');
    const recorded = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', original, '--quarantine', '--block-events', '4', '--checkpoint-every', '4', '--snapshot-every', '8']);
    expect(recorded.status, recorded.stderr).toBe(0);
    expect(recorded.stdout).toContain('read 42 inputs: 40 accepted, 2 quarantined');
    expect(verifyTape(original).ok).toBe(true);
    const originalRead = readAll(original);
    expect(originalRead.error).toBeNull();
    const originalDigest = replayDigest(original);
    expect(originalDigest.error).toBeNull();

    // One row of each table, and the values a damaged record header can turn a column into.
    const rowOf: Record<keyof typeof COLUMNS, string> = {
      meta: "key = 'engine_name'",
      blocks: 'block_no = 2',
      block_sources: 'block_no = 2 AND partition = (SELECT MIN(partition) FROM block_sources WHERE block_no = 2)',
      checkpoints: 'next_seq = (SELECT MIN(next_seq) FROM checkpoints WHERE next_seq > 0)',
      snapshots: 'next_seq = (SELECT MIN(next_seq) FROM snapshots WHERE next_seq > 0)',
      source_positions: '1 = 1',
      rejects: 'reject_no = 1',
    };
    // A rowid (INTEGER PRIMARY KEY) column can only hold integers.
    const rowids = new Set(['blocks.block_no', 'checkpoints.next_seq', 'snapshots.next_seq', 'rejects.reject_no']);
    const damages = (kind: ColumnKind, column: string): string[] => {
      if (kind === 'text') return ['5', `CAST(${column} AS BLOB)`];
      if (kind === 'blob' || kind === 'blob?') return ["'x'", '5', `CAST(${column} AS TEXT)`];
      return ['-7', '2.5', "'x'", "X'01'", '9007199254740993', `CAST(${column} AS BLOB)`];
    };
    const copy = join(dir, 'copy.tape');
    let cases = 0;
    for (const [table, columns] of Object.entries(COLUMNS) as [keyof typeof COLUMNS, Record<string, ColumnKind>][]) {
      for (const [column, kind] of Object.entries(columns)) {
        const values = rowids.has(`${table}.${column}`) ? ['-7', '9007199254740993'] : damages(kind, column);
        for (const value of values) {
          const what = `${table}.${column} = ${value}`;
          copyFileSync(original, copy);
          const db = new Database(copy);
          db.pragma('ignore_check_constraints = ON');
          const changes = db.prepare(`UPDATE ${table} SET ${column} = ${value} WHERE ${rowOf[table]}`).run().changes;
          db.close();
          expect(changes, what).toBeGreaterThan(0);
          cases++;

          const report = verifyTape(copy);
          expect(report.ok, `${what}: verify passed`).toBe(false);
          // The reader reads every row of every table but block_sources (an index only verify
          // reads) and snapshots (it fetches the latest one before a seq, and one moved out of
          // reach leaves an earlier one to start from); it must notice damage in what it reads,
          // and never hand out an altered value.
          const read = readAll(copy);
          if (read.error === null) {
            expect(['block_sources', 'snapshots'], `${what}: the reader did not notice`).toContain(table);
            expect(read.read === originalRead.read, `${what}: the reader handed out altered values`).toBe(true);
            for (const snapshot of read.snapshots) expect(originalRead.snapshots.includes(snapshot), `${what}: the reader handed out an altered snapshot`).toBe(true);
          } else {
            expect(read.error, what).toBeInstanceOf(TapeError);
          }
          // Replay reads the metadata, the events and the checkpoints; it refuses any damage there.
          const replayed = replayDigest(copy);
          if (replayed.error === null) {
            expect(['meta', 'blocks', 'checkpoints'], `${what}: replay did not notice`).not.toContain(table);
            expect(replayed.digest, what).toBe(originalDigest.digest);
          } else {
            expect(replayed.error, what).toBeInstanceOf(TapeError);
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(150);

    // What a user sees: verify names the block and the column; replay exits 2 naming the block.
    copyFileSync(original, copy);
    const db = new Database(copy);
    db.prepare("UPDATE blocks SET event_count = 'four' WHERE block_no = 2").run();
    db.close();
    const verified = tapedeck(['verify', copy]);
    expect(verified.status).toBe(1);
    expect(verified.stdout).toContain('DAMAGED block 2 (events unknown): the block\'s row is unreadable: event_count holds the text "four", not a 32-bit unsigned integer');
    const replayed = tapedeck(['replay', copy]);
    expect(replayed.status).toBe(2);
    expect(replayed.stderr).toMatch(/tape is damaged in block 2 \(from event 8\): the block's row is unreadable: event_count holds the text "four"/);
  });
});

describe('stock sqlite3', () => {
  it('reads a tape\'s metadata and block index', () => {
    const dir = tempDir();
    const path = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '5000', '--block-events', '1000']).status).toBe(0);
    const query = (sql: string) => {
      const r = spawnSync('sqlite3', ['-readonly', path, sql], { encoding: 'utf8' });
      if (r.error !== undefined) throw new Error(`the sqlite3 command is needed for this test (Debian package sqlite3): ${r.error.message}`);
      expect(r.stderr).toBe('');
      return r.stdout.trim();
    };
    expect(query("SELECT value FROM meta WHERE key = 'engine_name'")).toBe('world');
    expect(query("SELECT value FROM meta WHERE key = 'format_version'")).toBe('1');
    expect(query('SELECT COUNT(*), SUM(event_count) FROM blocks')).toBe('5|5000');
    expect(query('PRAGMA application_id')).toBe(String(0x54415045));
  });
});

