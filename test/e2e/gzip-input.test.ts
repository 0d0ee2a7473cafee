// `record --source ndjson --input events.ndjson.gz`: a gzip file is recorded as the text it
// holds, with positions in that text, so that --resume works on it (decompressing again up to
// the offset, and checking the bytes before it) and across the .gz and the plain file; damaged
// or cut-short gzip data stops the recording with the whole lines before it committed.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { NdjsonSource } from '../../recorder/sources/ndjson.js';
import { TapeReader } from '../../tape/reader.js';
import { corpus, MAX_LINE } from '../support/bad-input.js';
import { tapedeck, tempDir, writeGeneratedNdjson } from '../support/cli.js';

const exportText = (tape: string): string => tapedeck(['export', tape]).stdout;

interface Report {
  readonly events: number;
  readonly source: { readonly compression?: string };
  readonly sourcePositions: { readonly position: { byteOffset: number; line: number; tailBytes?: number } }[];
}
const inspect = (tape: string): Report => tapedeck(['inspect', tape, '--json']).json<Report>();

// Each case twice: as a file this small is read (its text parsed on the main thread), and with
// --pipeline on (decompressed on the main thread, the text fed to the parse workers), as a
// file of 2 MiB or more is.
describe.each([
  ['read on one thread', [] as string[]],
  ['fed to the parse workers', ['--pipeline', 'on']],
])('gzip-compressed NDJSON files, %s', (_how, pipelineArgs) => {
  let dir: string;
  let text: string;
  let lineCount: number;
  let plain: string;
  let gz: string;
  let plainTape: string;

  beforeAll(() => {
    dir = tempDir();
    plain = join(dir, 'events.ndjson');
    writeGeneratedNdjson(plain, 100_000, 4);
    text = readFileSync(plain, 'utf8');
    lineCount = text.split('\n').length - 1;
    expect(lineCount).toBe(100_000);
    gz = join(dir, 'events.ndjson.gz');
    writeFileSync(gz, gzipSync(text));
    plainTape = join(dir, 'plain.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', plain, '--out', plainTape, ...pipelineArgs]).status).toBe(0);
  });

  it('records the text a gzip file holds: the same events, positions and checkpoints as the plain file', () => {
    const tape = join(dir, 'gz.tape');
    const r = tapedeck(['record', '--source', 'ndjson', '--input', gz, '--out', tape, '--json', ...pipelineArgs]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ read: 100_000, accepted: 100_000, quarantined: 0, pipelined: pipelineArgs.length > 0 });
    expect(exportText(tape)).toBe(text);
    const report = inspect(tape);
    expect(report.source.compression).toBe('gzip');
    // Positions are in the text: the same as the plain file's, tail checksum included.
    expect(report.sourcePositions[0].position).toEqual(inspect(plainTape).sourcePositions[0].position);
    expect(report.sourcePositions[0].position).toMatchObject({ byteOffset: Buffer.byteLength(text), line: 100_000, tailBytes: 65_536 });
    const a = TapeReader.open(tape);
    const b = TapeReader.open(plainTape);
    expect(a.checkpoints()).toEqual(b.checkpoints());
    a.close();
    b.close();
    expect(tapedeck(['verify', tape]).status).toBe(0);
  });

  it('reads every member of a multi-member file (gzip files concatenated, as rotated logs are)', () => {
    const lines = text.split('\n');
    const members = join(dir, 'members.ndjson.gz');
    writeFileSync(members, Buffer.concat([gzipSync(lines.slice(0, 30_000).join('\n') + '\n'), gzipSync(lines.slice(30_000, 70_000).join('\n') + '\n'), gzipSync(lines.slice(70_000).join('\n'))]));
    const tape = join(dir, 'members.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', members, '--out', tape, ...pipelineArgs]).status).toBe(0);
    expect(exportText(tape)).toBe(text);
  });

  it('cut short: the whole lines before the cut are committed, the error names it, and --resume finishes once the file is whole', () => {
    const whole = readFileSync(gz);
    const cut = join(dir, 'cut.ndjson.gz');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.55)));
    // What zlib can give of the cut file, and its whole lines.
    const prefix = gunzipSync(readFileSync(cut), { finishFlush: constants.Z_SYNC_FLUSH });
    const prefixLines = prefix.toString('utf8').split('\n').length - 1;
    const tape = join(dir, 'cut.tape');
    const r = tapedeck(['record', '--source', 'ndjson', '--input', cut, '--out', tape, ...pipelineArgs]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/error \[E_INPUT_GZIP\]: .*cut\.ndjson\.gz: the gzip data is damaged or cut short after [\d,]+ bytes of text \(unexpected end of file\); the whole lines before it are recorded/);
    const held = inspect(tape);
    // Everything read before the error is committed, not only what the last regular commit held
    // (a file's commits come every 32 blocks, 131,072 events).
    expect(held.events).toBeGreaterThan(prefixLines - 1_000);
    expect(held.events).toBeLessThanOrEqual(prefixLines);
    expect(held.sourcePositions[0].position.line).toBe(held.events);
    expect(exportText(tape)).toBe(text.split('\n').slice(0, held.events).join('\n') + '\n');
    expect(tapedeck(['verify', tape]).status).toBe(0);

    // The file made whole again (the same name, as a writer finishing it would leave it).
    writeFileSync(cut, whole);
    const resumed = tapedeck(['record', '--source', 'ndjson', '--input', cut, '--out', tape, '--resume', ...pipelineArgs]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(exportText(tape)).toBe(text);
    expect(tapedeck(['replay', tape]).status).toBe(0);
  });

  it('resumes across the .gz and the plain file, both ways; refuses another file, naming the mismatch', () => {
    const whole = readFileSync(gz);
    const cut = join(dir, 'half.ndjson.gz');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2)));
    const fromGz = join(dir, 'from-gz.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', cut, '--out', fromGz, ...pipelineArgs]).status).toBe(2);
    const stored = inspect(fromGz).sourcePositions[0].position;
    expect(stored.byteOffset).toBeGreaterThan(0);
    expect(stored.tailBytes).toBe(65_536);

    // The same lines, one byte changed in the 64 KiB before the resume point: refused by the checksum.
    const changedText = Buffer.from(text);
    const at = stored.byteOffset - 1000;
    changedText[at] = changedText[at] === 0x31 ? 0x32 : 0x31;
    const changed = join(dir, 'changed.ndjson.gz');
    writeFileSync(changed, gzipSync(changedText));
    const refused = tapedeck(['record', '--source', 'ndjson', '--input', changed, '--out', fromGz, '--resume', ...pipelineArgs]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/E_RESUME_MISMATCH\]: .*changed\.ndjson\.gz: the 65,536 bytes before byte [\d,]+ .* are not those recorded/);
    // Fewer bytes of text than already recorded.
    const short = join(dir, 'short.ndjson.gz');
    writeFileSync(short, gzipSync(text.slice(0, 5000)));
    const tooShort = tapedeck(['record', '--source', 'ndjson', '--input', short, '--out', fromGz, '--resume', ...pipelineArgs]);
    expect(tooShort.status).toBe(2);
    expect(tooShort.stderr).toMatch(/E_RESUME_MISMATCH\]: .*short\.ndjson\.gz holds 5,000 bytes of text, fewer than the [\d,]+ already recorded/);
    expect(inspect(fromGz).events).toBe(stored.line);

    // Recorded from the .gz, finished from the plain file.
    const resumed = tapedeck(['record', '--source', 'ndjson', '--input', plain, '--out', fromGz, '--resume', ...pipelineArgs]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(exportText(fromGz)).toBe(text);

    // Recorded from the plain file (cut at a line), finished from the .gz.
    const firstLines = join(dir, 'first.ndjson');
    writeFileSync(firstLines, text.split('\n').slice(0, 41_234).join('\n') + '\n');
    const fromPlain = join(dir, 'from-plain.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', firstLines, '--out', fromPlain, ...pipelineArgs]).status).toBe(0);
    const finished = tapedeck(['record', '--source', 'ndjson', '--input', gz, '--out', fromPlain, '--resume', ...pipelineArgs]);
    expect(finished.status, finished.stderr).toBe(0);
    expect(exportText(fromPlain)).toBe(text);
  });

  it('handles the bad-input corpus as the plain file does: the same events and rejects, and the same strict-mode stop', () => {
    const { bytes, goodLines, badCodes } = corpus();
    const plainCorpus = join(dir, 'corpus.ndjson');
    writeFileSync(plainCorpus, bytes);
    const gzCorpus = join(dir, 'corpus.ndjson.gz');
    // Small gzip members, so that lines (and a UTF-8 sequence) are cut between zlib's chunks too.
    const members: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += 37) members.push(gzipSync(bytes.subarray(at, at + 37)));
    writeFileSync(gzCorpus, Buffer.concat(members));
    const rejects = (tape: string) => tapedeck(['export', tape, '--rejects']).stdout.trim().split('\n').map((l) => {
      const r = JSON.parse(l) as { position: { input: string } };
      return { ...r, position: { ...r.position, input: null } };
    });
    const tapes = [plainCorpus, gzCorpus].map((input, i) => {
      const tape = join(dir, `corpus-${i}.tape`);
      const r = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--quarantine', '--max-line-bytes', String(MAX_LINE), '--json', ...pipelineArgs]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.json()).toMatchObject({ read: goodLines + badCodes.length, accepted: goodLines, quarantined: badCodes.length });
      return tape;
    });
    expect(exportText(tapes[1])).toBe(exportText(tapes[0]));
    expect(rejects(tapes[1])).toEqual(rejects(tapes[0]));
    const strict = [plainCorpus, gzCorpus].map((input, i) => tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', join(dir, `strict-${i}.tape`), ...pipelineArgs]));
    expect(strict[1].status).toBe(2);
    expect(strict[1].stderr.replace(gzCorpus, 'INPUT')).toBe(strict[0].stderr.replace(plainCorpus, 'INPUT'));
  });

  it('export --out FILE.gz writes the lines gzip-compressed, which record reads back into the same events', () => {
    const out = join(dir, 'exported.ndjson.gz');
    const r = tapedeck(['export', plainTape, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`exported 100,000 events of ${plainTape} (events 0 to 99,999) to ${out} (gzip-compressed)\n`);
    const compressed = readFileSync(out);
    expect(compressed.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(compressed.length).toBeLessThan(Buffer.byteLength(text) / 4);
    expect(gunzipSync(compressed).toString('utf8')).toBe(text);
    const back = join(dir, 'exported.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', out, '--out', back, ...pipelineArgs]).status).toBe(0);
    expect(exportText(back)).toBe(text);
    // The quarantined inputs too.
    const { bytes } = corpus();
    const bad = join(dir, 'bad.ndjson');
    writeFileSync(bad, bytes);
    const quarantined = join(dir, 'bad.tape');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', bad, '--out', quarantined, '--quarantine', '--max-line-bytes', String(MAX_LINE), ...pipelineArgs]).status).toBe(0);
    const rejectsOut = join(dir, 'rejects.ndjson.gz');
    expect(tapedeck(['export', quarantined, '--rejects', '--out', rejectsOut]).status).toBe(0);
    expect(gunzipSync(readFileSync(rejectsOut)).toString('utf8')).toBe(tapedeck(['export', quarantined, '--rejects']).stdout);
  });

  it('reports its progress in the compressed bytes read, against the file size', async () => {
    const source = new NdjsonSource({ input: gz, codec: worldEngine.codec });
    expect(source.gzip).toBe(true);
    const seen: number[] = [];
    const result = await recordTape(source, {
      path: join(dir, 'progress.tape'),
      engine: worldEngine,
      runSeed: 1,
      // Progress comes at each commit: blocks of 1,000 events, 32 a commit, make three before the last.
      blockEvents: 1000,
      onProgress: (p) => seen.push(source.progressBytes(p.position)),
    });
    expect(result.events).toBe(100_000);
    expect(seen.length).toBeGreaterThan(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]);
    expect(seen[seen.length - 1]).toBe(readFileSync(gz).length);
    expect(source.fileSize).toBe(readFileSync(gz).length);
  });
});
