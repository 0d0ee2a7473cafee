// The rules of the `world` game. An action that the rules do not allow (a dead player moving,
// looting a treasure someone already holds, shooting into another zone) leaves the state as
// it was: clients send such actions all the time, and they are not input errors.
//
//  join    adds the player at (x, y) in `zone` with full health; ignored if present or out of bounds.
//  leave   removes the player; the treasures they held are banked: they leave the world (the
//          bank is account storage, not game state) and are counted in treasuresBanked.
//  move    moves by (dx, dy), each clamped to maxStep, then to the arena.
//  rotate  sets the facing angle.
//  shoot   damages a living target in the same zone within shootRange; at 0 health the target
//          dies (deaths + 1, shooter kills + 1).
//  loot    gives an available treasure in the player's zone to the player; a treasure is
//          looted at most once.
//  spawn   places a treasure; ignored while a treasure with that id is in the world (an id
//          whose treasure was banked may be spawned again, as a new treasure).
// A dead player's action after respawnDelayUs respawns them at a random spot in their zone
// (ctx.random), with full health, and then applies; before that it is ignored.

import type { ApplyContext } from '../types.js';
import { WorldEventKind, type WorldEvent } from './events.js';
import { OWNER_NONE, type WorldState } from './state.js';

export type WorldUpdate =
  | { readonly type: 'joined'; readonly player: number; readonly zone: number }
  | { readonly type: 'left'; readonly player: number; readonly banked: number }
  | { readonly type: 'respawned'; readonly player: number; readonly x: number; readonly y: number }
  | { readonly type: 'hit'; readonly player: number; readonly target: number; readonly health: number }
  | { readonly type: 'killed'; readonly player: number; readonly target: number }
  | { readonly type: 'looted'; readonly player: number; readonly treasure: number }
  | { readonly type: 'spawned'; readonly treasure: number; readonly zone: number };

const clamp = (value: number, min: number, max: number): number => (value < min ? min : value > max ? max : value);

export function applyWorld(state: WorldState, event: WorldEvent, ctx: ApplyContext<WorldUpdate>): WorldState {
  switch (event.kind) {
    case WorldEventKind.join:
      joinPlayer(state, event, ctx);
      break;
    case WorldEventKind.leave:
      leavePlayer(state, event.id, ctx);
      break;
    case WorldEventKind.spawn:
      spawnTreasure(state, event, ctx);
      break;
    default:
      act(state, event, ctx);
  }
  return state;
}

function inArena(state: WorldState, zone: number, x: number, y: number): boolean {
  const { zones, arenaSize } = state.options;
  return zone < zones && x < arenaSize && y < arenaSize;
}

function joinPlayer(state: WorldState, event: WorldEvent, ctx: ApplyContext<WorldUpdate>): void {
  const id = event.id;
  if (state.isPlayer(id) || !inArena(state, event.zone, event.x, event.y)) return;
  state.ensurePlayer(id);
  state.playerPresent[id] = 1;
  state.playerZone[id] = event.zone;
  state.playerX[id] = event.x;
  state.playerY[id] = event.y;
  state.playerAngle[id] = 0;
  state.playerHealth[id] = state.options.maxHealth;
  state.playerKills[id] = 0;
  state.playerDeaths[id] = 0;
  state.playerHeld[id] = 0;
  state.playerDeathAtUs[id] = 0;
  state.playerOwnedHead[id] = -1;
  state.playersPresent++;
  state.rehashPlayer(id);
  ctx.emit({ type: 'joined', player: id, zone: event.zone });
}

function leavePlayer(state: WorldState, id: number, ctx: ApplyContext<WorldUpdate>): void {
  if (!state.isPlayer(id)) return;
  let banked = 0;
  for (let t = state.playerOwnedHead[id]; t !== -1; ) {
    const next = state.treasureNextOwned[t];
    state.setTreasurePresent(t, false);
    state.treasureOwner[t] = OWNER_NONE;
    state.treasureNextOwned[t] = -1;
    state.rehashTreasure(t);
    banked++;
    t = next;
  }
  state.treasuresBanked += banked;
  state.playerPresent[id] = 0;
  state.playerOwnedHead[id] = -1;
  state.playerHeld[id] = 0;
  state.playersPresent--;
  state.rehashPlayer(id);
  ctx.emit({ type: 'left', player: id, banked });
}

