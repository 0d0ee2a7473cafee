// The bad-input corpus, in strict and quarantine mode: every kind of malformed line is named
// with its position, and accepted + quarantined always equals lines read.

import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { InputError, recordTape } from '../../recorder/record.js';
import { NdjsonSource } from '../../recorder/sources/ndjson.js';
import { TapeReader } from '../../tape/reader.js';
import { tapedeck, tempDir } from '../support/cli.js';
import { BAD, corpus, good, MAX_LINE } from '../support/bad-input.js';

describe('bad input, strict mode', () => {
  for (const [code, bytes] of BAD) {
    it(`stops at ${code}, naming file, line and byte offset; the lines before it are committed`, async () => {
      const dir = tempDir();
      const input = join(dir, 'in.ndjson');
      const content = Buffer.concat([Buffer.from(good(1) + '\n'), bytes, Buffer.from('\n' + good(2) + '\n')]);
      writeFileSync(input, content);
      const out = join(dir, 't.tape');
      const source = new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: MAX_LINE });
      const error = await recordTape(source, { path: out, engine: worldEngine, runSeed: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).reasonCode).toBe(code);
      expect((error as InputError).message).toContain(`${input} line 2 (byte ${good(1).length + 1})`);
      const reader = TapeReader.open(out);
      expect(reader.summary().events).toBe(1);
      reader.close();
    });
  }

  it('exits 2 on the command line with the position and what to do', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    writeFileSync(input, good(1) + '\n' + '{"timestampUs":1,"partition":0\n');
    const r = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', join(dir, 't.tape')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${input} line 2 (byte ${good(1).length + 1}): not valid JSON`);
    expect(r.stderr).toMatch(/\[invalid-json\]\. The 1 event before it is committed/);
    expect(r.stderr).toMatch(/--quarantine/);
  });
});

describe('an input that is only a byte order mark', () => {
  const BOM_ONLY = Buffer.from([0xef, 0xbb, 0xbf]);

  it('holds no line, as an empty input holds none: 0 events, exit 0, from a file and from stdin', () => {
    const dir = tempDir();
    const input = join(dir, 'bom.ndjson');
    writeFileSync(input, BOM_ONLY);
    for (const [args, stdin] of [
      [['--input', input], undefined],
      [['--input', '-'], BOM_ONLY],
    ] as const) {
      const out = join(dir, `t${stdin === undefined ? 'file' : 'stdin'}.tape`);
      const r = tapedeck(['record', '--source', 'ndjson', ...args, '--out', out, '--json'], { input: stdin });
      expect(r.status, r.stderr).toBe(0);
      expect(r.json<{ read: number; accepted: number; quarantined: number }>()).toMatchObject({ read: 0, accepted: 0, quarantined: 0 });
      expect(tapedeck(['verify', out]).status).toBe(0);
    }
  });

  it('is still the start of line 1 when a newline follows it: a BOM and an empty line is an empty line', () => {
    const dir = tempDir();
    const input = join(dir, 'bom-newline.ndjson');
    writeFileSync(input, Buffer.concat([BOM_ONLY, Buffer.from('\n')]));
    const r = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', join(dir, 't.tape')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${input} line 1 (byte 0): empty line [empty-line]`);
  });
});

