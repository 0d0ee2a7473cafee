// Simulation support for the built-in `world` engine: a small world (2 zones, a 64x64 arena,
// 6 players, 6 treasures) where players, treasures and zones collide often, so a handful of
// events reaches the interesting states (a loot of a treasure someone holds, a shot at a dead
// player, a spawn onto a live id). Partitions follow the key, as Kafka's default partitioner
// does: a player's actions go to partition (player mod 2), a treasure spawn to (treasure mod 2).
//
// The world claims neither idempotence (a move delivered twice moves twice) nor convergence
// (respawns draw from the event's seq-seeded randomness and read the virtual clock).

import fc from 'fast-check';
import type { EngineSimulation, SimulatedEvent } from '../engine/types.js';
import { WorldEventKind, worldEvent, type WorldEvent } from '../engine/world/events.js';

export const SIM_WORLD_OPTIONS = { zones: 2, arenaSize: 64, respawnDelayUs: 1000, shootRange: 40, maxStep: 8 };
const PARTITIONS = 2;

function worldEvents(): fc.Arbitrary<SimulatedEvent<WorldEvent>> {
  const player = fc.integer({ min: 0, max: 5 });
  const treasure = fc.integer({ min: 0, max: 5 });
  const zone = fc.integer({ min: 0, max: 2 }); // 2 is outside the world: such events are ignored
  const coordinate = fc.integer({ min: 0, max: 70 }); // likewise beyond 63
  const byPlayer = (p: number, event: WorldEvent) => ({ event, partition: p % PARTITIONS, key: String(p) });
  const event = fc.oneof(
    fc.tuple(player, zone, coordinate, coordinate).map(([p, z, x, y]) => byPlayer(p, worldEvent(WorldEventKind.join, p, 0, z, x, y))),
    player.map((p) => byPlayer(p, worldEvent(WorldEventKind.leave, p))),
    fc.tuple(player, fc.integer({ min: -20, max: 20 }), fc.integer({ min: -20, max: 20 })).map(([p, dx, dy]) => byPlayer(p, worldEvent(WorldEventKind.move, p, 0, 0, dx, dy))),
    fc.tuple(player, fc.integer({ min: 0, max: 65535 })).map(([p, a]) => byPlayer(p, worldEvent(WorldEventKind.rotate, p, 0, 0, 0, 0, a))),
    fc.tuple(player, player, fc.integer({ min: 0, max: 255 })).map(([p, t, d]) => byPlayer(p, worldEvent(WorldEventKind.shoot, p, t, 0, 0, 0, d))),
    fc.tuple(player, treasure).map(([p, t]) => byPlayer(p, worldEvent(WorldEventKind.loot, p, t))),
    fc
      .tuple(treasure, zone, coordinate, coordinate, fc.integer({ min: 0, max: 65535 }))
      .map(([t, z, x, y, v]) => ({ event: worldEvent(WorldEventKind.spawn, t, 0, z, x, y, v), partition: t % PARTITIONS, key: `t${t}` })),
  );
  return fc.tuple(event, fc.integer({ min: 0, max: 800 })).map(([e, gapUs]) => ({ ...e, gapUs }));
}

export const worldSimulation: EngineSimulation<WorldEvent> = {
  events: () => worldEvents(),
  options: SIM_WORLD_OPTIONS,
  idempotent: false,
  convergent: false,
};
