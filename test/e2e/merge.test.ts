// `tapedeck merge`: tapes of disjoint partitions join into one that holds every event, keeps
// each partition's order, and replays with checkpoints computed over the merged stream.

import { copyFileSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { worldCodec } from '../../engine/world/codec.js';
import { MergeSource } from '../../recorder/sources/merge.js';
import { startTapedeck, tapedeck, tempDir } from '../support/cli.js';
import { waitForCommitted } from '../support/kill.js';

function byPartition(lines: string[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const l of lines) {
    const p = (JSON.parse(l) as { partition: number }).partition;
    const list = out.get(p);
    if (list === undefined) out.set(p, [l]);
    else list.push(l);
  }
  return out;
}

/** Two synthetic recordings in a new folder, seeds 1 (a) and 2 (b), of `events` events each. */
function twoTapes(events: number): { dir: string; a: string; b: string } {
  const dir = tempDir();
  const [a, b] = ['a', 'b'].map((name, i) => {
    const tape = join(dir, `${name}.tape`);
    expect(tapedeck(['record', '--out', tape, '--events', String(events), '--seed', String(i + 1)]).status).toBe(0);
    return tape;
  });
  return { dir, a, b };
}

describe('merge', () => {
  it('joins tapes of disjoint partitions: every event once, each partition in order, checkpoints recomputed', () => {
    const dir = tempDir();
    const whole = join(dir, 'whole.tape');
    expect(tapedeck(['record', '--out', whole, '--events', '40000', '--partitions', '8', '--seed', '9']).status).toBe(0);
    const lines = tapedeck(['export', whole]).stdout.trim().split('\n');
    // Two "recorders", each with half of the partitions; one also quarantined a bad line.
    const even = lines.filter((l) => (JSON.parse(l) as { partition: number }).partition % 2 === 0);
    const odd = lines.filter((l) => (JSON.parse(l) as { partition: number }).partition % 2 === 1);
    writeFileSync(join(dir, 'even.ndjson'), even.join('\n') + '\n');
    writeFileSync(join(dir, 'odd.ndjson'), [...odd.slice(0, 100), '{"broken":', ...odd.slice(100)].join('\n') + '\n');
    const a = join(dir, 'even.tape');
    const b = join(dir, 'odd.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', join(dir, 'even.ndjson'), '--out', a, '--seed', '9']).status).toBe(0);
    expect(tapedeck(['record', '--source', 'ndjson', '--input', join(dir, 'odd.ndjson'), '--out', b, '--seed', '9', '--quarantine']).status).toBe(0);

    // What its progress bar counts to: every input, events and rejects.
    const source = new MergeSource([a, b], worldCodec);
    expect(source.expectedRecords()).toBe(40000 + 1);
    source.close();

    const merged = join(dir, 'merged.tape');
    const r = tapedeck(['merge', a, b, '--out', merged, '--checkpoint-every', '5000', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, events: 40000, quarantined: 1, eventsPerInput: [even.length, odd.length], duplicatesSkipped: 0 });

    const out = tapedeck(['export', merged]).stdout.trim().split('\n');
    expect(out).toHaveLength(40000);
    expect(byPartition(out)).toEqual(byPartition(lines));
    // Timestamps never go backwards in the merged tape (both inputs were in time order).
    const ts = out.map((l) => (JSON.parse(l) as { timestampUs: number }).timestampUs);
    expect(ts.every((t, i) => i === 0 || t >= ts[i - 1])).toBe(true);
    const replay = tapedeck(['replay', merged, '--json']);
    expect(replay.status, replay.stdout).toBe(0);
    expect(replay.json()).toMatchObject({ ok: true, events: 40000, checkpointsVerified: 8 });
    expect(tapedeck(['verify', merged]).status).toBe(0);
    const inspect = tapedeck(['inspect', merged, '--json']).json<{ rejects: number }>();
    expect(inspect.rejects).toBe(1);
    expect(readFileSync(merged).length).toBeGreaterThan(0);
  });

  it('refuses tapes of different engines or sources, and a single tape (exit 2)', () => {
    const dir = tempDir();
    const a = join(dir, 'a.tape');
    expect(tapedeck(['record', '--out', a, '--events', '1000']).status).toBe(0);
    const lines = join(dir, 'a.ndjson');
    expect(tapedeck(['export', a, '--out', lines]).status).toBe(0);
    const b = join(dir, 'b.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', lines, '--out', b]).status).toBe(0);
    const mixed = tapedeck(['merge', a, b, '--out', join(dir, 'm.tape')]);
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toMatch(/recorded from a ndjson source, .* from synthetic/);
    expect(tapedeck(['merge', a, '--out', join(dir, 'n.tape')]).status).toBe(2);
  });

  it('refuses a tape given twice, under any name, and a copy of one (each event would be in the merged tape twice)', () => {
    const { dir, a, b: other } = twoTapes(1000);
    const link = join(dir, 'link.tape');
    symlinkSync(a, link);
    const out = join(dir, 'm.tape');
    const twice = tapedeck(['merge', a, other, link, '--out', out]);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toContain(`E_MERGE_SAME_TAPE]: ${a} and ${link} are the same file: merging a tape with itself would hold each of its events twice`);
    const copy = join(dir, 'copy.tape');
    copyFileSync(a, copy);
    const copied = tapedeck(['merge', copy, other, a, '--out', out]);
    expect(copied.status).toBe(2);
    expect(copied.stderr).toMatch(new RegExp(`E_MERGE_SAME_TAPE\\]: ${a} is a copy of ${copy} \\(the same recording: made at \\S+ from the same source\\)`));
    expect(existsSync(out)).toBe(false);
    // Two recordings of the same seed are not copies of each other: they merge (into two of each event).
    const again = join(dir, 'again.tape');
    expect(tapedeck(['record', '--out', again, '--events', '1000', '--seed', '1']).status).toBe(0);
    const merged = tapedeck(['merge', a, again, '--out', out, '--json']);
    expect(merged.status, merged.stderr).toBe(0);
    expect(merged.json()).toMatchObject({ events: 2000 });
  });

  it('a merge that fails part way (a damaged block in an input) leaves no --out behind; an existing --out is never touched without --force', () => {
    const { dir, a, b } = twoTapes(100_000);
    const db = new Database(b);
    db.prepare('UPDATE blocks SET checksum = checksum + 1 WHERE block_no = 20').run();
    db.close();
    const out = join(dir, 'm.tape');
    const failed = tapedeck(['merge', a, b, '--out', out]);
    expect(failed.status).toBe(2);
    expect(failed.stderr).toMatch(/E_TAPE_CORRUPT\]: .*b\.tape: tape is damaged in block 20/);
    for (const suffix of ['', '-wal', '-shm']) expect(existsSync(out + suffix)).toBe(false);
    writeFileSync(out, 'mine');
    const exists = tapedeck(['merge', a, b, '--out', out]);
    expect(exists.status).toBe(2);
    expect(exists.stderr).toContain('E_TAPE_EXISTS');
    expect(readFileSync(out, 'utf8')).toBe('mine');
  });

  it('a merge interrupted (SIGINT) or killed (kill -9) part way leaves nothing at --out; the next one writes it whole', async () => {
    const { dir, a, b } = twoTapes(600_000);
    const out = join(dir, 'm.tape');
    const building = `${out}.merging`;
    for (const signal of ['SIGINT', 'SIGKILL'] as const) {
      const run = startTapedeck(['merge', a, b, '--out', out]);
      // Stopped once part of the merged tape is written (under its other name).
      await waitForCommitted(building, 1);
      run.child.kill(signal);
      const { code } = await run.exited;
      expect(existsSync(out), signal).toBe(false);
      if (signal === 'SIGINT') {
        expect(code).toBe(2);
        expect(run.stderr()).toContain(`error [E_INTERRUPTED]: merge stopped by SIGINT before it was complete; ${out} was not written`);
        for (const suffix of ['', '-wal', '-shm']) expect(existsSync(building + suffix)).toBe(false);
      }
    }
    // What the killed merge left under the other name is replaced.
    const whole = tapedeck(['merge', a, b, '--out', out, '--json']);
    expect(whole.status, whole.stderr).toBe(0);
    expect(whole.json()).toMatchObject({ events: 1_200_000, path: out });
    expect(existsSync(building)).toBe(false);
    expect(tapedeck(['verify', out]).status).toBe(0);
  }, 120_000);
});
