// Recording on two threads (recorder/pipeline.ts): the source read on a worker thread must give
// the same tape, byte for byte, as reading it on the main thread: the same blocks, checkpoints,
// snapshots, rejects and source positions; the same error, and the same committed prefix, on
// bad input in strict mode; and a stop mid-way that resumes without loss or duplicates.

import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import type { WorldEvent } from '../../engine/world/events.js';
import type { Engine } from '../../engine/types.js';
import { WorldTraffic } from '../../engine/world/traffic.js';
import { InputError, recordTape, type PipelineMode, type RecordResult } from '../../recorder/record.js';
import { openResume, type ResumePoint } from '../../recorder/resume.js';
import { NdjsonSource, type NdjsonPosition } from '../../recorder/sources/ndjson.js';
import { Redactor } from '../../recorder/redact.js';
import { EngineGeneratedSource, WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { endKeptSourceWorker, keptSourceWorker, prestartSourceWorker } from '../../recorder/pipeline.js';
import { BLOCK_MAX_BYTES } from '../../tape/block.js';
import { loadEngine } from '../../tape/load-engine.js';
import { BAD, corpus, good, MAX_LINE } from '../support/bad-input.js';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

/** Every table of a tape except meta (whose createdAt differs), as rows. */
function tapeRows(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true });
  const out: Record<string, unknown[]> = {};
  for (const table of ['blocks', 'block_sources', 'checkpoints', 'snapshots', 'rejects', 'source_positions']) {
    out[table] = db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2, 3`).all();
  }
  db.close();
  return out;
}

const syntheticOptions = { seed: 7, events: 30_000, players: 300, partitions: 8, zones: 8 };
const recordOptions = { engine: worldEngine, runSeed: 7, checkpointEvery: 1000, snapshotEvery: 5000, blockEvents: 700 };

/** The bad-input corpus, then `count` lines of every kind (CRLF ends, rejects, long lines that cross several small segments). */
function mixedText(count: number): { text: Buffer; lines: number } {
  const { bytes } = corpus();
  const parts: Buffer[] = [bytes, Buffer.from('\n')];
  let lines = bytes.toString('latin1').split('\n').length;
  for (let i = 0; i < count; i++) {
    const line = i % 97 === 0 ? `{"timestampUs":${5000 + i},"partition":1,"key":"${'k'.repeat(250)}","type":"leave","payload":{"player":${i % 300}}}` : i % 89 === 0 ? 'oops' : good(i % 300, 5000 + i);
    parts.push(Buffer.from(line + (i % 13 === 0 ? '\r\n' : '\n')));
    lines++;
  }
  return { text: Buffer.concat(parts), lines };
}

/** `input` recorded in quarantine mode on the parse workers with segments of 1,000 and 173 bytes, and on one thread: the same tape. */
async function expectSameAcrossSegments(dir: string, input: string, lines: number): Promise<void> {
  const tapes: string[] = [];
  for (const [pipeline, segmentBytes] of [['on', 1000], ['on', 173], ['off', undefined]] as [PipelineMode, number | undefined][]) {
    const path = join(dir, `${pipeline}-${segmentBytes}.tape`);
    const source = new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: MAX_LINE });
    const result = await recordTape(source, { ...recordOptions, path, pipeline, segmentBytes, quarantine: true });
    expect(result.read).toBe(lines);
    expect(result.pipelined).toBe(pipeline === 'on');
    tapes.push(path);
  }
  const [a, b, off] = tapes.map(tapeRows);
  expect(off.rejects.length).toBeGreaterThan(40);
  expect(a).toEqual(off);
  expect(b).toEqual(off);
}

/**
 * `input` recorded in quarantine mode on the parse workers (segments of 2,000 bytes, blocks of
 * 50) and stopped once `stopAt` inputs are read; `stopped` checks the first run and the point
 * it left; then resumed from there: the tape holds what a straight recording holds.
 */
async function expectStopAndResume(dir: string, input: string, stopAt: number, stopped: (first: RecordResult, resume: ResumePoint) => void): Promise<void> {
  const path = join(dir, 'two-runs.tape');
  const controller = new AbortController();
  const options = { ...recordOptions, path, pipeline: 'on' as PipelineMode, segmentBytes: 2000, blockEvents: 50, quarantine: true };
  const first = await recordTape(new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: MAX_LINE }), {
    ...options,
    signal: controller.signal,
    onProgress: (p) => {
      if (p.read >= stopAt) controller.abort();
    },
  });
  const resume = openResume(path, worldEngine, 'ndjson');
  stopped(first, resume);
  await recordTape(new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: MAX_LINE, from: resume.position as NdjsonPosition }), { ...options, resume });
  const straight = join(dir, 'straight.tape');
  await recordTape(new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: MAX_LINE }), { ...recordOptions, path: straight, pipeline: 'off', quarantine: true });
  const a = tapeRows(path);
  const b = tapeRows(straight);
  expect(a.rejects).toEqual(b.rejects);
  expect(a.source_positions).toEqual(b.source_positions);
  const exportOf = (tape: string) => tapedeck(['export', tape, '--format', 'ndjson']).stdout;
  expect(exportOf(path)).toBe(exportOf(straight));
}

/**
 * 3,000 lines with an event the engine's codec refuses at line 2346, written as an input by
 * `write`, recorded strict on the parse workers (segments of 4 KiB) and on one thread: the same
 * error, and the same tape of the lines before it.
 */
async function expectSameStrictStop(write: (dir: string, text: Buffer) => string): Promise<void> {
  const dir = tempDir();
  const lines = Array.from({ length: 3000 }, (_, i) => good(i % 300, 1000 + i));
  lines.splice(2345, 0, '{"timestampUs":1,"partition":0,"key":"1","type":"teleport","payload":{"player":1}}');
  const input = write(dir, Buffer.from(lines.join('\n') + '\n'));
  const messages: string[] = [];
  const tapes: string[] = [];
  for (const pipeline of ['on', 'off'] as PipelineMode[]) {
    const path = join(dir, `${pipeline}.tape`);
    const error = await recordTape(new NdjsonSource({ input, codec: worldEngine.codec }), { ...recordOptions, path, pipeline, segmentBytes: 4096 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    messages.push((error as Error).message);
    tapes.push(path);
  }
  expect(messages[0]).toContain('line 2346 (byte');
  expect(messages[0]).toBe(messages[1]);
  expect(tapeRows(tapes[0])).toEqual(tapeRows(tapes[1]));
}

/** A module of dist/ as a script's import specifier. */
const dist = (module: string): string => JSON.stringify(pathToFileURL(join(REPO, 'dist', module)).href);
/** What a script of its own needs to record generated world traffic. */
const RECORD_IMPORTS =
  `import { recordTape } from ${dist('recorder/record.js')};\n` +
  `import { WorldTrafficSource } from ${dist('recorder/sources/synthetic.js')};\n` +
  `import { worldEngine } from ${dist('engine/world/index.js')};\n`;

describe('recording with the source on a worker thread', () => {
  it('writes the same synthetic tape as one thread', async () => {
    const dir = tempDir();
    const tapes: string[] = [];
    for (const pipeline of ['on', 'off'] as PipelineMode[]) {
      const path = join(dir, `${pipeline}.tape`);
      const result = await recordTape(new WorldTrafficSource(syntheticOptions), { ...recordOptions, path, pipeline });
      expect(result.pipelined).toBe(pipeline === 'on');
      expect(result.events).toBe(30_000);
      tapes.push(path);
    }
    const [on, off] = tapes.map(tapeRows);
    expect(on.blocks.length).toBe(Math.ceil(30_000 / 700));
    expect(on).toEqual(off);
  });

  it("applies the generator's events from the numbers the worker hands over (also a full window behind), or decodes the blocks for an engine that keeps its events: the same tape", async () => {
    const dir = tempDir();
    // An engine slow enough that the worker runs the full window (32 blocks) ahead and reuses
    // each slot of its ring of events as soon as the window lets it.
    let applied = 0;
    const slow: Engine<unknown, WorldEvent> = {
      ...(worldEngine as Engine<unknown, WorldEvent>),
      apply: (state, event, ctx) => {
        if (++applied % 350 === 0) {
          const until = performance.now() + 3;
          while (performance.now() < until) {
            // The main thread falls behind.
          }
        }
        return worldEngine.apply(state as never, event, ctx);
      },
    };
    const keeping: Engine<unknown, WorldEvent> = { ...(worldEngine as Engine<unknown, WorldEvent>), transientEvents: false };
    const runs = [
      { name: 'numbers', engine: worldEngine as Engine<unknown, WorldEvent>, pipeline: 'on' },
      { name: 'slow', engine: slow, pipeline: 'on' },
      { name: 'decoded', engine: keeping, pipeline: 'on' },
      { name: 'one-thread', engine: worldEngine as Engine<unknown, WorldEvent>, pipeline: 'off' },
    ] as const;
    const rows = [];
    for (const run of runs) {
      const path = join(dir, `${run.name}.tape`);
      const result = await recordTape(new WorldTrafficSource(syntheticOptions), { ...recordOptions, engine: run.engine, engineSpec: 'world', path, pipeline: run.pipeline });
      expect(result.pipelined, run.name).toBe(run.pipeline === 'on');
      rows.push(tapeRows(path));
    }
    expect(rows[0].blocks.length).toBe(Math.ceil(30_000 / 700));
    for (let i = 1; i < rows.length; i++) expect(rows[i], runs[i].name).toEqual(rows[0]);
  });

  it('takes a checkpoint at every multiple of checkpointEvery and a snapshot at every multiple of snapshotEvery, whether or not one divides the other, also after a resume', async () => {
    const dir = tempDir();
    const multiples = (every: number, from: number, to: number): number[] => {
      const out: number[] = [];
      for (let n = (Math.floor(from / every) + 1) * every; n <= to; n += every) out.push(n);
      return out;
    };
    const stored = (path: string): { checkpoints: number[]; snapshots: number[] } => {
      const db = new Database(path, { readonly: true });
      try {
        const seqs = (table: string): number[] => (db.prepare(`SELECT next_seq FROM ${table} ORDER BY next_seq`).all() as { next_seq: number }[]).map((r) => r.next_seq);
        return { checkpoints: seqs('checkpoints'), snapshots: seqs('snapshots') };
      } finally {
        db.close();
      }
    };
    for (const [checkpointEvery, snapshotEvery] of [[700, 1500], [1000, 300], [450, 450]]) {
      for (const pipeline of ['on', 'off'] as PipelineMode[]) {
        const path = join(dir, `cadence-${checkpointEvery}-${snapshotEvery}-${pipeline}.tape`);
        // Blocks of 200 events, 32 a commit (6,400 events).
        const options = { ...recordOptions, checkpointEvery, snapshotEvery, path, pipeline, blockEvents: 200 };
        // Stopped after a commit past 5,000 events (the generator's thread may have sent up to
        // 32 blocks more, which the stop commits too), then resumed to 40,000.
        const source = { ...syntheticOptions, events: 40_000 };
        const controller = new AbortController();
        const first = await recordTape(new WorldTrafficSource(source), {
          ...options,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.events >= 5_000) controller.abort();
          },
        });
        expect(first.stopped).toBe(true);
        const resume = openResume(path, worldEngine, 'synthetic');
        expect(resume.nextSeq).toBe(first.events);
        const second = await recordTape(new WorldTrafficSource(source, (resume.position as { nextIndex: number }).nextIndex), { ...options, resume });
        expect(first.events).toBeLessThan(40_000);
        expect(second.events).toBe(40_000);
        // A checkpoint also ends each run (its last state) when it ends between multiples.
        expect(stored(path), `checkpoint every ${checkpointEvery}, snapshot every ${snapshotEvery}, pipeline ${pipeline}, stopped at ${first.events}`).toEqual({
          checkpoints: [...new Set([...multiples(checkpointEvery, 0, 40_000), first.events, 40_000])].sort((a, b) => a - b),
          snapshots: multiples(snapshotEvery, 0, 40_000),
        });
      }
    }
  });

  it('a synthetic source resumed at event N generates the events before N on first use, not when made: a recording on the worker generates them there only', async () => {
    // The world generator: nothing generated by making the source and asking for its worker
    // spec (what the main thread does when the worker generates); then, read here, it starts
    // at event N, the event a straight run gives.
    const options = { ...syntheticOptions, events: 20_000 };
    const advance = vi.spyOn(WorldTraffic.prototype, 'advance');
    try {
      const resumed = new WorldTrafficSource(options, 12_345);
      expect(resumed.workerSpec()).toMatchObject({ spec: { startIndex: 12_345 } });
      expect(resumed.resumePosition()).toEqual({ nextIndex: 12_345 });
      expect(advance).not.toHaveBeenCalled();
      const first = (await resumed.batches()[Symbol.asyncIterator]().next()).value![0];
      const straight = new WorldTraffic(options);
      straight.skipTo(12_345);
      const expected = straight.next()!;
      expect(first).toMatchObject({ position: 12_345, timestampUs: expected.timestampUs, partition: expected.partition, key: expected.key, event: expected.event });
    } finally {
      advance.mockRestore();
    }
    // A user's engine with generate(): the same.
    const counter = await loadEngine(join(REPO, 'examples', 'counter-engine.mjs'));
    const generate = vi.fn(counter.generate!);
    const engine = { ...counter, generate };
    const resumed = new EngineGeneratedSource(engine, { seed: 3, events: 1000, ratePerSec: 1000 }, 500);
    expect(resumed.workerSpec()).toMatchObject({ spec: { startIndex: 500 } });
    expect(generate).not.toHaveBeenCalled();
    const first = (await resumed.batches()[Symbol.asyncIterator]().next()).value![0];
    const all = [];
    for await (const batch of new EngineGeneratedSource(counter, { seed: 3, events: 1000, ratePerSec: 1000 }).batches()) all.push(...batch);
    expect(all.map((r) => r.position)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(first).toEqual(all[500]);
  });

  it('a write that fails mid-recording, and the close after it: the first error stands, naming what the tape keeps, and the process exits', () => {
    // What a full disk does (SQLITE_FULL at a commit; the close's checkpoint then fails too),
    // simulated in a process of its own: a source worker left waiting for room once kept the
    // process alive for good after such a failure.
    const dir = tempDir();
    const path = join(dir, 'full.tape');
    const script = join(dir, 'full-disk.mjs');
    writeFileSync(
      script,
      `import { TapeWriter } from ${dist('tape/writer.js')};\n` +
        `import { TapeWriteError } from ${dist('tape/errors.js')};\n` +
        RECORD_IMPORTS +
        `const path = ${JSON.stringify(path)};\n` +
        `const commit = TapeWriter.prototype.commit;\n` +
        `const close = TapeWriter.prototype.close;\n` +
        `let commits = 0;\n` +
        `TapeWriter.prototype.commit = function (batch) {\n` +
        `  if (++commits === 3) throw new TapeWriteError(path, 'cannot write to the tape: the disk is full (simulated)');\n` +
        `  return commit.call(this, batch);\n` +
        `};\n` +
        `TapeWriter.prototype.close = function () {\n` +
        `  close.call(this);\n` +
        `  throw new TapeWriteError(path, 'cannot finish the tape: the disk is full (simulated)');\n` +
        `};\n` +
        `await recordTape(new WorldTrafficSource({ seed: 7, events: 2000000 }), { path, engine: worldEngine, runSeed: 7, pipeline: 'on', blockEvents: 4096 })\n` +
        `  .then(() => console.log('recorded'), (error) => console.log(error.message));\n`,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, 'the process did not exit by itself').toBeNull();
    expect(r.status, r.stderr).toBe(0);
    // Two commits of 32 blocks of 4,096 events made it; the commit's error is the one reported.
    expect(r.stdout).toMatch(/cannot write to the tape: the disk is full \(simulated\)\. The tape keeps the 262,144 events committed before it, sound/);
    expect(tapedeck(['verify', path]).status).toBe(0);
  });

  it('a tape that cannot be made, while the generator\'s thread already runs beside it: the error stands, the file there is untouched, and the process exits', () => {
    // The generator's thread starts while the tape is made; when that fails (a file is there
    // and no --force), the thread must end with the run, or it would keep the process alive.
    const dir = tempDir();
    const path = join(dir, 'taken.tape');
    writeFileSync(path, 'not mine');
    const script = join(dir, 'taken.mjs');
    writeFileSync(
      script,
      RECORD_IMPORTS +
        `await recordTape(new WorldTrafficSource({ seed: 7, events: 2000000 }), { path: ${JSON.stringify(path)}, engine: worldEngine, runSeed: 7, pipeline: 'on' })\n` +
        `  .then(() => console.log('recorded'), (error) => console.log(error.message));\n`,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, 'the process did not exit by itself').toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/taken\.tape: file already exists; choose another --out/);
    expect(readFileSync(path, 'utf8')).toBe('not mine');
  });

  it('engine options the engine refuses fail the recording before the tape exists: no empty tape is left', async () => {
    const path = join(tempDir(), 'refused.tape');
    await expect(recordTape(new WorldTrafficSource({ seed: 1, events: 1_000 }), { path, engine: worldEngine, runSeed: 1, engineOptions: { zones: -3 } })).rejects.toThrow(
      /world option zones must be an integer in \[1, 65536\], got -3/,
    );
    expect(existsSync(path)).toBe(false);
  });

  it('keeps the source worker for the next recording: the same tapes, and a failed recording does not hand its worker on', async () => {
    const dir = tempDir();
    const record = async (name: string, extra: { signal?: AbortSignal; onProgress?: (p: { events: number }) => void; blockEvents?: number } = {}) => {
      const path = join(dir, name);
      const result = await recordTape(new WorldTrafficSource(syntheticOptions), { ...recordOptions, path, pipeline: 'on', ...extra });
      expect(result.pipelined).toBe(true);
      return { path, result };
    };
    const first = await record('first.tape');
    const kept = keptSourceWorker();
    expect(kept).not.toBeNull();
    const second = await record('second.tape');
    expect(keptSourceWorker()).toBe(kept);
    expect(tapeRows(second.path)).toEqual(tapeRows(first.path));

    // Stopped part-way: the worker ends the job cleanly and is kept; the next tape is whole.
    // (Blocks of 100 events: a commit every 3,200, so that the stop comes before the worker has
    // sent everything.)
    const controller = new AbortController();
    const stopped = await record('stopped.tape', { signal: controller.signal, onProgress: (p) => p.events >= 5000 && controller.abort(), blockEvents: 100 });
    expect(stopped.result.stopped).toBe(true);
    expect(stopped.result.events).toBeLessThan(30_000);
    expect(keptSourceWorker()).toBe(kept);
    expect(tapeRows((await record('after-stop.tape')).path)).toEqual(tapeRows(first.path));

    // A job that fails on the worker (a user's generator throws): its worker is ended, not kept.
    const enginePath = join(dir, 'failing-engine.mjs');
    const kv = pathToFileURL(join(REPO, 'fixtures', 'engines', 'kv-lww.mjs')).href;
    writeFileSync(
      enginePath,
      `import base from ${JSON.stringify(kv)};\n` +
        `export default { ...base, name: 'kv-failing', generate(random, index) {\n` +
        `  if (index === 2500) throw new Error('the generator broke at 2500');\n` +
        `  const k = ['a', 'b', 'c', 'd'][random.int(0, 3)];\n` +
        `  return { event: { type: 'put', payload: { k, ver: random.int(0, 5), v: random.int(0, 9) } }, partition: 0, key: k };\n} };\n`,
    );
    const failing = await loadEngine(enginePath);
    const error = await recordTape(new EngineGeneratedSource(failing, { seed: 1, events: 5000, ratePerSec: 1000 }), {
      engine: failing,
      engineSpec: enginePath,
      runSeed: 1,
      path: join(dir, 'failing.tape'),
      pipeline: 'on',
      blockEvents: 500,
    }).catch((e: unknown) => e);
    expect(String(error)).toContain('the generator broke at 2500');
    expect(keptSourceWorker()).toBeNull();
    expect(tapeRows((await record('after-failure.tape')).path)).toEqual(tapeRows(first.path));
    expect(keptSourceWorker()).not.toBe(kept);

    // Started ahead (the CLI does so while its commands load): the recording takes that thread,
    // so none is left idle while it runs, and keeps it after; a second prestart starts nothing.
    await endKeptSourceWorker();
    expect(keptSourceWorker()).toBeNull();
    expect(prestartSourceWorker()).toBe(true);
    const prestarted = keptSourceWorker();
    expect(prestarted).not.toBeNull();
    expect(prestartSourceWorker()).toBe(true);
    expect(keptSourceWorker()).toBe(prestarted);
    const idleDuring: (number | null)[] = [];
    const early = await record('prestarted.tape', { onProgress: () => idleDuring.push(keptSourceWorker()) });
    expect(idleDuring.length).toBeGreaterThan(0);
    expect(idleDuring.every((id) => id === null)).toBe(true);
    expect(keptSourceWorker()).toBe(prestarted);
    expect(tapeRows(early.path)).toEqual(tapeRows(first.path));
  });

  it("finishes a block at 4 MiB of data whatever its number of events (a user's large JSON events): the same tapes on the workers as on one thread", async () => {
    // Before, a block held 4,096 events however large: 4,096 events of 262 KB made a block past
    // SQLite's largest blob, and the recording failed with an internal error.
    const dir = tempDir();
    const enginePath = join(dir, 'big-events.mjs');
    const counter = pathToFileURL(join(REPO, 'examples', 'counter-engine.mjs')).href;
    writeFileSync(
      enginePath,
      `import base from ${JSON.stringify(counter)};\n` +
        `export default { ...base, name: 'big-events', generate(random, index) {\n` +
        `  return { event: { type: 'deposit', payload: { amount: random.int(1, 9), note: 'n'.repeat(190_000 + random.int(0, 20_000)) } }, partition: index % 3, key: 'k' + (index % 7) };\n} };\n`,
    );
    const engine = await loadEngine(enginePath);
    const input = join(dir, 'big.ndjson');
    const lines = Array.from({ length: 120 }, (_, i) => JSON.stringify({ timestampUs: 1_000_000 + i, partition: i % 3, key: `k${i % 7}`, type: 'deposit', payload: { amount: i, note: 'n'.repeat(150_000 + i * 500) } }));
    writeFileSync(input, lines.join('\n') + '\n');
    const common = { engine, engineSpec: enginePath, runSeed: 1, checkpointEvery: 10, snapshotEvery: 50 };
    for (const [name, source] of [
      ['synthetic', () => new EngineGeneratedSource(engine, { seed: 3, events: 120, ratePerSec: 1000 })],
      ['ndjson', () => new NdjsonSource({ input, codec: engine.codec })],
    ] as const) {
      const tapes: string[] = [];
      for (const pipeline of ['on', 'off'] as PipelineMode[]) {
        const path = join(dir, `${name}-${pipeline}.tape`);
        // Blocks in the tape at each commit: a commit comes once the blocks waiting hold 8 MiB
        // (RELAXED_COMMIT_BYTES), so these blocks of 4 MiB or more go in two at a time, not 32.
        const committed: number[] = [0];
        const result = await recordTape(source(), { ...common, path, pipeline, segmentBytes: 1 << 20, onProgress: (p) => committed.push(p.blocks) });
        expect(result).toMatchObject({ events: 120, pipelined: pipeline === 'on' });
        const perCommit = committed.slice(1).map((blocks, i) => blocks - committed[i]);
        expect(perCommit.length, `${name} ${pipeline}: ${perCommit.join(' ')}`).toBeGreaterThanOrEqual(3);
        expect(Math.max(...perCommit), `${name} ${pipeline}: ${perCommit.join(' ')}`).toBeLessThanOrEqual(2);
        tapes.push(path);
      }
      // (The blocks' data by digest: a deep comparison of 20 MB byte by byte takes minutes.)
      const digested = (path: string) => {
        const rows = tapeRows(path);
        const blocks = (rows.blocks as { data: Uint8Array; byte_length: number }[]).map((b) => ({ ...b, data: createHash('sha256').update(b.data).digest('hex') }));
        const snapshots = (rows.snapshots as { state: Uint8Array }[]).map((r) => ({ ...r, state: createHash('sha256').update(r.state).digest('hex') }));
        return { ...rows, blocks, snapshots };
      };
      const [on, off] = tapes.map(digested);
      const sizes = off.blocks.map((b) => b.byte_length);
      expect(sizes.length, name).toBeGreaterThanOrEqual(5);
      // At most the limit and the one event that passed it.
      expect(Math.max(...sizes), name).toBeLessThanOrEqual(BLOCK_MAX_BYTES + 220_000);
      expect(on, name).toEqual(off);
      expect(tapedeck(['replay', tapes[0], '--engine', enginePath]).status, name).toBe(0);
    }
  });

  it('commits quarantined lines once they hold 4 MiB of raw input, not only every 1,024, on the workers and on one thread', async () => {
    // Before, 1,024 rejected lines waited for a commit however long each was (up to
    // --max-line-bytes): 2,000 lines of 300 KB held 429 MB on one thread, and more on the workers.
    const dir = tempDir();
    const input = join(dir, 'bad.ndjson');
    writeFileSync(input, Array.from({ length: 100 }, (_, i) => `{"broken":${i},"pad":"${'x'.repeat(300_000)}`).join('\n') + '\n');
    const tapes: string[] = [];
    for (const pipeline of ['on', 'off'] as PipelineMode[]) {
      const path = join(dir, `${pipeline}.tape`);
      const reads: number[] = [];
      const result = await recordTape(new NdjsonSource({ input, codec: worldEngine.codec }), { ...recordOptions, path, pipeline, segmentBytes: 1 << 20, quarantine: true, onProgress: (p) => reads.push(p.read) });
      expect(result).toMatchObject({ quarantined: 100, pipelined: pipeline === 'on' });
      const steps = reads.map((r, i) => r - (i === 0 ? 0 : reads[i - 1]));
      // 4 MiB is 14 lines of 300 KB: a commit at most every 14.
      expect(Math.max(...steps), `${pipeline}: ${steps.join(' ')}`).toBeLessThanOrEqual(14);
      expect(reads.at(-1)).toBe(100);
      tapes.push(path);
    }
    // (Raw bytes by digest: a deep comparison of 30 MB byte by byte takes minutes.)
    const rejects = (path: string) => (tapeRows(path).rejects as { raw: Uint8Array }[]).map((r) => ({ ...r, raw: createHash('sha256').update(r.raw).digest('hex') }));
    expect(rejects(tapes[0])).toEqual(rejects(tapes[1]));
  });

  it('writes the same NDJSON tape as one thread, rejects included, in quarantine mode', async () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    // The corpus, then enough good lines for several blocks, then the corpus again (whose BOM,
    // no longer at the start of the file, makes its first line one more reject).
    const { bytes, goodLines, badCodes } = corpus();
    const many = Array.from({ length: 5000 }, (_, i) => good(1000 + (i % 400), 5000 + i)).join('\n') + '\n';
    writeFileSync(input, Buffer.concat([bytes, Buffer.from('\n' + many), bytes]));
    const tapes: string[] = [];
    for (const pipeline of ['on', 'off'] as PipelineMode[]) {
      const path = join(dir, `${pipeline}.tape`);
      const source = new NdjsonSource({ input, codec: worldEngine.codec, maxLineBytes: MAX_LINE });
      const result = await recordTape(source, { ...recordOptions, path, pipeline, quarantine: true });
      expect(result).toMatchObject({ pipelined: pipeline === 'on', accepted: 2 * goodLines - 1 + 5000, quarantined: 2 * badCodes.length + 1 });
      tapes.push(path);
    }
    const [on, off] = tapes.map(tapeRows);
    expect(on.rejects.length).toBe(2 * BAD.length + 1);
    expect(on).toEqual(off);
  });

  it('hashes keys the same way on the parse workers as on one thread (rejected lines included)', async () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 250 === 7 ? '{"timestampUs":1,"partition":0,"key":"secret-key","type":"teleport","payload":{"player":1}}' : good(i % 300, 1000 + i)));
    writeFileSync(input, lines.join('\n') + '\n');
    const tapes: string[] = [];
    for (const pipeline of ['on', 'off'] as PipelineMode[]) {
      const path = join(dir, `${pipeline}.tape`);
      const redactor = new Redactor({ redact: [], hash: ['key'] }, Buffer.from('k3y'));
      const source = new NdjsonSource({ input, codec: worldEngine.codec, redaction: { transform: redactor, record: redactor.record } });
      const result = await recordTape(source, { ...recordOptions, path, pipeline, segmentBytes: 20_000, quarantine: true });
      expect(result.pipelined).toBe(pipeline === 'on');
      tapes.push(path);
    }
    const [on, off] = tapes.map(tapeRows);
    expect(on.rejects.length).toBe(12);
    expect(Buffer.from((on.rejects[0] as { raw: Uint8Array }).raw).toString()).not.toContain('secret-key');
    expect(on).toEqual(off);
  });

  it('stops at the first bad line in strict mode with the same error, the lines before it committed', async () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    const lines = Array.from({ length: 2500 }, (_, i) => good(i % 300, 1000 + i));
    lines.splice(1777, 0, '{"timestampUs":1,"partition":0');
    writeFileSync(input, lines.join('\n') + '\n');
    const byteOffset = lines.slice(0, 1777).reduce((n, l) => n + l.length + 1, 0);
    const tapes: string[] = [];
    for (const pipeline of ['on', 'off'] as PipelineMode[]) {
      const path = join(dir, `${pipeline}.tape`);
      const source = new NdjsonSource({ input, codec: worldEngine.codec });
      const error = await recordTape(source, { ...recordOptions, path, pipeline }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).message).toContain(`${input} line 1778 (byte ${byteOffset}): not valid JSON`);
      expect((error as InputError).message).toContain('The 1,777 events before it are committed');
      tapes.push(path);
    }
    const [on, off] = tapes.map(tapeRows);
    expect(on).toEqual(off);
    expect(tapedeck(['verify', tapes[0]]).status).toBe(0);
  });

  it('stops when asked and resumes from what it committed: no event lost or repeated', async () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    writeFileSync(input, Array.from({ length: 40_000 }, (_, i) => good(i % 500, 1000 + i)).join('\n') + '\n');
    const path = join(dir, 'stopped.tape');
    const controller = new AbortController();
    const first = await recordTape(new NdjsonSource({ input, codec: worldEngine.codec }), {
      ...recordOptions,
      path,
      pipeline: 'on',
      onProgress: (p) => {
        if (p.events >= 10_000) controller.abort();
      },
      signal: controller.signal,
    });
    expect(first.stopped).toBe(true);
    expect(first.events).toBeLessThan(40_000);
    const resume = openResume(path, worldEngine, 'ndjson');
    const second = await recordTape(new NdjsonSource({ input, codec: worldEngine.codec, from: resume.position as NdjsonPosition }), {
      ...recordOptions,
      path,
      pipeline: 'on',
      resume,
    });
    expect(second.events).toBe(40_000);
    const straight = join(dir, 'straight.tape');
    await recordTape(new NdjsonSource({ input, codec: worldEngine.codec }), { ...recordOptions, path: straight, pipeline: 'off' });
    const a = tapeRows(path);
    const b = tapeRows(straight);
    // Block boundaries differ where the first run stopped, which also checkpointed its last
    // event; the events and the periodic checkpoints may not differ.
    const periodic = (rows: unknown[]) => rows.filter((r) => (r as { next_seq: number }).next_seq % 1000 === 0);
    expect(periodic(a.checkpoints)).toEqual(periodic(b.checkpoints));
    expect(periodic(a.checkpoints).length).toBe(40);
    const exportOf = (tape: string) => tapedeck(['export', tape, '--format', 'ndjson']).stdout;
    expect(exportOf(path)).toBe(exportOf(straight));
  });

  describe('NDJSON parsed by several workers, segment by segment', () => {
    /** Lines of every kind, with long lines that cross several small segments. */
    function mixedFile(dir: string): { input: string; lines: number } {
      const { text, lines } = mixedText(3000);
      const input = join(dir, 'mixed.ndjson');
      writeFileSync(input, text);
      return { input, lines };
    }

    it('writes the same tape as one thread when lines, long lines and rejects cross many segment boundaries', async () => {
      const dir = tempDir();
      const { input, lines } = mixedFile(dir);
      await expectSameAcrossSegments(dir, input, lines);
    });

    it('stops at a bad line in a later segment in strict mode, as one thread does', async () => {
      await expectSameStrictStop((dir, text) => {
        const input = join(dir, 'in.ndjson');
        writeFileSync(input, text);
        return input;
      });
    });

    it('resumes a file from the middle: segments start from the resume offset', async () => {
      const dir = tempDir();
      const { input } = mixedFile(dir);
      await expectStopAndResume(dir, input, 1000, (_first, resume) => {
        expect(resume.read).toBeGreaterThanOrEqual(1000);
        expect(resume.read).toBeLessThan(2000);
      });
    });
  });

  describe('a gzip file: its text decompressed here, in order, and fed to the parse workers segment by segment', () => {
    /** `text` gzipped in members of `member` bytes (so that lines are cut between zlib's chunks too). */
    function gzipMembers(text: Buffer, member: number): Buffer {
      const parts: Buffer[] = [];
      for (let at = 0; at < text.length; at += member) parts.push(gzipSync(text.subarray(at, at + member)));
      return Buffer.concat(parts);
    }
    function mixedGzip(dir: string, member = 50_000): { input: string; lines: number } {
      const { text, lines } = mixedText(6000);
      const input = join(dir, 'mixed.ndjson.gz');
      writeFileSync(input, gzipMembers(text, member));
      return { input, lines };
    }

    it('writes the same tape as one thread when lines, long lines and rejects cross many segment boundaries', async () => {
      const dir = tempDir();
      const { input, lines } = mixedGzip(dir);
      await expectSameAcrossSegments(dir, input, lines);
    });

    it('stops at a bad line in a later segment in strict mode, as one thread does', async () => {
      await expectSameStrictStop((dir, text) => {
        const input = join(dir, 'in.ndjson.gz');
        writeFileSync(input, gzipMembers(text, 7000));
        return input;
      });
    });

    it('gzip data cut short: the same error, and the same whole lines before it committed, as one thread', async () => {
      const dir = tempDir();
      const { input } = mixedGzip(dir, 1 << 20);
      const cut = join(dir, 'cut.ndjson.gz');
      const whole = readFileSync(input);
      writeFileSync(cut, whole.subarray(0, Math.floor(whole.length * 0.6)));
      const messages: string[] = [];
      const tapes: string[] = [];
      for (const pipeline of ['on', 'off'] as PipelineMode[]) {
        const path = join(dir, `${pipeline}.tape`);
        const error = await recordTape(new NdjsonSource({ input: cut, codec: worldEngine.codec, maxLineBytes: MAX_LINE }), { ...recordOptions, path, pipeline, segmentBytes: 3000, quarantine: true }).catch((e: unknown) => e);
        expect((error as { code?: string }).code).toBe('E_INPUT_GZIP');
        messages.push((error as Error).message);
        tapes.push(path);
      }
      expect(messages[0]).toBe(messages[1]);
      const [on, off] = tapes.map(tapeRows);
      expect(on.blocks.length).toBeGreaterThan(3);
      expect(on).toEqual(off);
    });

    it("stops when asked and resumes from the middle of the text: the positions' checksums hold, no event lost or repeated", async () => {
      const dir = tempDir();
      const { input } = mixedGzip(dir);
      await expectStopAndResume(dir, input, 2000, (first, resume) => {
        expect(first.stopped).toBe(true);
        expect(resume.read).toBeLessThan(4000);
        const position = resume.position as NdjsonPosition;
        expect(position.tailBytes).toBe(Math.min(65_536, position.byteOffset));
      });
    });
  });
});
