// Crash safety: kill -9 the recorder at 20 or more random points; after each kill the tape
// verifies and --resume continues; the final tape holds exactly the source, in order.

import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tapedeck, tempDir, writeGeneratedNdjson } from '../support/cli.js';
import { killRandom, killUntilDone } from '../support/kill.js';

const KILLS = 20;
/**
 * Each kill by progress needs a commit of its own, and a file or the generator is committed 32
 * blocks at a time: blocks of 1,024 events make a commit every 32,768 events, about 30 in a
 * 1M-event recording (with the default 4,096, about 8).
 */
const BLOCK_EVENTS = ['--block-events', '1024'];
/**
 * The generator: blocks of 512 events, a commit every 16,384, about 61 in 1M events. Since the
 * generator packs in WebAssembly the recording runs at 3-4M events/s, so a commit comes every 5
 * ms or so, as often as the test polls the tape: with a commit every 32,768 events each kill
 * landed a commit or two past its target, and a run made 18 kills before the events ran out.
 */
const GENERATOR_BLOCK_EVENTS = ['--block-events', '512'];

describe('crash safety', () => {
  it('kill -9 while recording a 1M-line NDJSON file: verify passes after each kill, resume loses and duplicates nothing', async () => {
    const seed = Number(process.env.TAPEDECK_SEED ?? Date.now() % 1_000_000);
    console.log(`[crash] ndjson: seed ${seed} (rerun: TAPEDECK_SEED=${seed} npx vitest run test/e2e/crash.test.ts)`);
    const dir = tempDir();
    const source = join(dir, 'source.ndjson');
    writeGeneratedNdjson(source, 1_000_000, seed % 1000);
    const tape = join(dir, 'crash.tape');
    const { kills, points } = await killUntilDone({ args: ['record', '--source', 'ndjson', '--input', source, ...BLOCK_EVENTS], tape, events: 1_000_000, random: killRandom(seed), label: `ndjson, seed ${seed}` });
    console.log(`[crash] ndjson: ${kills} kills (planned events committed + ms, or ms after start : events the tape held after the kill): ${points}`);
    expect(kills, points).toBeGreaterThanOrEqual(KILLS);
    expect(tapedeck(['verify', tape]).status).toBe(0);
    const roundTrip = join(dir, 'back.ndjson');
    expect(tapedeck(['export', tape, '--out', roundTrip]).status).toBe(0);
    // Byte-equal: every line once, in order.
    expect(readFileSync(roundTrip).equals(readFileSync(source))).toBe(true);
    const report = tapedeck(['inspect', tape, '--json']).json<{ events: number; sourcePositions: { read: number }[] }>();
    expect(report.events).toBe(1_000_000);
    expect(report.sourcePositions[0].read).toBe(1_000_000);
    expect(tapedeck(['replay', tape]).status).toBe(0);
  });

  it('kill -9 while recording a synthetic stream: the resumed tape equals a straight recording', async () => {
    const seed = Number(process.env.TAPEDECK_SEED ?? Date.now() % 1_000_000) + 1;
    console.log(`[crash] synthetic: seed ${seed} (rerun: TAPEDECK_SEED=${seed - 1} npx vitest run test/e2e/crash.test.ts)`);
    const dir = tempDir();
    const args = ['record', '--events', '1000000', '--seed', String(seed % 1000), ...GENERATOR_BLOCK_EVENTS];
    const straight = join(dir, 'straight.tape');
    const straightRun = tapedeck([...args, '--out', straight, '--json']);
    expect(straightRun.status).toBe(0);
    const tape = join(dir, 'crash.tape');
    const { kills, points } = await killUntilDone({ args, tape, events: 1_000_000, random: killRandom(seed), label: `synthetic, seed ${seed}` });
    console.log(`[crash] synthetic: ${kills} kills (planned events committed + ms, or ms after start : events the tape held after the kill): ${points}`);
    expect(kills, points).toBeGreaterThanOrEqual(KILLS);
    expect(tapedeck(['verify', tape]).status).toBe(0);
    // Exports to files: 1M events are far more than a child's stdout buffer holds.
    expect(tapedeck(['export', straight, '--out', join(dir, 'straight.ndjson')]).status).toBe(0);
    expect(tapedeck(['export', tape, '--out', join(dir, 'crash.ndjson')]).status).toBe(0);
    const a = readFileSync(join(dir, 'straight.ndjson'));
    const b = readFileSync(join(dir, 'crash.ndjson'));
    expect(b.length).toBeGreaterThan(100_000_000);
    expect(b.equals(a)).toBe(true);
    const replay = tapedeck(['replay', tape, '--json']).json<{ ok: boolean; finalDigest: string }>();
    expect(replay).toMatchObject({ ok: true, finalDigest: straightRun.json<{ finalDigest: string }>().finalDigest });
  });

  it('kill -9 while recording a gzip-compressed NDJSON file: each --resume decompresses up to the stored offset and loses and duplicates nothing', async () => {
    const seed = Number(process.env.TAPEDECK_SEED ?? Date.now() % 1_000_000) + 2;
    console.log(`[crash] gzip: seed ${seed} (rerun: TAPEDECK_SEED=${seed - 2} npx vitest run test/e2e/crash.test.ts)`);
    const dir = tempDir();
    const source = join(dir, 'source.ndjson');
    // 600,000 lines: committed 32,768 events at a time (BLOCK_EVENTS), and each kill by progress
    // needs a commit of its own, so 300,000 lines (9 commits before the last) left the 10 kills
    // to chance (a run made 9, the recording finishing before the tenth).
    writeGeneratedNdjson(source, 600_000, seed % 1000);
    const gz = join(dir, 'source.ndjson.gz');
    writeFileSync(gz, gzipSync(readFileSync(source)));
    const tape = join(dir, 'crash.tape');
    const { kills, points } = await killUntilDone({ args: ['record', '--source', 'ndjson', '--input', gz, ...BLOCK_EVENTS], tape, events: 600_000, planned: 10, random: killRandom(seed), label: `gzip, seed ${seed}` });
    console.log(`[crash] gzip: ${kills} kills (planned events committed + ms, or ms after start : events the tape held after the kill): ${points}`);
    expect(kills, points).toBeGreaterThanOrEqual(10);
    expect(tapedeck(['verify', tape]).status).toBe(0);
    const roundTrip = join(dir, 'back.ndjson');
    expect(tapedeck(['export', tape, '--out', roundTrip]).status).toBe(0);
    expect(readFileSync(roundTrip).equals(readFileSync(source))).toBe(true);
    expect(tapedeck(['replay', tape]).status).toBe(0);
  });
});