describe('bad input, quarantine mode', () => {
  it('keeps every bad line with position, raw bytes and reason; accepted + quarantined = read', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const { bytes, goodLines, badCodes } = corpus();
    writeFileSync(input, bytes);
    const out = join(dir, 't.tape');
    const r = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', out, '--quarantine', '--max-line-bytes', String(MAX_LINE), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = r.json<{ read: number; accepted: number; quarantined: number }>();
    expect(report).toMatchObject({ read: goodLines + badCodes.length, accepted: goodLines, quarantined: badCodes.length });

    const reader = TapeReader.open(out);
    const rejects = reader.rejects();
    expect(rejects.map((x) => x.reasonCode)).toEqual(badCodes);
    // Bad lines sit at lines 3, 5, 7, ... (after the BOM line and the CRLF line).
    expect(rejects.map((x) => (x.position as { line: number }).line)).toEqual(badCodes.map((_, i) => 3 + 2 * i));
    const utf8 = rejects.find((x) => x.reasonCode === 'invalid-utf8')!;
    expect(Buffer.from(utf8.raw!)).toEqual(BAD[1][1]);
    const tooLong = rejects.find((x) => x.reasonCode === 'line-too-long')!;
    expect(tooLong.rawLength).toBe(BAD[4][1].length);
    expect(tooLong.raw!.length).toBe(MAX_LINE);
    expect(reader.sourcePositions()[0]).toMatchObject({ read: report.read, rejected: report.quarantined, nextSeq: report.accepted });
    reader.close();
    expect(tapedeck(['verify', out]).status).toBe(0);
    const inspect = tapedeck(['inspect', out, '--json']).json<{ rejects: number; events: number }>();
    expect(inspect).toMatchObject({ rejects: badCodes.length, events: goodLines });
  });

  it('export --rejects writes every quarantined input with its position, reason and raw bytes', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const { bytes, badCodes } = corpus();
    writeFileSync(input, bytes);
    const out = join(dir, 't.tape');
    const recorded = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', out, '--quarantine', '--max-line-bytes', String(MAX_LINE)]);
    expect(recorded.stdout).toContain(`${badCodes.length} quarantined (tapedeck export ${out} --rejects lists them)`);
    const byReason: Record<string, number> = {};
    for (const code of badCodes) byReason[code] = (byReason[code] ?? 0) + 1;
    expect(byReason).toMatchObject({ 'integer-too-large': 2, 'codec-rejected': 2 });
    const reasons = Object.entries(byReason).map(([code, n]) => `${code} ${n}`).join(', ');
    expect(tapedeck(['inspect', out]).stdout).toContain(`rejects      ${badCodes.length} quarantined inputs: ${reasons} (tapedeck export ${out} --rejects lists them)`);
    expect(tapedeck(['inspect', out, '--json']).json<{ rejectsByReason: Record<string, number> }>().rejectsByReason).toEqual(byReason);
    const listed = join(dir, 'rejects.ndjson');
    const r = tapedeck(['export', out, '--rejects', '--out', listed]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`exported ${badCodes.length} quarantined inputs of ${out} to ${listed}\n`);
    const rejects = readFileSync(listed, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rejects.map((x) => x.reasonCode)).toEqual(badCodes);
    expect(rejects.map((x) => x.reject)).toEqual(badCodes.map((_, i) => i + 1));
    rejects.forEach((x, i) => {
      const raw = BAD[i][1];
      // Line 3 + 2i, after 2 + i accepted lines (the BOM line, the CRLF line, one per bad kind before it).
      expect(x).toMatchObject({ beforeSeq: 2 + i, position: { input, line: 3 + 2 * i }, rawLength: raw.length });
      expect(typeof x.reason).toBe('string');
      if (x.reasonCode === 'invalid-utf8') {
        expect(x.raw).toBeUndefined();
        expect(Buffer.from(x.rawBase64 as string, 'base64')).toEqual(raw);
      } else if (x.reasonCode === 'line-too-long') {
        expect(x).toMatchObject({ rawTruncated: true, raw: raw.subarray(0, MAX_LINE).toString('utf8') });
      } else {
        expect(Buffer.from(x.raw as string, 'utf8')).toEqual(raw);
        expect(x.rawTruncated).toBeUndefined();
      }
    });
    // Without raw bytes (--quarantine-raw off): the rest, and raw null.
    const bare = join(dir, 'bare.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', bare, '--quarantine', '--quarantine-raw', 'off', '--max-line-bytes', String(MAX_LINE)]).status).toBe(0);
    const bareRejects = tapedeck(['export', bare, '--rejects']).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(bareRejects.map((x) => [x.reasonCode, x.raw])).toEqual(badCodes.map((code) => [code, null]));
    // A tape without rejects gives nothing; --rejects does not take an event range.
    const clean = join(dir, 'clean.tape');
    expect(tapedeck(['record', '--out', clean, '--events', '1000']).status).toBe(0);
    expect(tapedeck(['export', clean, '--rejects'])).toMatchObject({ status: 0, stdout: '' });
    // A damaged tape is refused, naming the block, though only its rejects are asked for.
    const damaged = join(dir, 'damaged.tape');
    copyFileSync(out, damaged);
    const db = new Database(damaged);
    db.prepare('UPDATE blocks SET checksum = checksum + 1 WHERE block_no = 0').run();
    db.close();
    const refused = tapedeck(['export', damaged, '--rejects']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/E_TAPE_CORRUPT.*block 0 .*checksum mismatch/);
    expect(refused.stdout).toBe('');
    const ranged = tapedeck(['export', out, '--rejects', '--from', '3']);
    expect(ranged.status).toBe(2);
    expect(ranged.stderr).toMatch(/--from is for events; --rejects writes every quarantined input/);
  });

  it('never holds a line longer than the limit in memory whole (a 50 MB line without newlines)', async () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    writeFileSync(input, Buffer.concat([Buffer.from(good(1) + '\n'), Buffer.alloc(50 << 20, 0x61), Buffer.from('\n' + good(2) + '\n')]));
    const source = new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: 1024 });
    const result = await recordTape(source, { path: join(dir, 't.tape'), engine: worldEngine, runSeed: 1, quarantine: true });
    expect(result).toMatchObject({ read: 3, accepted: 2, quarantined: 1 });
  });

  it('reads stdin', async () => {
    const dir = tempDir();
    const lines = [good(1), good(2), 'oops', good(3)].join('\n') + '\n';
    const source = new NdjsonSource({ input: '-', codec: worldEngine.codec, stdin: Readable.from([Buffer.from(lines.slice(0, 50)), Buffer.from(lines.slice(50))]) });
    const result = await recordTape(source, { path: join(dir, 't.tape'), engine: worldEngine, runSeed: 1, quarantine: true });
    expect(result).toMatchObject({ read: 4, accepted: 3, quarantined: 1 });
    const reader = TapeReader.open(join(dir, 't.tape'));
    expect(reader.rejects()[0]).toMatchObject({ reasonCode: 'invalid-json', position: { input: 'stdin', line: 3 } });
    reader.close();
  });
});

