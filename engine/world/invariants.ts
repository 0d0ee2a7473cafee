// Invariants of the `world` state, checked at checkpoints (and after every event when a
// runner is paranoid). O(players + treasures). Each violation names the entity and values.

import type { InvariantViolation } from '../types.js';
import { OWNER_NONE, type WorldState } from './state.js';

/** Past this many violations the list is cut short: one broken rule tends to break thousands. */
const MAX_VIOLATIONS = 50;

export function checkWorldInvariants(state: WorldState): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const add = (code: string, message: string): void => {
    if (out.length < MAX_VIOLATIONS) out.push({ code, message });
  };
  const { zones, arenaSize, maxHealth } = state.options;

  // How many player inventories list each treasure: at most one may.
  const listed = new Uint8Array(state.treasureCapacity);
  let players = 0;
  let heldTotal = 0;
  for (let p = 0; p < state.playerCapacity; p++) {
    if (state.playerPresent[p] !== 1) continue;
    players++;
    const health = state.playerHealth[p];
    if (health > maxHealth) add('health-out-of-range', `player ${p} has health ${health}, outside [0, ${maxHealth}]`);
    if (state.playerZone[p] >= zones) add('zone-out-of-range', `player ${p} is in zone ${state.playerZone[p]}, but the world has ${zones} zones`);
    if (state.playerX[p] >= arenaSize || state.playerY[p] >= arenaSize) {
      add('position-out-of-bounds', `player ${p} is at (${state.playerX[p]}, ${state.playerY[p]}), outside [0, ${arenaSize - 1}]`);
    }
    let count = 0;
    // Bounded walk: a list longer than the number of treasures has a cycle.
    for (let t = state.playerOwnedHead[p]; t !== -1 && count <= state.treasureCapacity; t = state.treasureNextOwned[t]) {
      count++;
      if (state.treasureOwner[t] !== p) {
        add('treasure-owner-mismatch', `treasure ${t} is in player ${p}'s inventory but its owner is ${ownerName(state.treasureOwner[t])}`);
      }
      if (listed[t] === 1) add('treasure-owned-twice', `treasure ${t} is held by more than one player (seen again in player ${p}'s inventory)`);
      listed[t] = 1;
    }
    if (count !== state.playerHeld[p]) {
      add('held-count-mismatch', `player ${p} holds ${count} treasures but counts ${state.playerHeld[p]}`);
    }
    heldTotal += state.playerHeld[p];
  }
  if (players !== state.playersPresent) add('player-count-mismatch', `${players} players present but the counter says ${state.playersPresent}`);

  let available = 0;
  for (let t = 0; t < state.treasureCapacity; t++) {
    if (state.treasurePresent[t] !== 1) continue;
    const owner = state.treasureOwner[t];
    if (owner === OWNER_NONE) available++;
    else if (!state.isPlayer(owner)) add('treasure-owner-missing', `treasure ${t} is owned by player ${owner}, who is not in the world`);
    else if (listed[t] !== 1) add('treasure-owner-mismatch', `treasure ${t} is owned by player ${owner} but is not in their inventory`);
    if (state.treasureZone[t] >= zones) add('zone-out-of-range', `treasure ${t} is in zone ${state.treasureZone[t]}, but the world has ${zones} zones`);
    if (state.treasureX[t] >= arenaSize || state.treasureY[t] >= arenaSize) {
      add('position-out-of-bounds', `treasure ${t} is at (${state.treasureX[t]}, ${state.treasureY[t]}), outside [0, ${arenaSize - 1}]`);
    }
  }
  if (available !== state.treasuresAvailable) {
    add('treasure-counter-mismatch', `the counter says ${state.treasuresAvailable} treasures are available; the treasures say ${available}`);
  }
  if (state.treasuresSpawned !== state.treasuresAvailable + heldTotal + state.treasuresBanked) {
    add(
      'treasure-not-conserved',
      `${state.treasuresSpawned} treasures spawned, but ${state.treasuresAvailable} available + ${heldTotal} held + ` +
        `${state.treasuresBanked} banked = ${state.treasuresAvailable + heldTotal + state.treasuresBanked}`,
    );
  }
  return out;
}

function ownerName(owner: number): string {
  if (owner === OWNER_NONE) return 'nobody';
  return `player ${owner}`;
}
