import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tapedeck, tempDir } from '../support/cli.js';

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
    for (const command of ['replay', 'export', 'inspect']) {
      const r = tapedeck([command, path]);
      expect(r.status, command).toBe(2);
      expect(r.stderr, command).toMatch(/events are missing at the end: the blocks end after 3000 events, but the tape's source position and checkpoints cover 5000/);
    }
    expect(tapedeck(['verify', path]).status).toBe(1);
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