function spawnTreasure(state: WorldState, event: WorldEvent, ctx: ApplyContext<WorldUpdate>): void {
  const id = event.id;
  if (state.isTreasure(id) || !inArena(state, event.zone, event.x, event.y)) return;
  state.ensureTreasure(id);
  state.setTreasurePresent(id, true);
  state.treasureZone[id] = event.zone;
  state.treasureX[id] = event.x;
  state.treasureY[id] = event.y;
  state.treasureValue[id] = event.amount;
  state.treasureOwner[id] = OWNER_NONE;
  state.treasureNextOwned[id] = -1;
  state.treasuresSpawned++;
  state.treasuresAvailable++;
  state.rehashTreasure(id);
  ctx.emit({ type: 'spawned', treasure: id, zone: event.zone });
}

/** move, rotate, shoot, loot: actions of a present player, who may first need to respawn. */
function act(state: WorldState, event: WorldEvent, ctx: ApplyContext<WorldUpdate>): void {
  const p = event.id;
  if (!state.isPlayer(p)) return;
  if (state.playerHealth[p] === 0) {
    if (ctx.nowUs - state.playerDeathAtUs[p] < state.options.respawnDelayUs) return;
    const last = state.options.arenaSize - 1;
    state.playerHealth[p] = state.options.maxHealth;
    state.playerX[p] = ctx.random.int(0, last);
    state.playerY[p] = ctx.random.int(0, last);
    state.rehashPlayer(p);
    ctx.emit({ type: 'respawned', player: p, x: state.playerX[p], y: state.playerY[p] });
  }
  switch (event.kind) {
    case WorldEventKind.move: {
      const step = state.options.maxStep;
      const last = state.options.arenaSize - 1;
      state.playerX[p] = clamp(state.playerX[p] + clamp(event.x, -step, step), 0, last);
      state.playerY[p] = clamp(state.playerY[p] + clamp(event.y, -step, step), 0, last);
      state.rehashPlayer(p);
      break;
    }
    case WorldEventKind.rotate:
      state.playerAngle[p] = event.amount;
      state.rehashPlayer(p);
      break;
    case WorldEventKind.shoot:
      shoot(state, p, event.other, event.amount, ctx);
      break;
    case WorldEventKind.loot:
      lootTreasure(state, p, event.other, ctx);
      break;
  }
}

function shoot(state: WorldState, p: number, t: number, damage: number, ctx: ApplyContext<WorldUpdate>): void {
  if (t === p || !state.isPlayer(t) || state.playerHealth[t] === 0) return;
  if (state.playerZone[t] !== state.playerZone[p]) return;
  const dx = state.playerX[t] - state.playerX[p];
  const dy = state.playerY[t] - state.playerY[p];
  const range = state.options.shootRange;
  if (dx * dx + dy * dy > range * range) return;
  const health = state.playerHealth[t] > damage ? state.playerHealth[t] - damage : 0;
  state.playerHealth[t] = health;
  if (health === 0) {
    state.playerDeaths[t]++;
    state.playerDeathAtUs[t] = ctx.nowUs;
    state.playerKills[p]++;
    state.rehashPlayer(p);
    ctx.emit({ type: 'killed', player: p, target: t });
  } else {
    ctx.emit({ type: 'hit', player: p, target: t, health });
  }
  state.rehashPlayer(t);
}

function lootTreasure(state: WorldState, p: number, t: number, ctx: ApplyContext<WorldUpdate>): void {
  if (!state.isTreasure(t) || state.treasureOwner[t] !== OWNER_NONE) return;
  if (state.treasureZone[t] !== state.playerZone[p]) return;
  state.treasureOwner[t] = p;
  state.treasureNextOwned[t] = state.playerOwnedHead[p];
  state.playerOwnedHead[p] = t;
  state.playerHeld[p]++;
  state.treasuresAvailable--;
  state.rehashTreasure(t);
  state.rehashPlayer(p);
  ctx.emit({ type: 'looted', player: p, treasure: t });
}
