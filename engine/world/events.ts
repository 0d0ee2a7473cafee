// The events of the reference `world` engine: the game backend from the story.
//
// In memory every event has the same shape (one hidden class, so the engine's hot loop stays
// monomorphic); which fields mean what depends on `kind`, as the table below says. The JSON
// form (see codec.ts) names the fields per kind.
//
//   kind    id        other      zone  x     y     amount
//   join    player    -          zone  x     y     -
//   leave   player    -          -     -     -     -
//   move    player    -          -     dx    dy    -
//   rotate  player    -          -     -     -     angle (1/65536 turns)
//   shoot   player    target     -     -     -     damage
//   loot    player    treasure   -     -     -     -
//   spawn   treasure  -          zone  x     y     value

export const WorldEventKind = {
  join: 0,
  leave: 1,
  move: 2,
  rotate: 3,
  shoot: 4,
  loot: 5,
  spawn: 6,
} as const;
export type WorldEventKind = (typeof WorldEventKind)[keyof typeof WorldEventKind];

export const WORLD_EVENT_KIND_NAMES = ['join', 'leave', 'move', 'rotate', 'shoot', 'loot', 'spawn'] as const;
export type WorldEventKindName = (typeof WORLD_EVENT_KIND_NAMES)[number];

export interface WorldEvent {
  kind: WorldEventKind;
  id: number;
  other: number;
  zone: number;
  x: number;
  y: number;
  amount: number;
}

/** Limits of the world, enforced by the codec so that the engine never sees out-of-range input. */
export const WORLD_LIMITS = {
  /** Player and treasure ids are in [0, maxId]. */
  maxId: (1 << 24) - 1,
  /** Zones (shards) are in [0, maxZone]. */
  maxZone: 65535,
  /** Coordinates within a zone's arena are in [0, maxCoordinate]. */
  maxCoordinate: 65535,
  /** Moves are deltas in [-maxStep, maxStep]. */
  maxStep: 32767,
  maxAngle: 65535,
  maxDamage: 255,
  maxValue: 65535,
} as const;

export function worldEvent(
  kind: WorldEventKind,
  id: number,
  other = 0,
  zone = 0,
  x = 0,
  y = 0,
  amount = 0,
): WorldEvent {
  return { kind, id, other, zone, x, y, amount };
}

export const join = (player: number, zone: number, x: number, y: number): WorldEvent =>
  worldEvent(WorldEventKind.join, player, 0, zone, x, y);
export const leave = (player: number): WorldEvent => worldEvent(WorldEventKind.leave, player);
export const move = (player: number, dx: number, dy: number): WorldEvent =>
  worldEvent(WorldEventKind.move, player, 0, 0, dx, dy);
export const rotate = (player: number, angle: number): WorldEvent =>
  worldEvent(WorldEventKind.rotate, player, 0, 0, 0, 0, angle);
export const shoot = (player: number, target: number, damage: number): WorldEvent =>
  worldEvent(WorldEventKind.shoot, player, target, 0, 0, 0, damage);
export const loot = (player: number, treasure: number): WorldEvent =>
  worldEvent(WorldEventKind.loot, player, treasure);
export const spawn = (treasure: number, zone: number, x: number, y: number, value: number): WorldEvent =>
  worldEvent(WorldEventKind.spawn, treasure, 0, zone, x, y, value);
