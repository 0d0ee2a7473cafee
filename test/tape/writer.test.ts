// The tape writer's background flush of the WAL (tape/writer.ts, flushWalAhead): a relaxed
// recording large enough to flush several times ends with a sound, self-contained tape and
// leaves no file descriptor behind.

import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { TapeReader } from '../../tape/reader.js';
import { tapedeck, tempDir } from '../support/cli.js';

/** Descriptors this process holds open on `path` or its -wal/-shm files. */
function openOn(path: string): string[] {
  const dir = '/proc/self/fd';
  const targets: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      const target = readlinkSync(join(dir, fd));
      if (target.startsWith(path)) targets.push(target);
    } catch {
      // The descriptor closed while listing.
    }
  }
  return targets;
}

describe('tape writer', () => {
  it.runIf(existsSync('/proc/self/fd'))('flushes the WAL of a relaxed tape in the background and leaves nothing open once closed', async () => {
    const path = join(tempDir(), 'flushed.tape');
    // About 7 MiB of blocks: the WAL is flushed ahead at least once.
    const result = await recordTape(new WorldTrafficSource({ seed: 3, events: 300_000 }), { path, engine: worldEngine, runSeed: 3, pipeline: 'off' });
    expect(result.events).toBe(300_000);
    // A flush still running when the tape closed lets go of its descriptor when it ends.
    for (let i = 0; i < 100 && openOn(path).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(openOn(path)).toEqual([]);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reader = TapeReader.open(path);
    expect(reader.summary().events).toBe(300_000);
    reader.close();
    expect(tapedeck(['verify', path]).status).toBe(0);
  });
});