describe('compressed input', () => {
  const text = [good(1), good(2), good(3)].join('\n') + '\n';
  // (A gzip file is read: test/e2e/gzip-input.test.ts.)
  const files: [string, Buffer][] = [
    ['zstd', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.from('\n\x00\x01zstd frame')])],
    ['xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.from('\n\x00\x04')])],
    ['bzip2', Buffer.from('BZh91AY&SY\n\x01')],
    ['zip', Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.from('\n\x14\x00')])],
  ];

  it('a compressed file is refused as a whole, in both modes, naming its format and how to read it; no tape is left', () => {
    const dir = tempDir();
    for (const [format, bytes] of files) {
      const input = join(dir, `in.${format}`);
      writeFileSync(input, bytes);
      for (const mode of [[], ['--quarantine']]) {
        const out = join(dir, `${format}.tape`);
        const r = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', out, ...mode]);
        expect(r.status, `${format} ${mode.join('')}`).toBe(2);
        expect(r.stderr).toContain(`error [E_INPUT_COMPRESSED]: ${input} is ${format}-compressed, not lines of NDJSON text; decompress it`);
        expect(existsSync(out)).toBe(false);
      }
    }
  });

  it('compressed stdin is refused at its first bytes, even when they come one at a time; short plain stdin is read', async () => {
    const dir = tempDir();
    const gz = gzipSync(text);
    const piped = tapedeck(['record', '--source', 'ndjson', '--input', '-', '--out', join(dir, 'piped.tape'), '--quarantine'], { input: gz });
    expect(piped.status).toBe(2);
    expect(piped.stderr).toContain('error [E_INPUT_COMPRESSED]: stdin is gzip-compressed, not lines of NDJSON text; give the gzip file itself (--input FILE.gz), which is read decompressed and which --resume can read again; or decompress it before the pipe: gunzip -c FILE | tapedeck record');
    const bytewise = Readable.from([...gz.subarray(0, 10)].map((b) => Buffer.from([b])).concat([gz.subarray(10)]));
    const error = await recordTape(new NdjsonSource({ input: '-', codec: worldEngine.codec, stdin: bytewise }), { path: join(dir, 'bytewise.tape'), engine: worldEngine, runSeed: 1, quarantine: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_INPUT_COMPRESSED' });
    // Fewer than 8 bytes in all, and plain text one byte at a time: read as lines.
    const short = await recordTape(new NdjsonSource({ input: '-', codec: worldEngine.codec, stdin: Readable.from([Buffer.from('[]\n')]) }), { path: join(dir, 'short.tape'), engine: worldEngine, runSeed: 1, quarantine: true });
    expect(short).toMatchObject({ read: 1, accepted: 0, quarantined: 1 });
    const trickle = await recordTape(new NdjsonSource({ input: '-', codec: worldEngine.codec, stdin: Readable.from([...Buffer.from(text)].map((b) => Buffer.from([b]))) }), { path: join(dir, 'trickle.tape'), engine: worldEngine, runSeed: 1 });
    expect(trickle).toMatchObject({ read: 3, accepted: 3, quarantined: 0 });
  });
});
