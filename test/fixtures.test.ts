// The fixtures in fixtures/ and what fixtures/README.md promises about them.

import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir } from './support/cli.js';

const GOLDEN = join(REPO, 'fixtures', 'golden-world.tape');
const INCIDENT = join(REPO, 'fixtures', 'incident.tape');
const BUGGY = join(REPO, 'fixtures', 'engines', 'world-duplicate-spawn-bug.mjs');

describe('fixtures', () => {
  it('the golden tape verifies and replays to its pinned final digest', () => {
    expect(tapedeck(['verify', GOLDEN]).status).toBe(0);
    const r = tapedeck(['replay', GOLDEN, '--json']);
    expect(r.status).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, events: 20000, checkpointsVerified: 20, mismatches: 0, finalDigest: '1f78d63923729aee' });
  });

  it('the golden tape with one byte of an event block changed is refused by every command', () => {
    const copy = join(tempDir(), 'golden.tape');
    copyFileSync(GOLDEN, copy);
    const db = new Database(copy);
    const row = db.prepare('SELECT data FROM blocks WHERE block_no = 2').get() as { data: Buffer };
    row.data[1234] ^= 0x01;
    db.prepare('UPDATE blocks SET data = ? WHERE block_no = 2').run(row.data);
    db.close();
    for (const command of ['replay', 'export', 'inspect']) {
      const r = tapedeck([command, copy]);
      expect(r.status, command).toBe(2);
      expect(r.stderr, command).toMatch(/damaged in block 2 \(events 8192\.\.12287\): checksum mismatch/);
    }
    expect(tapedeck(['verify', copy]).status).toBe(1);
  });

  it('the incident tape verifies with the reference engine', () => {
    const r = tapedeck(['replay', INCIDENT, '--paranoid', '--json']);
    expect(r.status).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, events: 30, finalDigest: 'd1abb83961962ad0' });
  });

  it('the buggy build hands one treasure to two players after the duplicated spawn: replay names event 16 and the violations after it', () => {
    const r = tapedeck(['replay', INCIDENT, '--engine', BUGGY, '--paranoid', '--json']);
    expect(r.status).toBe(1);
    const report = r.json<{ firstDivergentSeq: number; invariantViolationList: { nextSeq: number; violations: { code: string }[] }[]; divergence: { differences: unknown[] } }>();
    expect(report.firstDivergentSeq).toBe(16);
    expect(report.divergence.differences).toContainEqual({ path: 'treasures.7.owner', expected: 1, actual: 'none' });
    // Right after the duplicated spawn (event 16) the accounting is already broken...
    const [afterSpawn, afterLoot] = report.invariantViolationList;
    expect(afterSpawn.nextSeq).toBe(17);
    expect(afterSpawn.violations.map((v) => v.code)).toEqual(expect.arrayContaining(['treasure-owner-mismatch', 'treasure-not-conserved']));
    // ... and after player 2's loot (event 17) one treasure is held by two players.
    expect(afterLoot.nextSeq).toBe(18);
    expect(afterLoot.violations.map((v) => v.code)).toEqual(expect.arrayContaining(['treasure-owned-twice', 'treasure-owner-mismatch', 'treasure-not-conserved']));
  });
});
