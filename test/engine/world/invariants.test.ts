// The world engine's invariant check walks the players' inventories side by side
// (inventoriesSound) and, when that walk finds a rule broken, walks them again in player order
// to name every violation. These tests hold it to the walk in player order on states whose
// inventories were broken at random: a broken rule the side-by-side walk missed would show as
// fewer violations than the in-order walk names.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RunContext } from '../../../engine/context.js';
import { worldEngine, WorldTraffic } from '../../../engine/world/index.js';
import { checkWorldInvariants, checkWorldInvariantsInOrder } from '../../../engine/world/invariants.js';
import type { WorldState } from '../../../engine/world/state.js';
import { propertyParams } from '../../support/property.js';

/** A state after `events` events of generated traffic: thousands of inventories, some long. */
function played(events: number): WorldState {
  const traffic = new WorldTraffic({ seed: 3, events, players: 500 });
  let state = worldEngine.init();
  const ctx = new RunContext(3);
  for (let r = traffic.next(), n = 0; r !== null; r = traffic.next(), n++) {
    ctx.prepare(n, r.timestampUs, r.partition);
    state = worldEngine.apply(state, r.event, ctx);
  }
  return state;
}

const base = played(60_000);
const snapshot = worldEngine.snapshot(base);
const copy = (): WorldState => worldEngine.restore(snapshot);

/** Treasures some player holds, and the players who hold some, in the base state. */
const heldTreasures: number[] = [];
const holders: number[] = [];
for (let p = 0; p < base.playerCapacity; p++) {
  if (base.playerPresent[p] !== 1 || base.playerOwnedHead[p] === -1) continue;
  holders.push(p);
  for (let t = base.playerOwnedHead[p]; t !== -1; t = base.treasureNextOwned[t]) heldTreasures.push(t);
}

/** One way to break an inventory; indexes pick among the held treasures and holders. */
type Damage =
  | { kind: 'next'; treasure: number; to: number }
  | { kind: 'owner'; treasure: number; to: number }
  | { kind: 'held'; player: number; by: number }
  | { kind: 'head'; player: number; to: number };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  // A list's link sent elsewhere: into another list, back into its own (a cycle), cut short (-1), or past the arrays.
  fc.record({ kind: fc.constant('next' as const), treasure: fc.nat(), to: fc.oneof(fc.nat(), fc.constant(-1), fc.constant(1 << 20)) }),
  fc.record({ kind: fc.constant('owner' as const), treasure: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('held' as const), player: fc.nat(), by: fc.constantFrom(-1, 1, 2) }),
  fc.record({ kind: fc.constant('head' as const), player: fc.nat(), to: fc.oneof(fc.nat(), fc.constant(-1)) }),
);

function apply(state: WorldState, d: Damage): void {
  const pick = <T>(from: readonly T[], i: number): T => from[i % from.length];
  switch (d.kind) {
    case 'next':
      state.treasureNextOwned[pick(heldTreasures, d.treasure)] = d.to === -1 || d.to === 1 << 20 ? d.to : pick(heldTreasures, d.to);
      break;
    case 'owner':
      state.treasureOwner[pick(heldTreasures, d.treasure)] = pick(holders, d.to);
      break;
    case 'held':
      state.playerHeld[pick(holders, d.player)] += d.by;
      break;
    case 'head':
      state.playerOwnedHead[pick(holders, d.player)] = d.to === -1 ? -1 : pick(heldTreasures, d.to);
      break;
  }
}

describe('world invariants', () => {
  it('a sound state: no violation, whichever way the inventories are walked', () => {
    expect(heldTreasures.length).toBeGreaterThan(1000);
    expect(checkWorldInvariants(copy())).toEqual([]);
    expect(checkWorldInvariantsInOrder(copy())).toEqual([]);
  });

  it('broken inventories: the same violations as the walk in player order, and at least one', () => {
    let found = 0;
    fc.assert(
      fc.property(fc.array(damage, { minLength: 1, maxLength: 3 }), (damages) => {
        const state = copy();
        for (const d of damages) apply(state, d);
        const inOrder = checkWorldInvariantsInOrder(state);
        expect(checkWorldInvariants(state)).toEqual(inOrder);
        if (inOrder.length > 0) found++;
      }),
      propertyParams('world invariants: broken inventories as the walk in player order', 300),
    );
    // Most damage breaks a rule (a link sent to where it already pointed does not).
    expect(found).toBeGreaterThan(200);
  });

  it('a cycle in one inventory is named, not walked for ever', () => {
    const state = copy();
    const p = holders.find((q) => state.playerHeld[q] >= 2)!;
    const head = state.playerOwnedHead[p];
    const second = state.treasureNextOwned[head];
    state.treasureNextOwned[second] = head;
    const violations = checkWorldInvariants(state);
    expect(violations).toEqual(checkWorldInvariantsInOrder(state));
    expect(violations.map((v) => v.code)).toContain('treasure-owned-twice');
  });
});
