// The tape writer's background checkpoints (tape/checkpointer.ts): a recording large enough
// to start them ends with a sound, self-contained tape (the thread's connection closed before
// the writer left WAL mode) and leaves no file descriptor behind.

import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { worldEngine } from '../../engine/world/index.js';
import { recordTape } from '../../recorder/record.js';
import { WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { TapeReader } from '../../tape/reader.js';
import { backgroundCheckpointJobs } from '../../tape/checkpointer.js';
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
  it.runIf(existsSync('/proc/self/fd'))('checkpoints a large tape in the background and leaves a self-contained tape, nothing open, once closed', async () => {
    const path = join(tempDir(), 'checkpointed.tape');
    const before = backgroundCheckpointJobs();
    // About 7 MiB of blocks: the background checkpoints start at 4 MiB.
    const result = await recordTape(new WorldTrafficSource({ seed: 3, events: 300_000 }), { path, engine: worldEngine, runSeed: 3, pipeline: 'off' });
    expect(result.events).toBe(300_000);
    expect(backgroundCheckpointJobs()).toBe(before + 1);
    expect(openOn(path)).toEqual([]);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reader = TapeReader.open(path);
    expect(reader.summary().events).toBe(300_000);
    reader.close();
    expect(tapedeck(['verify', path]).status).toBe(0);
  });
});
