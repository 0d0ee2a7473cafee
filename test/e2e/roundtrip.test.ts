// Record synthetic, export to NDJSON, record that NDJSON: the two tapes hold the same events
// and the same digests. Plus inspect's report and a clean stop on SIGINT.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TapeReader } from '../../tape/reader.js';
import { startTapedeck, tapedeck, tempDir } from '../support/cli.js';
import { waitForCommitted } from '../support/kill.js';

describe('round trip through NDJSON', () => {
  it('synthetic -> export -> record ndjson gives the same events and the same digests', () => {
    const dir = tempDir();
    const a = join(dir, 'a.tape');
    const b = join(dir, 'b.tape');
    const lines = join(dir, 'a.ndjson');
    expect(tapedeck(['record', '--out', a, '--events', '120000', '--seed', '5', '--profile', 'hot']).status).toBe(0);
    expect(tapedeck(['export', a, '--out', lines]).status).toBe(0);
    // --seed gives the NDJSON recording the same run seed (the randomness engines draw from).
    const rec = tapedeck(['record', '--source', 'ndjson', '--input', lines, '--out', b, '--seed', '5', '--json']);
    expect(rec.status, rec.stderr).toBe(0);
    expect(rec.json()).toMatchObject({ read: 120000, accepted: 120000, quarantined: 0 });
    expect(tapedeck(['export', b]).stdout).toBe(tapedeck(['export', a]).stdout);
    const ra = TapeReader.open(a);
    const rb = TapeReader.open(b);
    expect(rb.checkpoints()).toEqual(ra.checkpoints());
    expect(rb.meta.runSeed).toBe(ra.meta.runSeed);
    ra.close();
    rb.close();
  });

  it('export --from/--to writes exactly that range, inclusive', () => {
    const dir = tempDir();
    const a = join(dir, 'a.tape');
    expect(tapedeck(['record', '--out', a, '--events', '20000', '--block-events', '1000']).status).toBe(0);
    const all = tapedeck(['export', a]).stdout.trim().split('\n');
    const part = tapedeck(['export', a, '--from', '4990', '--to', '6010']).stdout.trim().split('\n');
    expect(part).toEqual(all.slice(4990, 6011));
    // A range that ends past the tape stops at its end; one that starts there is empty; one
    // that starts beyond it is refused, as replay refuses it.
    expect(tapedeck(['export', a, '--from', '19998', '--to', '50000']).stdout.trim().split('\n')).toEqual(all.slice(19998));
    const empty = tapedeck(['export', a, '--from', '20000']);
    expect(empty.status).toBe(0);
    expect(empty.stdout).toBe('');
    const past = tapedeck(['export', a, '--from', '20001']);
    expect(past.status).toBe(2);
    expect(past.stderr).toMatch(/--from 20001 is past the end of the tape \(20000 events\)/);
    // With --out, stdout says what was written and where, and where the range stopped short.
    const out = join(dir, 'tail.ndjson');
    const tail = tapedeck(['export', a, '--from', '19998', '--to', '50000', '--out', out]);
    expect(tail.status, tail.stderr).toBe(0);
    expect(tail.stdout).toBe(`exported 2 events of ${a} (events 19,998 to 19,999; --to 50,000 is past the tape's last event, 19,999) to ${out}\n`);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toEqual(all.slice(19998));
    expect(tapedeck(['export', a, '--from', '4990', '--to', '4990', '--out', out]).stdout).toBe(`exported 1 event of ${a} (event 4,990) to ${out}\n`);
    expect(readFileSync(out, 'utf8')).toBe(`${all[4990]}\n`);
    expect(tapedeck(['export', a, '--from', '20000', '--out', out]).stdout).toBe(`exported 0 events of ${a} to ${out}\n`);
    expect(readFileSync(out, 'utf8')).toBe('');
  });
});

describe('inspect', () => {
  it('reports format, counts, engine, time range and per-partition counts', () => {
    const dir = tempDir();
    const a = join(dir, 'a.tape');
    expect(tapedeck(['record', '--out', a, '--events', '30000', '--partitions', '8']).status).toBe(0);
    const r = tapedeck(['inspect', a, '--json']);
    expect(r.status).toBe(0);
    const report = r.json<{ formatVersion: number; events: number; checkpoints: number; snapshots: number; rejects: number; engine: { name: string }; timeRange: { firstUs: number; lastUs: number }; partitions: Record<string, number> }>();
    expect(report).toMatchObject({ formatVersion: 1, events: 30000, checkpoints: 3, snapshots: 0, rejects: 0, engine: { name: 'world' } });
    expect(report.timeRange.lastUs).toBeGreaterThan(report.timeRange.firstUs);
    expect(Object.keys(report.partitions)).toHaveLength(8);
    expect(Object.values(report.partitions).reduce((x, y) => x + y, 0)).toBe(30000);
    const text = tapedeck(['inspect', a]).stdout;
    expect(text).toMatch(/^ {2}partitions {3}8: 0:[\d,]+ 1:[\d,]+ .* 7:[\d,]+$/m);
    expect(text).toMatch(/^ {2}time {9}\S+ \.\. \S+ \([\d.]+ s\)$/m);
  });

  it('says a tape without events has no partitions and no time range', () => {
    const dir = tempDir();
    const input = join(dir, 'empty.ndjson');
    writeFileSync(input, '');
    const tape = join(dir, 'empty.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape]).status).toBe(0);
    const r = tapedeck(['inspect', tape]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ {2}events {7}0 in 0 blocks$/m);
    expect(r.stdout).toMatch(/^ {2}partitions {3}0 \(no events\)$/m);
    expect(r.stdout).not.toMatch(/^ {2}time /m);
    expect(tapedeck(['inspect', tape, '--json']).json()).toMatchObject({ events: 0, timeRange: null, partitions: {} });
  });
});

describe('stopping', () => {
  it('SIGINT stops cleanly: what was read is committed, the summary says so, and --resume completes the tape', async () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    const run = startTapedeck(['record', '--out', tape, '--events', '5000000']);
    // Stopped once part of the stream is committed, however fast this machine records.
    await waitForCommitted(tape, 200_000);
    run.child.kill('SIGINT');
    const { code: status } = await run.exited;
    expect(status).toBe(0);
    const stdout = run.stdout();
    expect(stdout).toMatch(/stopped by SIGINT: everything read is committed; continue with --resume/);
    const recorded = Number(/recorded ([\d,]+) events/.exec(stdout)![1].replace(/,/g, ''));
    expect(recorded).toBeGreaterThan(0);
    expect(recorded).toBeLessThan(5_000_000);
    expect(tapedeck(['verify', tape]).status).toBe(0);
    expect(tapedeck(['inspect', tape, '--json']).json()).toMatchObject({ events: recorded });
    const resumed = tapedeck(['record', '--out', tape, '--resume', '--json']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({ events: 5_000_000, eventsThisRun: 5_000_000 - recorded, resumed: true });
  });

  it('refuses --resume with options that differ from the tape\'s', () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '1000', '--seed', '3']).status).toBe(0);
    const r = tapedeck(['record', '--out', tape, '--resume', '--seed', '4']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--seed 4 differs from the tape's 3/);
    expect(tapedeck(['record', '--out', tape, '--resume', '--seed', '3', '--json']).json()).toMatchObject({ events: 1000, eventsThisRun: 0 });
  });
});
