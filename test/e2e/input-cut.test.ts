// An NDJSON file cut short while it is recorded (another program truncates it, as logrotate's
// copytruncate does to a log): the recording stops with E_INPUT_TRUNCATED, in both modes and on
// both ways of reading, instead of reporting the line the cut went through as bad input (or
// quarantining it and ending as if the file had been read whole). The whole lines read before
// are committed, and --resume goes on once the file is put back whole.

import { copyFileSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TapedeckError } from '../../engine/errors.js';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { NdjsonSource } from '../../recorder/sources/ndjson.js';
import { tapedeck, tempDir, writeGeneratedNdjson } from '../support/cli.js';

interface Held {
  events: number;
  rejects: number;
  sourcePositions: { position: { byteOffset: number; line: number } }[];
}

describe('an NDJSON file cut short while it is recorded', () => {
  let dir: string;
  let original: string;
  let lines: string[];

  beforeAll(() => {
    dir = tempDir();
    // 400,000 lines (about 48 MB): the parse workers run at most 2 x 16 chunks of 4,096 lines
    // ahead of the main thread, which has taken 131,072 (32 blocks) at its first commit, so a
    // quarter of the file is still unread when the test cuts it at three quarters there.
    original = join(dir, 'original.ndjson');
    writeGeneratedNdjson(original, 400_000, 11);
    lines = readFileSync(original, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(400_000);
  });

  for (const pipeline of ['on', 'off'] as const) {
    for (const quarantine of [false, true]) {
      it(`stops with E_INPUT_TRUNCATED, the whole lines read before committed (${pipeline === 'on' ? 'parse workers' : 'one thread'}, ${quarantine ? 'quarantine' : 'strict'})`, async () => {
        const name = `cut-${pipeline}-${quarantine ? 'q' : 's'}`;
        const input = join(dir, `${name}.ndjson`);
        const tape = join(dir, `${name}.tape`);
        copyFileSync(original, input);
        const size = statSync(input).size;
        const cutAt = Math.floor((size * 3) / 4);
        let cuts = 0;
        const run = recordTape(new NdjsonSource({ input, codec: worldEngine.codec }), {
          path: tape,
          engine: worldEngine,
          runSeed: 1,
          pipeline,
          quarantine,
          // At the first commit, the last quarter of the file goes.
          onProgress: () => {
            if (cuts++ === 0) truncateSync(input, cutAt);
          },
        });
        const error = await run.then(
          () => null,
          (e: unknown) => e,
        );
        expect(cuts).toBeGreaterThan(0);
        expect(error).toBeInstanceOf(TapedeckError);
        expect((error as TapedeckError).code).toBe('E_INPUT_TRUNCATED');
        expect((error as Error).message).toContain(`${input}: the file was cut short while it was recorded: it held ${size.toLocaleString('en-US')} bytes when the recording opened it`);
        expect((error as Error).message).toContain(`(${cutAt.toLocaleString('en-US')} bytes now;`);

        // Sound, nothing quarantined (the cut line is not bad input), and the first lines of the
        // file as it was, each once, in order: every whole line read before the reads found the
        // end (the readers may have read past the cut point before the cut).
        expect(tapedeck(['verify', tape]).status).toBe(0);
        const held = tapedeck(['inspect', tape, '--json']).json<Held>();
        expect(held.rejects).toBe(0);
        expect(held.events).toBeGreaterThanOrEqual(131_072);
        expect(held.events).toBeLessThan(400_000);
        const position = held.sourcePositions[0].position;
        expect(position.line).toBe(held.events);
        expect(position.byteOffset).toBe(lines.slice(0, held.events).reduce((n, line) => n + Buffer.byteLength(line) + 1, 0));
        expect(tapedeck(['export', tape]).stdout).toBe(lines.slice(0, held.events).join('\n') + '\n');

        // The file put back whole: --resume records the rest.
        copyFileSync(original, input);
        const resumed = tapedeck(['record', '--source', 'ndjson', '--input', input, '--out', tape, '--resume', '--pipeline', pipeline]);
        expect(resumed.status, resumed.stderr).toBe(0);
        expect(tapedeck(['export', tape]).stdout).toBe(lines.join('\n') + '\n');
      }, 120_000);
    }
  }
});
