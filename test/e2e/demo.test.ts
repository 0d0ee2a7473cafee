import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

function tapeContents(path: string): { blocks: unknown[]; checkpoints: unknown[] } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      blocks: db.prepare('SELECT block_no, first_seq, event_count, checksum, hex(data) AS data FROM blocks ORDER BY block_no').all(),
      checkpoints: db.prepare('SELECT next_seq, digest FROM checkpoints ORDER BY next_seq').all(),
    };
  } finally {
    db.close();
  }
}

describe('tapedeck demo', () => {
  it('records, replays and verifies every checkpoint, with a readable summary', () => {
    const dir = tempDir();
    const r = tapedeck(['demo', '--events', '60000', '--out', join(dir, 'demo.tape')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/recorded\s+60,000 events/);
    expect(r.stdout).toMatch(/verified\s+6 of 6 checkpoints: 0 mismatches, 0 invariant violations/);
    expect(r.stdout).toMatch(/^OK: /m);
  });

  it('--json prints one JSON object as the last line with the contract fields', () => {
    const dir = tempDir();
    const r = tapedeck(['demo', '--events', '25000', '--checkpoint-every', '1000', '--json', '--out', join(dir, 'demo.tape')]);
    expect(r.status).toBe(0);
    const report = r.json<{ ok: boolean; events: number; checkpointsVerified: number; mismatches: number; invariantViolations: number }>();
    expect(report).toMatchObject({ ok: true, events: 25000, checkpointsVerified: 25, mismatches: 0, invariantViolations: 0 });
  });

  it('gives identical events and digests for the same seed in two separate processes, and different ones for another seed', () => {
    const dir = tempDir();
    const run = (name: string, seed: string) => {
      const r = tapedeck(['record', '--out', join(dir, name), '--events', '30000', '--seed', seed, '--checkpoint-every', '2000', '--json']);
      expect(r.status).toBe(0);
      return { digest: r.json<{ finalDigest: string }>().finalDigest, ...tapeContents(join(dir, name)) };
    };
    const a = run('a.tape', '42');
    const b = run('b.tape', '42');
    const c = run('c.tape', '43');
    expect(b.blocks).toEqual(a.blocks);
    expect(b.checkpoints).toEqual(a.checkpoints);
    expect(b.digest).toBe(a.digest);
    expect(c.digest).not.toBe(a.digest);
    expect(c.blocks).not.toEqual(a.blocks);
  });

  it('prints the final digest and update count the README shows for the default session', () => {
    // "The same seed gives the same events and the same digests on any machine": the README's
    // sample output is what a user compares against, so it must stay what the demo prints.
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const shown = /updates emitted[\s\S]*?digest\s+([0-9a-f]{16}) \(final state\)/.exec(readme);
    const updates = /([\d,]+) updates emitted/.exec(readme);
    expect(shown, 'the README shows the demo output').not.toBeNull();
    const r = tapedeck(['demo', '--json', '--out', join(tempDir(), 'demo.tape')]);
    expect(r.status, r.stderr).toBe(0);
    const report = r.json<{ ok: boolean; events: number; finalDigest: string; replay: { updatesEmitted: number } }>();
    expect(report).toMatchObject({ ok: true, events: 1_000_000 });
    expect(report.finalDigest).toBe(shown![1]);
    expect(report.replay.updatesEmitted.toLocaleString('en-US')).toBe(updates![1]);
  });

  it('supports every traffic profile', () => {
    const dir = tempDir();
    for (const profile of ['steady', 'ramp', 'burst', 'hot']) {
      const r = tapedeck(['demo', '--events', '8000', '--profile', profile, '--json', '--out', join(dir, `${profile}.tape`)]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.json()).toMatchObject({ ok: true, events: 8000 });
    }
  });
});

describe('tapedeck command line', () => {
  it('--help lists every command with one line each, and --version prints the version', () => {
    const help = tapedeck(['--help']);
    expect(help.status).toBe(0);
    const listed = [...help.stdout.matchAll(/^  ([a-z]+) /gm)].map((m) => m[1]);
    expect(listed).toEqual(['demo', 'record', 'replay', 'inspect', 'verify', 'export', 'bisect', 'rehearse', 'simulate', 'merge', 'ingest', 'help']);
    for (const command of ['demo', 'record', 'replay', 'inspect', 'verify', 'export', 'bisect']) expect(help.stdout).toMatch(new RegExp(`^  ${command} .*\\S`, 'm'));
    const version = tapedeck(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // main.ts loads only the command given; a mistyped one loads them all, to suggest the nearest.
    const typo = tapedeck(['recrod', '--events', '10']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toContain("error: unknown command 'recrod'\n(Did you mean record?)");
    expect(tapedeck(['help', 'inspect']).stdout).toMatch(/^Usage: tapedeck inspect \[options\] <tape>/);
  });

  it("keeps the tables in every command's --help indented when wrapped to 80 columns, and says each default once", () => {
    // commander wraps a description line longer than the help width without its indent, which
    // breaks a hand-laid table (record's list of sources once read "--seed, --rate, ..." from
    // column 0). In a paragraph whose lines after a heading are indented, all must stay so.
    const commands = ['demo', 'record', 'replay', 'inspect', 'verify', 'export', 'bisect', 'rehearse', 'simulate', 'merge', 'ingest'];
    for (const command of commands) {
      const help = tapedeck([command, '--help']);
      expect(help.status).toBe(0);
      for (const paragraph of help.stdout.split(/\n\s*\n/)) {
        const lines = paragraph.split('\n').filter((line) => line.length > 0);
        if (lines.length < 3 || !lines[0].endsWith(':') || !/^\s/.test(lines[1])) continue;
        for (const line of lines.slice(1)) expect(line, `${command} --help:\n${paragraph}`).toMatch(/^\s/);
      }
      // An option says its default once: commander adds "(default: X)" for one it is given,
      // which next to a description's own "[default: ...]" read "[default: 500] (default: 500)".
      expect(help.stdout.replace(/\s+/g, ' '), `${command} --help`).not.toMatch(/\[default:[^\]]*\] \(default:/);
    }
  });

  it('exits 2 naming the option on bad arguments', () => {
    const r = tapedeck(['demo', '--events', 'ten']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--events must be a positive integer, got "ten"/);
    const p = tapedeck(['demo', '--profile', 'spiky']);
    expect(p.status).toBe(2);
    expect(p.stderr).toMatch(/--profile must be one of steady, ramp, burst, hot/);
    const unknown = tapedeck(['rewind']);
    expect(unknown.status).toBe(2);
  });

  it('exits 2 with the path when a tape is missing or not a tape', () => {
    const dir = tempDir();
    const missing = tapedeck(['replay', join(dir, 'nope.tape')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope\.tape: no such file/);
    const notTape = tapedeck(['inspect', join(process.cwd(), 'package.json')]);
    expect(notTape.status).toBe(2);
    expect(notTape.stderr).toMatch(/not a tapedeck tape/);
    const empty = join(dir, 'empty.tape');
    writeFileSync(empty, '');
    for (const command of ['inspect', 'replay', 'export']) {
      const r = tapedeck([command, empty]);
      expect(r.status, command).toBe(2);
      expect(r.stderr, command).toContain(`error [E_TAPE_NOT_A_TAPE]: ${empty}: is empty (0 bytes), not a tapedeck tape`);
    }
    // verify reports what is wrong with the file among its problems, as for any file that is not a sound tape.
    const verified = tapedeck(['verify', empty]);
    expect(verified.status).toBe(1);
    expect(verified.stdout).toContain(`PROBLEM ${empty}: is empty (0 bytes), not a tapedeck tape`);
    // The file record reads, given as a tape by mistake: how to make a tape of it. (Not for other files.)
    expect(notTape.stderr).not.toContain('tapedeck record');
    const lines = join(dir, 'my events.ndjson');
    writeFileSync(lines, '{"timestampUs":1,"partition":0,"key":null,"type":"leave","payload":{"player":1}}\n');
    const asTape = tapedeck(['replay', lines]);
    expect(asTape.status).toBe(2);
    expect(asTape.stderr).toContain(`error [E_TAPE_NOT_A_TAPE]: ${lines}: not a tapedeck tape (not an SQLite database: file is not a database); it looks like NDJSON event lines: to make a tape of them, tapedeck record --source ndjson --input '${lines}' --out events.tape`);
    const gz = join(dir, 'events.ndjson.gz');
    writeFileSync(gz, gzipSync(readFileSync(lines)));
    expect(tapedeck(['inspect', gz]).stderr).toContain(`${gz}: not a tapedeck tape (not an SQLite database: file is not a database); it is gzip-compressed, perhaps NDJSON event lines: to make a tape of them, tapedeck record --source ndjson --input ${gz} --out events.tape`);
  });

  it('replaces a tape at its --out (an earlier demo\'s), or an empty file, but refuses any other file and leaves it as it was', () => {
    const dir = tempDir();
    const out = join(dir, 'demo.tape');
    expect(tapedeck(['demo', '--events', '2000', '--out', out]).status).toBe(0);
    const again = tapedeck(['demo', '--events', '3000', '--out', out, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(again.json<{ events: number }>().events).toBe(3000);
    const empty = join(dir, 'empty.tape');
    writeFileSync(empty, '');
    expect(tapedeck(['demo', '--events', '2000', '--out', empty]).status).toBe(0);
    for (const [name, contents] of [
      ['notes.txt', 'notes I keep\n'],
      ['other.sqlite', readFileSync(out).subarray(0, 68).toString('latin1') + 'ABCD'],
    ] as const) {
      const other = join(dir, name);
      writeFileSync(other, contents, 'latin1');
      const r = tapedeck(['demo', '--events', '2000', '--out', other]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`error \\[E_TAPE_EXISTS\\]: .*${name.replace('.', '\\.')}: the file exists and is not a tape; the demo replaces a tape there \\(an earlier demo's\\), nothing else: choose another --out, or move the file away`));
      expect(readFileSync(other, 'latin1')).toBe(contents);
    }
  });

  it('refuses to overwrite a tape without --force', () => {
    const dir = tempDir();
    const out = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', out, '--events', '100']).status).toBe(0);
    const again = tapedeck(['record', '--out', out, '--events', '100']);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect(tapedeck(['record', '--out', out, '--events', '100', '--force']).status).toBe(0);
  });
});
