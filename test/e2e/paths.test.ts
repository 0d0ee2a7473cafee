// Paths users get wrong, and files that cannot be written: every command answers with an
// operating error (exit 2) that names the file and says what is wrong with it, never an
// internal error, and leaves nothing half-written behind.

import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { META_CHECKSUM_KEY, metaChecksum } from '../../tape/schema.js';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { NdjsonSource } from '../../recorder/sources/ndjson.js';
import { tapedeck, tempDir, type CliResult } from '../support/cli.js';

function refused(r: CliResult, message: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|    at /);
}

describe('paths and files', () => {
  let dir: string;
  let tape: string;
  beforeAll(() => {
    dir = tempDir();
    tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '20000']).status).toBe(0);
  });

  it('a folder given where a tape is read is refused as such by every reader', () => {
    for (const command of ['inspect', 'verify', 'replay', 'export']) {
      refused(tapedeck([command, dir]), /error \[E_TAPE_NOT_FOUND\]: .*: is a folder, not a tape file/);
    }
    refused(tapedeck(['record', '--source', 'ndjson', '--input', dir, '--out', join(dir, 'x.tape')]), /error \[E_INPUT_NOT_FOUND\]: .*: is a folder, not a file of NDJSON lines/);
    expect(existsSync(join(dir, 'x.tape'))).toBe(false);
  });

  it('a tape this user may not read, or in a folder it may not enter, is refused as such, not as damaged', () => {
    const closed = join(dir, 'closed');
    mkdirSync(closed);
    const unreadable = join(dir, 'unreadable.tape');
    copyFileSync(tape, unreadable);
    copyFileSync(tape, join(closed, 'in.tape'));
    chmodSync(unreadable, 0o000);
    chmodSync(closed, 0o000);
    try {
      const asUser = { permissionsApply: true };
      for (const command of ['inspect', 'verify', 'replay', 'export']) {
        refused(tapedeck([command, unreadable], asUser), /error \[E_TAPE_PERMISSION\]: .*unreadable\.tape: permission denied: this user may not read the file \(mode 0000, owner uid \d+\)/);
        refused(tapedeck([command, join(closed, 'in.tape')], asUser), /error \[E_TAPE_PERMISSION\]: .*in\.tape: permission denied: this user may not enter a folder on its path/);
      }
      refused(tapedeck(['record', '--out', join(closed, 'new.tape'), '--events', '100'], asUser), /error \[E_TAPE_CREATE\]: .*new\.tape: permission denied: this user may not enter a folder on its path/);
      // An NDJSON input this user may not read is said the same way, and no tape is made.
      const lines = join(dir, 'locked.ndjson');
      writeFileSync(lines, '{"timestampUs":1,"partition":0,"key":"1","type":"leave","payload":{"player":1}}\n', { mode: 0o000 });
      chmodSync(lines, 0o000);
      const out = join(dir, 'from-locked.tape');
      refused(tapedeck(['record', '--source', 'ndjson', '--input', lines, '--out', out], asUser), /error \[E_INPUT_UNREADABLE\]: .*locked\.ndjson: cannot be opened for reading: permission denied: this user may not read the file \(mode 0000, owner uid \d+\)/);
      refused(tapedeck(['record', '--source', 'ndjson', '--input', join(closed, 'in.ndjson'), '--out', out], asUser), /error \[E_INPUT_UNREADABLE\]: .*in\.ndjson: cannot be opened for reading: permission denied: this user may not enter a folder on its path/);
      expect(existsSync(out)).toBe(false);
    } finally {
      chmodSync(closed, 0o700);
      chmodSync(unreadable, 0o600);
    }
  });

  it('a tape of a newer format is refused by every command with E_TAPE_VERSION (exit 2), and verify does not call it damaged', () => {
    const newer = join(dir, 'newer.tape');
    copyFileSync(tape, newer);
    // What a later tapedeck would write: format_version 2, the meta table's checksum made anew.
    const db = new Database(newer);
    db.prepare("UPDATE meta SET value = '2' WHERE key = 'format_version'").run();
    const rows = (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).filter((r) => r.key !== META_CHECKSUM_KEY);
    db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(metaChecksum(rows.map((r) => [r.key, r.value] as const))), META_CHECKSUM_KEY);
    db.close();
    const why = /error \[E_TAPE_VERSION\]: .*newer\.tape: tape format 2 is newer than this tapedeck reads \(1\); upgrade tapedeck/;
    for (const command of ['inspect', 'verify', 'replay', 'export']) refused(tapedeck([command, newer]), why);
    refused(tapedeck(['record', '--resume', '--out', newer, '--events', '30000']), why);
    expect(tapedeck(['verify', newer]).stdout).not.toMatch(/DAMAGED/);
  });

  it('a tape is not written over a folder, even with --force, nor into a folder that does not exist', () => {
    const folder = join(dir, 'folder');
    mkdirSync(join(folder, 'inside'), { recursive: true });
    for (const force of [[], ['--force']]) {
      refused(tapedeck(['record', '--out', folder, '--events', '100', ...force]), /error \[E_TAPE_CREATE\]: .*folder: is a folder; --out names the tape file to write/);
    }
    expect(readdirSync(folder)).toEqual(['inside']);
    refused(tapedeck(['record', '--out', join(dir, 'missing', 'a.tape'), '--events', '100']), /error \[E_TAPE_CREATE\]: .*a\.tape: cannot create the tape: its folder does not exist \(ENOENT\)/);
  });

  it('a tape whose creation fails (--force) leaves the tape it was to replace as it was, and nothing half-made', () => {
    const kept = join(dir, 'kept.tape');
    copyFileSync(tape, kept);
    // Files up to 256 KiB: an empty tape (its schema in 64 KiB pages) is larger.
    const r = tapedeck(['record', '--out', kept, '--events', '100', '--force'], { fileSizeLimitBlocks: 512 });
    refused(r, /error \[E_TAPE_WRITE\]: .*kept\.tape: cannot create the tape: /);
    expect(readdirSync(dir).filter((f) => f.startsWith('kept.tape'))).toEqual(['kept.tape']);
    expect(readFileSync(kept).equals(readFileSync(tape))).toBe(true);
    expect(tapedeck(['verify', kept]).status).toBe(0);
  });

  it('export and reports name the file they cannot write, and why', () => {
    refused(tapedeck(['export', tape, '--out', join(dir, 'missing', 'x.ndjson')]), /error \[E_FILE_WRITE\]: cannot create .*x\.ndjson: its folder does not exist \(ENOENT\)/);
    refused(tapedeck(['export', tape, '--out', dir]), /error \[E_FILE_WRITE\]: cannot create .*: it is a folder \(EISDIR\)/);
    refused(tapedeck(['rehearse', tape, '--speeds', '1', '--report', join(dir, 'missing', 'r.html')]), /error \[E_FILE_WRITE\]: cannot create .*r\.html: its folder does not exist \(ENOENT\)/);
  });

  it('an export that runs out of room stops with an error and leaves neither the file nor its partial copy', () => {
    const out = join(dir, 'big.ndjson');
    // Files up to 256 KiB: the export of 20,000 events is about 2.5 MiB.
    const r = tapedeck(['export', tape, '--out', out], { fileSizeLimitBlocks: 512, timeoutMs: 60_000 });
    refused(r, /error \[E_FILE_WRITE\]: cannot write .*big\.ndjson: the file would be larger than allowed \(EFBIG\)/);
    expect(readdirSync(dir).filter((f) => f.startsWith('big.ndjson'))).toEqual([]);
  });

  it('a file a command writes is never one it reads: the command is refused before it starts, whatever the spelling or link, and the file is left as it was', async () => {
    const own = join(dir, 'own');
    mkdirSync(own);
    const t = join(own, 'a.tape');
    copyFileSync(tape, t);
    symlinkSync(t, join(own, 'soft.tape'));
    linkSync(t, join(own, 'hard.tape'));
    const lines = join(own, 'a.ndjson');
    expect(tapedeck(['export', t, '--out', lines]).status).toBe(0);
    const engine = join(own, 'engine.mjs');
    copyFileSync('fixtures/engines/kv-lww.mjs', engine);
    const budget = join(own, 'budget.json');
    writeFileSync(budget, '{"p99": 5}\n');
    const key = join(own, 'hash.key');
    writeFileSync(key, 'k'.repeat(32));
    const files = [t, lines, engine, budget, key];
    const before = files.map((f) => readFileSync(f));
    const esc = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    /** Refused: `option output` is `what`, named as given when spelled otherwise. */
    const isInput = (r: CliResult, option: string, output: string, what: string, given = output): void =>
      refused(r, new RegExp(`error \\[E_OUTPUT_IS_INPUT\\]: ${option} ${esc(output)} is ${what}${given === output ? '' : ` \\(${esc(given)}\\)`}: writing there would destroy it; choose another file`));

    for (const out of [t, join(own, '.', 'a.tape'), join(own, 'soft.tape'), join(own, 'hard.tape')]) {
      isInput(tapedeck(['export', t, '--out', out]), '--out', out, 'the tape being exported', t);
    }
    for (const force of [['--force'], []]) {
      isInput(tapedeck(['record', '--source', 'ndjson', '--input', lines, '--out', lines, ...force]), '--out', lines, 'the --input file');
    }
    isInput(tapedeck(['record', '--source', 'ndjson', '--input', '-', '--out', t, '--force'], { stdinFile: t }), '--out', t, 'the standard input \\(--input -\\)');
    isInput(tapedeck(['record', '--events', '100', '--engine', engine, '--out', engine, '--force']), '--out', engine, 'the --engine module');
    isInput(tapedeck(['record', '--source', 'ndjson', '--input', lines, '--hash', 'payload.player', '--hash-key-file', key, '--out', key, '--force']), '--out', key, 'the --hash-key-file');
    isInput(tapedeck(['demo', '--engine', engine, '--out', engine]), '--out', engine, 'the --engine module');
    isInput(tapedeck(['replay', t, '--save-service-times', join(own, 'soft.tape')]), '--save-service-times', join(own, 'soft.tape'), 'the tape being replayed', t);
    isInput(tapedeck(['replay', t, '--budget', budget, '--report', budget]), '--report', budget, 'the --budget file');
    isInput(tapedeck(['rehearse', t, '--speeds', '1', '--report', t]), '--report', t, 'the tape being rehearsed');
    isInput(tapedeck(['replay', t, '--to-kafka', '--brokers', '127.0.0.1:1', '--topic', 'x', '--position-file', t]), '--position-file', t, 'the tape being replayed');
    isInput(tapedeck(['ingest', '--brokers', '127.0.0.1:1', '--topic', 'x', '--engine', engine, '--record', engine, '--force']), '--record', engine, 'the --engine module');
    const twice = join(own, 'latency.json');
    refused(tapedeck(['replay', t, '--save-service-times', twice, '--report', twice]), /error \[E_OUTPUTS_SAME_FILE\]: --report and --save-service-times name the same file .*latency\.json\): one would replace the other/);
    expect(existsSync(twice)).toBe(false);

    // The library refuses it too: a tape recorded over its own NDJSON input.
    await expect(recordTape(new NdjsonSource({ input: lines, codec: worldEngine.codec }), { path: `${own}/./a.ndjson`, overwrite: true, engine: worldEngine, runSeed: 1 })).rejects.toThrow(/is the file the source reads .*: the tape must be another file/);

    expect(files.map((f) => readFileSync(f))).toEqual(before);
    expect(readdirSync(own).sort()).toEqual(['a.ndjson', 'a.tape', 'budget.json', 'engine.mjs', 'hard.tape', 'hash.key', 'soft.tape']);
    expect(tapedeck(['verify', t]).status).toBe(0);
  });
});
