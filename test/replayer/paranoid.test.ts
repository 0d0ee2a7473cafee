import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ApplyContext, Engine } from '../../engine/types.js';
import { worldEngine, type WorldState } from '../../engine/world/index.js';
import type { WorldEvent } from '../../engine/world/events.js';
import { replayTape } from '../../replayer/replay.js';
import { tapedeck, tempDir } from '../support/cli.js';

describe('--paranoid', () => {
  it('checks invariants after every event, catching a violation that heals before the next checkpoint', () => {
    const path = join(tempDir(), 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '6000', '--checkpoint-every', '1000']).status).toBe(0);
    // Breaks treasure accounting at event 2500 and repairs it at 2501.
    const flaky: Engine = {
      ...(worldEngine as unknown as Engine),
      apply(state, event, ctx) {
        const s = worldEngine.apply(state as WorldState, event as WorldEvent, ctx as ApplyContext<never>);
        if (ctx.seq === 2500) s.treasuresAvailable += 1;
        if (ctx.seq === 2501) s.treasuresAvailable -= 1;
        return s;
      },
    };
    expect(replayTape(path, { engine: flaky })).toMatchObject({ ok: true, invariantViolations: 0 });
    const paranoid = replayTape(path, { engine: flaky, paranoid: true });
    expect(paranoid.ok).toBe(false);
    expect(paranoid.invariantViolationList).toHaveLength(1);
    expect(paranoid.invariantViolationList[0].nextSeq).toBe(2501);
    expect(paranoid.invariantViolationList[0].violations.map((v) => v.code)).toContain('treasure-counter-mismatch');
  });
});
