import { join } from 'node:path';
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
});
