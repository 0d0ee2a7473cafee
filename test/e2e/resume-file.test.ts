// Resuming an NDJSON file recording continues the same file: a file that grew since is
// continued from where the tape ends, but a different file, or the same one edited near where
// the recording stopped, is refused (E_RESUME_MISMATCH) before anything is appended to the tape.

import { rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldCodec } from '../../engine/world/codec.js';
import { NdjsonSource, TAIL_CHECK_BYTES } from '../../recorder/sources/ndjson.js';
import { tapedeck, tempDir, type CliResult } from '../support/cli.js';

function refused(r: CliResult, message: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|    at /);
}

function events(tape: string): number {
  return tapedeck(['inspect', tape, '--json']).json<{ events: number }>().events;
}

describe('resume of a file recording', () => {
  let dir: string;
  let lines: string[];
  /** A tape of the first 2,000 lines, recorded from a file that held just those. */
  const partTape = (name: string): { tape: string; input: string } => {
    const input = join(dir, `${name}.ndjson`);
    const tape = join(dir, `${name}.tape`);
    writeFileSync(input, lines.slice(0, 2000).join('\n') + '\n');
    expect(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape]).status).toBe(0);
    return { tape, input };
  };

  beforeAll(() => {
    dir = tempDir();
    const source = join(dir, 'source.tape');
    expect(tapedeck(['record', '--out', source, '--events', '3000', '--seed', '5']).status).toBe(0);
    lines = tapedeck(['export', source]).stdout.trim().split('\n');
    expect(lines).toHaveLength(3000);
  });

  it('a file that grew since is continued: the tape then holds every line once, in order', () => {
    const { tape, input } = partTape('grew');
    writeFileSync(input, lines.join('\n') + '\n');
    const r = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--resume']);
    expect(r.status, r.stderr).toBe(0);
    expect(tapedeck(['export', tape]).stdout.trim().split('\n')).toEqual(lines);
    expect(tapedeck(['verify', tape]).status).toBe(0);
  });

  it('a file whose lines before the resume point changed is refused, even where a line starts at that byte', () => {
    const { tape, input } = partTape('edited');
    // The same bytes but for one digit of line 1,990's timestamp: every line starts where it
    // did, so the byte before the resume offset is still a newline.
    const edited = [...lines];
    edited[1989] = edited[1989].replace(/"timestampUs":(\d+)(\d)/, (_, head: string, last: string) => `"timestampUs":${head}${(Number(last) + 1) % 10}`);
    expect(edited[1989]).not.toBe(lines[1989]);
    expect(edited[1989].length).toBe(lines[1989].length);
    writeFileSync(input, edited.join('\n') + '\n');
    refused(
      tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--resume']),
      /error \[E_RESUME_MISMATCH\]: .*edited\.ndjson: the [\d,]+ bytes before byte [\d,]+ \(line 2,001, where the recording resumes\) are not those recorded: this is not the file the tape was recorded from, or it changed since/,
    );
    expect(events(tape)).toBe(2000);
    expect(tapedeck(['verify', tape]).status).toBe(0);
  });

  it('a file whose resume offset falls inside a line is refused as before', () => {
    const { tape, input } = partTape('shifted');
    writeFileSync(input, 'x' + lines.join('\n') + '\n');
    refused(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--resume']), /error \[E_RESUME_MISMATCH\]: .*shifted\.ndjson: byte [\d,]+ is not the start of a line/);
    writeFileSync(input, lines.slice(0, 100).join('\n') + '\n');
    refused(tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--resume']), /error \[E_RESUME_MISMATCH\]: .*shifted\.ndjson is [\d]+ bytes, shorter than the [\d]+ bytes already recorded/);
    expect(events(tape)).toBe(2000);
  });

  it('a position is stored without the checksum when the file no longer has the bytes before it', () => {
    const input = join(dir, 'gone.ndjson');
    writeFileSync(input, lines.join('\n') + '\n');
    const source = new NdjsonSource({ input, codec: worldCodec });
    const byteOffset = lines.slice(0, 2000).reduce((n, l) => n + l.length + 1, 0);
    expect(byteOffset).toBeGreaterThan(TAIL_CHECK_BYTES);
    expect(source.sealPosition({ byteOffset, line: 2000 })).toMatchObject({ byteOffset, line: 2000, tailBytes: TAIL_CHECK_BYTES });
    // Cut short while it was being read: the recording goes on. (Removed too: the source reads
    // the file it opened, which is still the cut one.)
    truncateSync(input, byteOffset - 10);
    expect(source.sealPosition({ byteOffset, line: 2000 })).toEqual({ byteOffset, line: 2000 });
    rmSync(input);
    expect(source.sealPosition({ byteOffset, line: 2000 })).toEqual({ byteOffset, line: 2000 });
    source.close();
  });
});
