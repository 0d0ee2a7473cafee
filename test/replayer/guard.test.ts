// The determinism guard: engine code that reads the wall clock, draws ambient randomness or
// sets timers during replay is caught, named, and located at its event.

import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ApplyContext, Engine } from '../../engine/types.js';
import { worldEngine, type WorldState } from '../../engine/world/index.js';
import type { WorldEvent } from '../../engine/world/events.js';
import { replayTape } from '../../replayer/replay.js';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

function engineCalling(at: number, call: () => unknown, swallow = false): Engine {
  return {
    ...(worldEngine as unknown as Engine),
    apply(state, event, ctx) {
      if (ctx.seq === at) {
        if (swallow) {
          try {
            call();
          } catch {
            // An engine that hides the error is still caught.
          }
        } else {
          call();
        }
      }
      return worldEngine.apply(state as WorldState, event as WorldEvent, ctx as ApplyContext<never>);
    },
  };
}

describe('determinism guard', () => {
  const path = join(tempDir(), 't.tape');

  it('catches Date.now(), new Date(), Math.random(), performance.now() and timers, naming the API and the event', () => {
    expect(tapedeck(['record', '--out', path, '--events', '3000', '--checkpoint-every', '500']).status).toBe(0);
    const cases: [string, () => unknown, boolean][] = [
      ['Date.now()', () => Date.now(), false],
      ['new Date()', () => new Date(), false],
      ['Math.random()', () => Math.random(), true],
      ['performance.now()', () => performance.now(), false],
      ['setTimeout()', () => setTimeout(() => undefined, 1), true],
    ];
    for (const [api, call, swallow] of cases) {
      const result = replayTape(path, { engine: engineCalling(777, call, swallow) });
      expect(result.ok, api).toBe(false);
      expect(result.determinismViolation, api).toMatchObject({ api, seq: 777, event: { type: expect.any(String) } });
      expect(result.events).toBe(777);
    }
    // The real APIs are back afterwards, and a deterministic Date use is allowed.
    expect(typeof Date.now()).toBe('number');
    expect(Math.random()).toBeLessThan(1);
    const fixed = replayTape(path, { engine: engineCalling(5, () => new Date(0).toISOString()) });
    expect(fixed).toMatchObject({ ok: true, determinismViolation: null });
  });

  it('the CLI exits 1 and says which API, at which event', () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '2000']).status).toBe(0);
    const module = join(dir, 'clocky.mjs');
    writeFileSync(
      module,
      `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist', 'index.js')).href)};\n` +
        'export default { ...worldEngine, apply(state, event, ctx) { if (ctx.seq === 1500) Date.now(); return worldEngine.apply(state, event, ctx); } };\n',
    );
    const r = tapedeck(['replay', tape, '--engine', module]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/NONDETERMINISTIC\s+engine code called Date\.now\(\) while applying event 1500: \{"type":/);
  });
});

describe('--check-determinism', () => {
  it('agrees for the world engine, and names the first checkpoint where two processes differ for an engine that is not deterministic', () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '6000', '--checkpoint-every', '1000']).status).toBe(0);
    const same = tapedeck(['replay', tape, '--check-determinism', '--json']);
    expect(same.status).toBe(0);
    expect(same.json()).toMatchObject({ ok: true, checkpointsCompared: 6, firstDifference: null });
    // Randomness from node:crypto, which the guard does not trap: only comparing runs shows it.
    const module = join(dir, 'lucky.mjs');
    writeFileSync(
      module,
      `import { randomInt } from 'node:crypto';\nimport { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist', 'index.js')).href)};\n` +
        'export default { ...worldEngine, apply(state, event, ctx) { const s = worldEngine.apply(state, event, ctx); if (ctx.seq === 3500) { s.treasuresSpawned += randomInt(1, 2 ** 40); } return s; } };\n',
    );
    const r = tapedeck(['replay', tape, '--engine', module, '--check-determinism', '--json']);
    expect(r.status).toBe(1);
    expect(r.json()).toMatchObject({ ok: false, firstDifference: { nextSeq: 4000 } });
  });
});
