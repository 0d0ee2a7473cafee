import { describe, expect, it } from 'vitest';
import { RunContext } from '../../../engine/context.js';
import { join, leave, loot, move, rotate, shoot, spawn, type WorldEvent } from '../../../engine/world/events.js';
import { worldEngine, type WorldUpdate } from '../../../engine/world/index.js';
import { OWNER_NONE, type WorldState } from '../../../engine/world/state.js';

const OPTIONS = { zones: 2, arenaSize: 100, respawnDelayUs: 1000, shootRange: 50, maxStep: 10 };

function play(events: readonly WorldEvent[], gapUs = 10): { state: WorldState; updates: WorldUpdate[] } {
  const updates: WorldUpdate[] = [];
  const ctx = new RunContext<WorldUpdate>(1, { sink: (u) => updates.push(u) });
  let state = worldEngine.init(OPTIONS);
  events.forEach((e, i) => {
    ctx.prepare(i, 1_000_000 + i * gapUs, 0);
    state = worldEngine.apply(state, e, ctx);
  });
  return { state, updates };
}

describe('world rules', () => {
  it('joins a player once, inside the arena only', () => {
    const { state } = play([join(1, 0, 10, 10), join(1, 1, 20, 20), join(2, 5, 1, 1), join(3, 0, 100, 0)]);
    const view = worldEngine.view!(state) as { players: Record<string, { zone: number; x: number }> };
    expect(Object.keys(view.players)).toEqual(['1']);
    expect(view.players[1]).toMatchObject({ zone: 0, x: 10 });
  });

  it('clamps moves to maxStep and to the arena, and sets the angle', () => {
    const { state } = play([join(1, 0, 5, 95), move(1, -100, 100), rotate(1, 1234)]);
    expect([state.playerX[1], state.playerY[1], state.playerAngle[1]]).toEqual([0, 99, 1234]);
  });

  it('kills at zero health, ignores the dead until the respawn delay, then respawns them', () => {
    const events = [join(1, 0, 10, 10), join(2, 0, 20, 20), shoot(1, 2, 60), shoot(1, 2, 60), move(2, 1, 1)];
    const { state, updates } = play(events);
    expect(state.playerHealth[2]).toBe(0);
    expect([state.playerKills[1], state.playerDeaths[2]]).toEqual([1, 1]);
    expect(updates.map((u) => u.type)).toEqual(['joined', 'joined', 'hit', 'killed']);
    // 1 ms later the delay has passed: the next action respawns at a seeded random spot.
    const later = play(events, 1000);
    expect(later.state.playerHealth[2]).toBe(100);
    expect(later.updates.map((u) => u.type)).toContain('respawned');
    expect(play(events, 1000).state.digest()).toBe(later.state.digest());
  });

  it('misses targets out of range, in another zone, or itself', () => {
    const { state } = play([join(1, 0, 0, 0), join(2, 0, 99, 99), join(3, 1, 0, 0), shoot(1, 2, 10), shoot(1, 3, 10), shoot(1, 1, 10)]);
    expect([state.playerHealth[1], state.playerHealth[2], state.playerHealth[3]]).toEqual([100, 100, 100]);
  });

  it('lets a treasure be looted once, in its zone only', () => {
    const { state } = play([spawn(7, 0, 5, 5, 10), join(1, 0, 1, 1), join(2, 0, 2, 2), join(3, 1, 2, 2), loot(3, 7), loot(1, 7), loot(2, 7), loot(1, 7)]);
    expect(state.treasureOwner[7]).toBe(1);
    expect([state.playerHeld[1], state.playerHeld[2], state.playerHeld[3]]).toEqual([1, 0, 0]);
    expect(worldEngine.checkInvariants(state)).toEqual([]);
  });

  it('banks the treasures of a player who leaves: they leave the world, and the id can be spawned anew', () => {
    const before = play([spawn(7, 0, 5, 5, 10), join(1, 0, 1, 1), loot(1, 7), spawn(7, 0, 9, 9, 99), leave(1)]).state;
    expect(before.isTreasure(7)).toBe(false);
    expect([before.treasuresSpawned, before.treasuresBanked, before.treasuresAvailable]).toEqual([1, 1, 0]);
    expect(worldEngine.checkInvariants(before)).toEqual([]);
    const { state } = play([spawn(7, 0, 5, 5, 10), join(1, 0, 1, 1), loot(1, 7), leave(1), spawn(7, 0, 1, 1, 1), join(2, 0, 1, 1), loot(2, 7)]);
    expect(state.treasureOwner[7]).toBe(2);
    expect([state.treasuresSpawned, state.treasuresBanked, state.playerHeld[2]]).toEqual([2, 1, 1]);
    expect(worldEngine.checkInvariants(state)).toEqual([]);
    expect(OWNER_NONE).toBe(-1);
  });

  it('finds the present treasures through its bit set, for sparse large ids too, and reports a set that disagrees with the flags', () => {
    const ids = [0, 31, 32, 1023, 1024, 70_000, 5_000_000];
    const { state } = play([...ids.map((id) => spawn(id, 0, 5, 5, 10)), join(1, 0, 1, 1), loot(1, 70_000), loot(1, 31)]);
    expect(worldEngine.checkInvariants(state)).toEqual([]);
    expect(state.presentTreasureCount).toBe(ids.length);
    const broken = play([...ids.map((id) => spawn(id, 0, 5, 5, 10))]).state;
    broken.treasurePresent[1024] = 0; // a write that bypasses setTreasurePresent
    const violations = worldEngine.checkInvariants(broken);
    expect(violations.map((v) => v.code)).toContain('treasure-list-mismatch');
    expect(violations.find((v) => v.code === 'treasure-list-mismatch')!.message).toMatch(/treasure 1024 /);
  });

  it('reports broken invariants by entity', () => {
    const { state } = play([spawn(7, 0, 5, 5, 10), join(1, 0, 1, 1), join(2, 0, 2, 2), loot(1, 7)]);
    // What a buggy engine would do: hand the looted treasure to a second player as well.
    state.treasureOwner[7] = 2;
    state.playerHeld[2]++;
    state.playerHealth[1] = 300;
    const codes = worldEngine.checkInvariants(state).map((v) => v.code);
    expect(codes).toEqual(expect.arrayContaining(['health-out-of-range', 'treasure-owner-mismatch', 'held-count-mismatch', 'treasure-not-conserved']));
    expect(worldEngine.checkInvariants(state).find((v) => v.code === 'health-out-of-range')!.message).toBe('player 1 has health 300, outside [0, 100]');
  });
});
