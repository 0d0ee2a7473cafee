// Corruption: byte flips, truncations and zeroed pages in copies of a tape. Every copy whose
// content changed is reported by verify, and no reader hands out an altered event.

import { copyFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../engine/random.js';
import { replayTape } from '../../replayer/replay.js';
import { TapeError } from '../../tape/errors.js';
import { TapeReader } from '../../tape/reader.js';
import { verifyTape } from '../../tape/verify.js';
import { tapedeck, tempDir } from '../support/cli.js';

const TABLES = ['meta', 'blocks', 'block_sources', 'checkpoints', 'snapshots', 'source_positions', 'rejects'];
const PAGE = 65536;

/** Every row of every table, blobs in hex; throws when SQLite cannot read the file. */
function dump(path: string, tables = TABLES): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const out: Record<string, unknown[]> = {};
    for (const table of tables) {
      out[table] = (db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).all() as Record<string, unknown>[]).map((row) =>
        Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v])),
      );
    }
    return JSON.stringify(out);
  } finally {
    db.close();
  }
}

/** What a replay reads: the metadata, the events and the checkpoints. */
const REPLAYED = ['meta', 'blocks', 'checkpoints'];

/** Events as a reader hands them out, stopping at the first error (which it returns). */
function readEvents(path: string): { events: string[]; error: unknown } {
  const events: string[] = [];
  let reader: TapeReader | null = null;
  try {
    reader = TapeReader.open(path);
    for (const cursor of reader.blocks(0)) {
      while (reader.advance(cursor)) events.push(`${cursor.seq}|${cursor.timestampUs}|${cursor.partition}|${cursor.position}|${Buffer.from(cursor.payload()).toString('hex')}`);
    }
    return { events, error: null };
  } catch (error) {
    return { events, error };
  } finally {
    reader?.close();
  }
}

describe('corruption', () => {
  it('verify reports every damaged copy (200+ flips, truncations, zeroed pages) and no reader returns altered events', () => {
    const seed = Number(process.env.TAPEDECK_SEED ?? Date.now() % 1_000_000);
    console.log(`[corruption] seed ${seed} (rerun: TAPEDECK_SEED=${seed} npx vitest run test/e2e/corruption.test.ts)`);
    const random = new SeededRandom(seed);
    const dir = tempDir();
    const original = join(dir, 'original.tape');
    expect(tapedeck(['record', '--out', original, '--events', '30000', '--block-events', '500', '--checkpoint-every', '1000', '--snapshot-every', '5000']).status).toBe(0);
    const originalDump = dump(original);
    const originalBlocks = dump(original, ['blocks']);
    const originalReplayed = dump(original, REPLAYED);
    const originalEvents = readEvents(original);
    expect(originalEvents.error).toBeNull();
    const size = statSync(original).size;
    const bytes = readFileSync(original);

    const counts = { copies: 0, contentChanged: 0, blocksChanged: 0, detected: 0, replayedChanged: 0, replayRefused: 0 };
    const copy = join(dir, 'copy.tape');
    for (let i = 0; i < 210; i++) {
      const kind = i < 140 ? 'flip' : i < 175 ? 'truncate' : 'zero-page';
      copyFileSync(original, copy);
      let what: string;
      if (kind === 'flip') {
        const offset = random.int(0, size - 1);
        const damaged = Buffer.from(bytes);
        damaged[offset] ^= random.int(1, 255);
        writeFileSync(copy, damaged);
        what = `flip at byte ${offset}`;
      } else if (kind === 'truncate') {
        const length = random.int(0, size - 1);
        truncateSync(copy, length);
        what = `truncate to ${length} bytes`;
      } else {
        const page = random.int(0, Math.floor(size / PAGE) - 1);
        const damaged = Buffer.from(bytes);
        damaged.fill(0, page * PAGE, (page + 1) * PAGE);
        writeFileSync(copy, damaged);
        what = `zero page ${page}`;
      }
      counts.copies++;
      const differs = (tables: string[], expected: string): boolean => {
        try {
          return dump(copy, tables) !== expected;
        } catch {
          return true;
        }
      };
      const changed = differs(TABLES, originalDump);
      const blocksChanged = differs(['blocks'], originalBlocks);
      const replayedChanged = differs(REPLAYED, originalReplayed);
      const report = verifyTape(copy);
      if (changed) {
        counts.contentChanged++;
        expect(report.ok, `${what}: content changed but verify passed`).toBe(false);
        counts.detected++;
      }
      if (blocksChanged) counts.blocksChanged++;
      // Whatever the damage, a reader hands out the original events, up to an error.
      const read = readEvents(copy);
      expect(read.events, `${what}: a reader returned altered events`).toEqual(originalEvents.events.slice(0, read.events.length));
      if (read.error === null) expect(read.events.length, `${what}: events missing without an error`).toBe(originalEvents.events.length);
      else expect(read.error, what).toBeInstanceOf(TapeError);
      // Replay refuses (a TapeError: exit 2) a tape whose events, metadata or checkpoints changed.
      let replayError: unknown = null;
      try {
        replayTape(copy);
      } catch (error) {
        replayError = error;
      }
      if (replayError !== null) {
        expect(replayError, what).toBeInstanceOf(TapeError);
        counts.replayRefused++;
      }
      if (replayedChanged) {
        counts.replayedChanged++;
        expect(replayError, `${what}: replay accepted a tape whose events, metadata or checkpoints changed`).not.toBeNull();
      }
    }
    console.log(`[corruption] ${JSON.stringify(counts)}`);
    expect(counts.copies).toBeGreaterThanOrEqual(200);
    expect(counts.blocksChanged).toBeGreaterThan(50);
    expect(counts.detected).toBe(counts.contentChanged);
    expect(counts.replayRefused).toBeGreaterThanOrEqual(counts.replayedChanged);
  });
});
