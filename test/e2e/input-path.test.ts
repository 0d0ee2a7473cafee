// What `record --source ndjson --input PATH` reads: a file is opened once, so that one renamed
// or removed while it is recorded (a log rotated away) is still read to its end, by the main
// thread and by the parse workers alike; a path that is not a regular file (a named pipe, a
// shell's process substitution) is read once, in order, as stdin is, instead of failing on a
// seek; a signal stops a recording of stdin or a pipe at once, even while no input comes; and
// compressed input through a pipe or stdin leaves no tape behind.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape, type PipelineMode } from '../../recorder/record.js';
import { NdjsonSource } from '../../recorder/sources/ndjson.js';
import { REPO, startTapedeck, tapedeck, tempDir } from '../support/cli.js';

const BIN = join(REPO, 'bin', 'tapedeck.js');

/** `script` run by bash (for its process substitution and named pipes). */
function bash(script: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', script], { cwd: REPO, encoding: 'utf8', env: { ...process.env, TAPEDECK: `${process.execPath} ${BIN}` }, timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const exportLines = (tape: string): string[] => tapedeck(['export', tape]).stdout.trim().split('\n');

interface StoredPosition {
  readonly byteOffset: number;
  readonly line: number;
  readonly tailBytes?: number;
}

/** Where the tape's recording would resume (inspect --json). */
const resumePosition = (tape: string): StoredPosition =>
  tapedeck(['inspect', tape, '--json']).json<{ sourcePositions: { position: StoredPosition }[] }>().sourcePositions[0].position;

describe('the NDJSON input path', () => {
  let dir: string;
  let text: string;
  let lines: string[];

  beforeAll(() => {
    dir = tempDir();
    const source = join(dir, 'source.tape');
    expect(tapedeck(['record', '--out', source, '--events', '20000', '--seed', '3']).status).toBe(0);
    text = tapedeck(['export', source]).stdout;
    lines = text.trim().split('\n');
    expect(lines).toHaveLength(20_000);
  });

  for (const pipeline of ['on', 'off'] as PipelineMode[]) {
    it(`a file renamed, then removed, once the recording has it open is recorded to its end (pipeline ${pipeline})`, async () => {
      const input = join(dir, `rotated-${pipeline}.ndjson`);
      writeFileSync(input, text);
      const source = new NdjsonSource({ input, codec: worldEngine.codec });
      // Rotated away before a byte is read: every read must go through what the source opened.
      renameSync(input, `${input}.1`);
      rmSync(`${input}.1`);
      const tape = join(dir, `rotated-${pipeline}.tape`);
      // Segments of 64 KiB: the parse workers open many, each after the file is gone.
      const result = await recordTape(source, { path: tape, engine: worldEngine, runSeed: 1, pipeline, segmentBytes: 64 << 10 });
      expect(result).toMatchObject({ events: 20_000, read: 20_000, quarantined: 0, pipelined: pipeline === 'on' });
      expect(exportLines(tape)).toEqual(lines);
      expect(tapedeck(['verify', tape]).status).toBe(0);
      // The resume position still carries the checksum of the bytes before it, read from the open file.
      expect(resumePosition(tape).tailBytes).toBe(65_536);
    });
  }

  it('a process substitution and a named pipe are read as stdin is, from the first line to the last', () => {
    const file = join(dir, 'piped.ndjson');
    writeFileSync(file, text);
    const substituted = join(dir, 'substituted.tape');
    const r = bash(`$TAPEDECK record --source ndjson --input <(cat '${file}') --out '${substituted}'`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/ESPIPE|internal error|    at /);
    expect(exportLines(substituted)).toEqual(lines);
    const fifo = join(dir, 'events.fifo');
    const named = join(dir, 'named.tape');
    const n = bash(`mkfifo '${fifo}' && (cat '${file}' > '${fifo}' &) && $TAPEDECK record --source ndjson --input '${fifo}' --out '${named}' --json`);
    expect(n.status, n.stderr).toBe(0);
    expect(exportLines(named)).toEqual(lines);
    // Like stdin it cannot be read again: every commit is synced, and the position is a line count.
    const position = resumePosition(named);
    expect(position.line).toBe(20_000);
    expect(position.tailBytes).toBeUndefined();
  });

  it('a resumed pipe recording appends what is piped in now, numbering lines after those recorded', () => {
    const first = join(dir, 'first.ndjson');
    const rest = join(dir, 'rest.ndjson');
    writeFileSync(first, lines.slice(0, 12_000).join('\n') + '\n');
    writeFileSync(rest, lines.slice(12_000).join('\n') + '\n');
    const tape = join(dir, 'resumed-pipe.tape');
    expect(bash(`$TAPEDECK record --source ndjson --input <(cat '${first}') --out '${tape}'`).status).toBe(0);
    const r = bash(`$TAPEDECK record --source ndjson --input <(cat '${rest}') --out '${tape}' --resume`);
    expect(r.status, r.stderr).toBe(0);
    expect(exportLines(tape)).toEqual(lines);
    expect(resumePosition(tape).line).toBe(20_000);
  });

  it('compressed input through a pipe or stdin is refused at its first bytes, naming it, and leaves no tape', () => {
    const gz = join(dir, 'events.ndjson.gz');
    writeFileSync(gz, gzipSync(text));
    const tape = join(dir, 'compressed-pipe.tape');
    const r = bash(`$TAPEDECK record --source ndjson --input <(cat '${gz}') --out '${tape}' --quarantine`);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/error \[E_INPUT_COMPRESSED\]: \/dev\/fd\/\d+ is gzip-compressed, not lines of NDJSON text; give the gzip file itself \(--input FILE\.gz\), which is read decompressed and which --resume can read again; or decompress it before the pipe: gunzip -c FILE \| tapedeck record/);
    expect(existsSync(tape)).toBe(false);
    const stdinTape = join(dir, 'compressed-stdin.tape');
    const s = tapedeck(['record', '--source', 'ndjson', '--input', '-', '--out', stdinTape], { input: readFileSync(gz) });
    expect(s.status).toBe(2);
    expect(s.stderr).toContain('error [E_INPUT_COMPRESSED]: stdin is gzip-compressed');
    for (const suffix of ['', '-wal', '-shm']) expect(existsSync(stdinTape + suffix)).toBe(false);
  });

  it('a path that is missing is named, and no tape is made', () => {
    const missing = tapedeck(['record', '--source', 'ndjson', '--input', join(dir, 'nope.ndjson'), '--out', join(dir, 'nope.tape')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`error [E_INPUT_NOT_FOUND]: ${join(dir, 'nope.ndjson')}: no such file`);
    expect(existsSync(join(dir, 'nope.tape'))).toBe(false);
  });
});

/** Wait until the tape holds `events` events (a live recording commits every 100 ms). */
async function untilEvents(tape: string, events: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(tape)) {
      const r = tapedeck(['inspect', tape, '--json']);
      if (r.status === 0 && r.json<{ events: number }>().events === events) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${tape} never held ${events} events`);
}

const exitOf = (child: ChildProcess): Promise<number | null> => new Promise((resolve) => child.on('close', (code) => resolve(code)));

/** What `exited` gives, or a failure if it takes longer than 30 s (a recorder that did not stop: its input would never end). */
async function stopsBy<T>(exited: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the recorder did not stop within 30 s of the signal')), 30_000);
  });
  try {
    return await Promise.race([exited, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a signal while stdin or a pipe is idle', () => {
  let dir: string;
  let three: string;

  beforeAll(() => {
    dir = tempDir();
    const source = join(dir, 'source.tape');
    expect(tapedeck(['record', '--out', source, '--events', '3', '--seed', '4']).status).toBe(0);
    three = tapedeck(['export', source]).stdout;
  });

  it('stops a stdin recording at once, with the lines that came committed and the unfinished one left out', async () => {
    const tape = join(dir, 'stdin.tape');
    const child = spawn(process.execPath, [BIN, 'record', '--source', 'ndjson', '--input', '-', '--out', tape], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = exitOf(child);
    try {
      // Three lines and the start of a fourth; then the producer goes quiet, its pipe still open.
      child.stdin!.write(three + '{"timestampUs":17');
      // Committed while nothing more comes (before the fix, not until more input came: a
      // crash meanwhile lost lines that stdin cannot give again).
      await untilEvents(tape, 3);
      child.kill('SIGTERM');
      // Before the fix the recorder waited for the producer's next byte: here, forever.
      expect(await stopsBy(exited), stderr).toBe(0);
      // The unfinished line was read, and is not in the tape: the summary says so.
      expect(stdout).toContain('stopped by SIGTERM: everything read is committed except the last 17 bytes from stdin (the start of a line whose newline had not come, or input that came after the stop), which are not in the tape and cannot be read again; continue with --resume');
      expect(exportLines(tape)).toEqual(three.trim().split('\n'));
      expect(tapedeck(['verify', tape]).status).toBe(0);
    } finally {
      child.stdin!.destroy();
      child.kill('SIGKILL');
    }
  });

  it('a stop while lines are being taken records the whole lines stdin had already given, even those read after the stop, and counts the bytes left out', async () => {
    const source = join(dir, 'many.tape');
    expect(tapedeck(['record', '--out', source, '--events', '250', '--seed', '6']).status).toBe(0);
    const lines = tapedeck(['export', source]).stdout.trim().split('\n');
    const stdin = new PassThrough();
    const ndjson = new NdjsonSource({ input: '-', codec: worldEngine.codec, stdin });
    const controller = new AbortController();
    const partial = '{"timestampUs":1767225600';
    let batches = 0;
    let committed: unknown;
    stdin.write(lines.slice(0, 100).join('\n') + '\n');
    const tape = join(dir, 'drained.tape');
    const result = await recordTape(ndjson, {
      path: tape,
      engine: worldEngine,
      runSeed: 1,
      signal: controller.signal,
      onProgress: (p) => (committed = p.position),
      betweenBatches: async () => {
        batches++;
        // While the first 100 lines are taken, 100 more arrive; then the stop. While those are
        // taken, 50 more and the start of another arrive. All were read from stdin, which
        // cannot give them again: every whole line is recorded.
        if (batches === 1) {
          stdin.write(lines.slice(100, 200).join('\n') + '\n');
          controller.abort();
        } else if (batches === 2) {
          stdin.write(lines.slice(200).join('\n') + '\n' + partial);
        }
      },
    });
    expect(result).toMatchObject({ stopped: true, events: 250, read: 250 });
    expect(exportLines(tape)).toEqual(lines);
    expect(ndjson.unrecordedBytes(committed)).toBe(partial.length);
  });

  it('stops a named pipe recording at once, while its writer holds it open without writing', async () => {
    const fifo = join(dir, 'idle.fifo');
    const lines = join(dir, 'three.ndjson');
    writeFileSync(lines, three);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const writer = spawn('bash', ['-c', `(cat '${lines}'; sleep 600) > '${fifo}'`], { stdio: 'ignore', detached: true });
    const tape = join(dir, 'fifo.tape');
    const run = startTapedeck(['record', '--source', 'ndjson', '--input', fifo, '--out', tape]);
    try {
      await untilEvents(tape, 3);
      run.child.kill('SIGINT');
      expect((await stopsBy(run.exited)).code, run.stderr()).toBe(0);
      expect(run.stdout()).toContain('stopped by SIGINT: everything read is committed; continue with --resume');
      expect(exportLines(tape)).toEqual(three.trim().split('\n'));
    } finally {
      run.child.kill('SIGKILL');
      try {
        process.kill(-writer.pid!, 'SIGKILL');
      } catch {
        // The writer is gone already.
      }
    }
  });
});
