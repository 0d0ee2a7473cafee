import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

interface Report {
  ok: boolean;
  events: number;
  finalDigest: string;
  checkpointsTotal: number;
  checkpointsVerified: number;
  mismatches: number;
  invariantViolations: number;
  updatesEmitted: number;
  workers?: number;
  eventsPerWorker?: number[];
  divergenceNote: string | null;
}

describe('replay --workers N (sharded by partition)', () => {
  const dir = tempDir();
  const tape = join(dir, 'w.tape');

  it('agrees with the single-threaded replay, for 2 and 3 workers', () => {
    expect(tapedeck(['record', '--out', tape, '--events', '120000', '--seed', '7', '--checkpoint-every', '5000']).status).toBe(0);
    const single = tapedeck(['replay', tape, '--json']);
    expect(single.status).toBe(0);
    const one = single.json<Report>();
    expect(one.checkpointsVerified).toBe(24);
    for (const workers of ['2', '3']) {
      const r = tapedeck(['replay', tape, '--workers', workers, '--json']);
      expect(r.status, r.stderr).toBe(0);
      const sharded = r.json<Report>();
      expect(sharded).toMatchObject({
        ok: true,
        events: one.events,
        finalDigest: one.finalDigest,
        checkpointsVerified: one.checkpointsVerified,
        mismatches: 0,
        invariantViolations: 0,
        updatesEmitted: one.updatesEmitted,
        workers: Number(workers),
      });
      expect(sharded.eventsPerWorker).toHaveLength(Number(workers));
      expect(sharded.eventsPerWorker!.reduce((a, b) => a + b, 0)).toBe(one.events);
      expect(Math.min(...sharded.eventsPerWorker!)).toBeGreaterThan(0);
    }
  });

  it('verifies the golden fixture on 2 workers', () => {
    const r = tapedeck(['replay', join(REPO, 'fixtures', 'golden-world.tape'), '--workers', '2']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/on 2 worker threads/);
    expect(r.stdout).toMatch(/0 mismatches, 0 invariant violations/);
  });

  it('reports the incident fixture’s invariant violation on workers too', () => {
    const r = tapedeck([
      'replay',
      join(REPO, 'fixtures', 'incident.tape'),
      '--engine',
      join(REPO, 'fixtures', 'engines', 'world-duplicate-spawn-bug.mjs'),
      '--workers',
      '2',
      '--json',
    ]);
    // The buggy build inherits world's sharding: the violation shows on the worker that holds zone 0.
    expect(r.status, r.stderr).toBe(1);
    const report = r.json<Report & { invariantViolationList: { nextSeq: number; violations: { code: string }[] }[] }>();
    const codes = report.invariantViolationList.flatMap((v) => v.violations.map((x) => x.code));
    expect(codes).toContain('treasure-owned-twice');
  });

  it('refuses an engine that does not declare sharding', () => {
    const r = tapedeck(['replay', join(REPO, 'fixtures', 'golden-world.tape'), '--engine', join(REPO, 'examples', 'counter-engine.mjs'), '--workers', '2']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/counter does not declare that its state is sharded by partition/);
  });

  it('names a tape that breaks the sharding claim, and the single-threaded replay still passes', () => {
    // Player 1 joins zone 0 on partition 0; a second join for player 1 arrives on partition 1.
    // One world ignores it (player 1 is present); a shard holding only partition 1 does not.
    const lines = [
      { timestampUs: 1_767_225_600_000_000, partition: 0, key: '1', type: 'join', payload: { player: 1, zone: 0, x: 1, y: 1 } },
      { timestampUs: 1_767_225_600_001_000, partition: 1, key: '1', type: 'join', payload: { player: 1, zone: 1, x: 2, y: 2 } },
      { timestampUs: 1_767_225_600_002_000, partition: 0, key: '1', type: 'move', payload: { player: 1, dx: 1, dy: 0 } },
    ];
    const input = join(dir, 'cross.ndjson');
    writeFileSync(input, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const crossTape = join(dir, 'cross.tape');
    const rec = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', crossTape, '--checkpoint-every', '1']);
    expect(rec.status, rec.stderr).toBe(0);
    expect(tapedeck(['replay', crossTape]).status).toBe(0);
    const r = tapedeck(['replay', crossTape, '--workers', '2', '--json']);
    expect(r.status).toBe(1);
    const report = r.json<Report>();
    expect(report.ok).toBe(false);
    expect(report.mismatches).toBeGreaterThan(0);
    expect(report.divergenceNote).toMatch(/does not respect world's sharding/);
  });

  it('refuses options a sharded replay does not support', () => {
    const r = tapedeck(['replay', tape, '--workers', '2', '--from', '10']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--workers replays the whole tape.*--from/);
    expect(tapedeck(['replay', tape, '--workers', '0']).status).toBe(2);
  });
});
