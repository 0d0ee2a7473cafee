// Helpers for tests of the `world` engine: a small world where ids, zones and positions
// collide often, an arbitrary for its events, and a straight runner.

import fc from 'fast-check';
import { RunContext } from '../../engine/context.js';
import { worldEngine } from '../../engine/world/index.js';
import { WorldEventKind, worldEvent, type WorldEvent } from '../../engine/world/events.js';
import type { WorldState } from '../../engine/world/state.js';

export const SMALL_WORLD = { zones: 2, arenaSize: 64, respawnDelayUs: 1000, shootRange: 40, maxStep: 8 };

const player = fc.integer({ min: 0, max: 5 });
const treasure = fc.integer({ min: 0, max: 5 });
const zone = fc.integer({ min: 0, max: 2 }); // 2 is outside SMALL_WORLD: such events are ignored
const coordinate = fc.integer({ min: 0, max: 70 }); // likewise beyond 63

export const worldEventArb: fc.Arbitrary<WorldEvent> = fc.oneof(
  fc.tuple(player, zone, coordinate, coordinate).map(([p, z, x, y]) => worldEvent(WorldEventKind.join, p, 0, z, x, y)),
  player.map((p) => worldEvent(WorldEventKind.leave, p)),
  fc.tuple(player, fc.integer({ min: -20, max: 20 }), fc.integer({ min: -20, max: 20 })).map(([p, dx, dy]) => worldEvent(WorldEventKind.move, p, 0, 0, dx, dy)),
  fc.tuple(player, fc.integer({ min: 0, max: 65535 })).map(([p, a]) => worldEvent(WorldEventKind.rotate, p, 0, 0, 0, 0, a)),
  fc.tuple(player, player, fc.integer({ min: 0, max: 255 })).map(([p, t, d]) => worldEvent(WorldEventKind.shoot, p, t, 0, 0, 0, d)),
  fc.tuple(player, treasure).map(([p, t]) => worldEvent(WorldEventKind.loot, p, t)),
  fc.tuple(treasure, zone, coordinate, coordinate, fc.integer({ min: 0, max: 65535 })).map(([t, z, x, y, v]) => worldEvent(WorldEventKind.spawn, t, 0, z, x, y, v)),
);

export interface TimedEvent {
  readonly gapUs: number;
  readonly event: WorldEvent;
}

export const worldStreamArb = (maxLength = 150): fc.Arbitrary<TimedEvent[]> =>
  fc.array(fc.record({ gapUs: fc.integer({ min: 0, max: 800 }), event: worldEventArb }), { maxLength });

/** Apply events [from, to) to `state` with a context positioned as a full run would be. */
export function runWorld(
  stream: readonly TimedEvent[],
  options: { state?: WorldState; from?: number; to?: number; runSeed?: number; ctx?: RunContext } = {},
): { state: WorldState; ctx: RunContext } {
  const ctx = options.ctx ?? new RunContext(options.runSeed ?? 1);
  let state = options.state ?? worldEngine.init(SMALL_WORLD);
  const from = options.from ?? 0;
  const to = options.to ?? stream.length;
  let t = 1_000_000;
  for (let i = 0; i < to; i++) {
    t += stream[i].gapUs;
    if (i < from) continue;
    ctx.prepare(i, t, 0);
    state = worldEngine.apply(state, stream[i].event, ctx);
  }
  return { state, ctx };
}
