// Replaying through an engine variant that behaves differently from a chosen event onwards:
// replay fails and names exactly that event; bisect names it too.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ApplyContext, Engine } from '../../engine/types.js';
import { worldEngine, type WorldState } from '../../engine/world/index.js';
import type { WorldEvent } from '../../engine/world/events.js';
import { replayTape } from '../../replayer/replay.js';
import { SeededRandom } from '../../engine/random.js';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

const EVENTS = 5000;

/** The world engine with a bug from event `k` on: every event also counts a spawn. */
function variant(k: number): Engine {
  return {
    ...(worldEngine as unknown as Engine),
    version: `1.0.0-diverges-at-${k}`,
    apply(state, event, ctx) {
      const s = worldEngine.apply(state as WorldState, event as WorldEvent, ctx as ApplyContext<never>);
      if (ctx.seq >= k) s.treasuresSpawned++;
      return s;
    },
  };
}

function recordTape(dir: string): string {
  const path = join(dir, 't.tape');
  expect(tapedeck(['record', '--out', path, '--events', String(EVENTS), '--checkpoint-every', '1000', '--snapshot-every', '2000', '--block-events', '700']).status).toBe(0);
  return path;
}

describe('divergence', () => {
  it('replay names exactly the first divergent event, wherever it is (first, last, around checkpoints, random)', () => {
    const seed = Number(process.env.TAPEDECK_SEED ?? Date.now() % 1_000_000);
    console.log(`[divergence] seed ${seed} (rerun: TAPEDECK_SEED=${seed} npx vitest run test/replayer/divergence.test.ts)`);
    const random = new SeededRandom(seed);
    const path = recordTape(tempDir());
    const chosen = [0, 1, 998, 999, 1000, 1001, 1999, 2000, 2001, EVENTS - 1, random.int(0, EVENTS - 1), random.int(0, EVENTS - 1)];
    for (const k of chosen) {
      const result = replayTape(path, { engine: variant(k) });
      expect(result.ok, `diverging at ${k}`).toBe(false);
      expect(result.firstDivergentSeq, `diverging at ${k}`).toBe(k);
      expect(result.divergence!.differences).toContainEqual(expect.objectContaining({ path: 'counters.treasuresSpawned' }));
      expect(result.divergence!.event).toMatchObject({ type: expect.any(String) });
    }
    const same = replayTape(path, { engine: worldEngine as unknown as Engine });
    expect(same).toMatchObject({ ok: true, firstDivergentSeq: null, divergence: null });
  });

  it('the CLI: replay exits 1 with firstDivergentSeq, and bisect names the event and the state difference', () => {
    const dir = tempDir();
    const path = recordTape(dir);
    const module = join(dir, 'variant.mjs');
    writeFileSync(
      module,
      `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist', 'index.js')).href)};\n` +
        'export default { ...worldEngine, version: "1.0.1", apply(state, event, ctx) {\n' +
        '  const s = worldEngine.apply(state, event, ctx);\n' +
        '  if (ctx.seq >= 1234) s.treasuresSpawned++;\n' +
        '  return s;\n} };\n',
    );
    const replay = tapedeck(['replay', path, '--engine', module, '--json']);
    expect(replay.status).toBe(1);
    expect(replay.json()).toMatchObject({ ok: false, firstDivergentSeq: 1234 });
    const human = tapedeck(['replay', path, '--engine', module]);
    expect(human.stdout).toMatch(/DIVERGED\s+first at event 1234 /);
    expect(human.stdout).toMatch(/counters\.treasuresSpawned: \d+ -> \d+/);

    const bisect = tapedeck(['bisect', path, '--engine', 'world', '--against', module, '--json']);
    expect(bisect.status).toBe(1);
    expect(bisect.json()).toMatchObject({ ok: false, firstDivergentSeq: 1234 });
    const agree = tapedeck(['bisect', path, '--engine', 'world', '--against', 'world']);
    expect(agree.status).toBe(0);
    expect(agree.stdout).toMatch(/OK: the two engines agree after every event/);
  });
});
