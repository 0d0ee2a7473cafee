import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ApplyContext, Engine } from '../../engine/types.js';
import { worldEngine, type WorldState } from '../../engine/world/index.js';
import type { WorldEvent } from '../../engine/world/events.js';
import { assertReplay, ReplayAssertionError } from '../../replayer/assert.js';
import { tapedeck, tempDir } from '../support/cli.js';

describe('assertReplay', () => {
  it('returns the result when every check holds, and throws a readable report when one fails', () => {
    const path = join(tempDir(), 't.tape');
    expect(tapedeck(['record', '--out', path, '--events', '8000', '--checkpoint-every', '1000']).status).toBe(0);
    expect(assertReplay(path).events).toBe(8000);
    const broken: Engine = {
      ...(worldEngine as unknown as Engine),
      version: 'broken',
      apply(state, event, ctx) {
        const s = worldEngine.apply(state as WorldState, event as WorldEvent, ctx as ApplyContext<never>);
        if (ctx.seq === 6543) {
          for (let id = 0; id < s.playerCapacity; id++) {
            if (!s.isPlayer(id)) continue;
            s.playerHealth[id] = 7;
            s.rehashPlayer(id);
          }
        }
        return s;
      },
    };
    let error: unknown;
    try {
      assertReplay(path, { engine: broken });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ReplayAssertionError);
    const message = (error as Error).message;
    expect(message).toMatch(/checkpoint after event 6999: recorded [0-9a-f]{16}, replayed [0-9a-f]{16}/);
    expect(message).toMatch(/first divergent event: 6543 /);
    expect(message).toMatch(/players\.\d+\.health: \d+ -> 7/);
    expect((error as ReplayAssertionError).result.firstDivergentSeq).toBe(6543);
  });
});
