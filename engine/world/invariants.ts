// Invariants of the `world` state, checked at checkpoints (and after every event when a
// runner is paranoid). O(players + treasures). Each violation names the entity and values.
//
// The scans run at every checkpoint of a replay, so they are written for speed: the columns
// are read into locals once, the loops hold no closures, and the messages are only built when
// a rule is broken.

import type { InvariantViolation } from '../types.js';
import { OWNER_NONE, type WorldState } from './state.js';

/** Past this many violations the list is cut short: one broken rule tends to break thousands. */
const MAX_VIOLATIONS = 50;

function add(out: InvariantViolation[], code: string, message: string): void {
  if (out.length < MAX_VIOLATIONS) out.push({ code, message });
}

/**
 * Scratch marks (which treasures were seen in an inventory), reused between calls: a treasure
 * is listed in this scan when its mark equals the scan's number, so nothing needs clearing.
 */
let listedScratch = new Uint32Array(0);
let scanNumber = 0;

/** Lists the inventory walk follows side by side (see inventoriesSound). */
const LANES = 8;
const lanePlayer = new Int32Array(LANES);
const laneAt = new Int32Array(LANES);
const laneCount = new Int32Array(LANES);

/** The next scan's mark (the scratch grown to `capacity` treasures first). */
function nextMark(capacity: number): number {
  if (listedScratch.length < capacity) listedScratch = new Uint32Array(capacity);
  scanNumber = (scanNumber + 1) >>> 0;
  if (scanNumber === 0) {
    listedScratch.fill(0);
    scanNumber = 1;
  }
  return scanNumber;
}

/**
 * Whether every inventory keeps the rules: each treasure a player's list holds is owned by that
 * player and listed nowhere else, and each list is as long as the player's count. Marks every
 * listed treasure with `mark`, as the walk in checkWorldInvariants does; false as soon as a rule
 * is broken (that walk then runs again, in player order, to name each violation).
 *
 * A list is a chain of loads, each waiting for the one before it (a treasure's owner, mark and
 * next are in arrays larger than the core's cache); LANES lists are walked side by side so that
 * the loads of several lists can overlap. Measured, not explained in detail: 1,000 scans of the
 * state after 1M events took 723 ms one list at a time and 612 to 659 ms with 4 to 32 lists
 * side by side. A cycle reaches a treasure already marked, so every walk ends.
 */
function inventoriesSound(state: WorldState, listed: Uint32Array, mark: number): boolean {
  const playerCapacity = state.playerCapacity;
  const playerPresent = state.playerPresent;
  const playerHeld = state.playerHeld;
  const playerOwnedHead = state.playerOwnedHead;
  const treasureOwner = state.treasureOwner;
  const treasureNextOwned = state.treasureNextOwned;
  let p = 0;
  let active = 0;
  for (let k = 0; k < LANES; k++) laneAt[k] = -1;
  for (;;) {
    // Put the next players whose lists are not empty into the free lanes.
    for (let k = 0; k < LANES && p < playerCapacity; k++) {
      if (laneAt[k] !== -1) continue;
      while (p < playerCapacity) {
        const q = p++;
        if (playerPresent[q] !== 1) continue;
        const head = playerOwnedHead[q];
        if (head === -1) {
          if (playerHeld[q] !== 0) return false;
          continue;
        }
        lanePlayer[k] = q;
        laneAt[k] = head;
        laneCount[k] = 0;
        active++;
        break;
      }
    }
    if (active === 0) return true;
    // One step of every list under way.
    for (let k = 0; k < LANES; k++) {
      const t = laneAt[k];
      if (t === -1) continue;
      const q = lanePlayer[k];
      // (An id past the arrays reads undefined, which is no player and no mark: a violation.)
      if (treasureOwner[t] !== q || listed[t] === mark) return false;
      listed[t] = mark;
      const count = ++laneCount[k];
      const next = treasureNextOwned[t];
      laneAt[k] = next;
      if (next === -1) {
        if (count !== playerHeld[q]) return false;
        active--;
      }
    }
  }
}

export function checkWorldInvariants(state: WorldState): InvariantViolation[] {
  let mark = nextMark(state.treasureCapacity);
  if (inventoriesSound(state, listedScratch, mark)) return checkInvariantsAfter(state, mark);
  mark = nextMark(state.treasureCapacity);
  return checkInvariantsAfter(state, mark, true);
}

/** checkWorldInvariants with every inventory walked in player order, as it was before the walk side by side (for the tests that hold the two equal). */
export function checkWorldInvariantsInOrder(state: WorldState): InvariantViolation[] {
  return checkInvariantsAfter(state, nextMark(state.treasureCapacity), true);
}

/**
 * The rules, with the listed treasures marked `mark`: by inventoriesSound (`walk` false: the
 * inventories keep their rules), or by the walk here in player order (`walk`), which names
 * every violation.
 */
function checkInvariantsAfter(state: WorldState, mark: number, walk = false): InvariantViolation[] {
  const out: InvariantViolation[] = [];
  const { zones, arenaSize, maxHealth } = state.options;
  const treasureCapacity = state.treasureCapacity;
  const playerCapacity = state.playerCapacity;

  // Which treasures a player's inventory lists (at most one may list each): those marked `mark`.
  const listed = listedScratch;

  const playerPresent = state.playerPresent;
  const playerHealth = state.playerHealth;
  const playerZone = state.playerZone;
  const playerX = state.playerX;
  const playerY = state.playerY;
  const playerHeld = state.playerHeld;
  const playerOwnedHead = state.playerOwnedHead;
  const treasureOwner = state.treasureOwner;
  const treasureNextOwned = state.treasureNextOwned;
  let players = 0;
  let heldTotal = 0;
  for (let p = 0; p < playerCapacity; p++) {
    if (playerPresent[p] !== 1) continue;
    players++;
    const health = playerHealth[p];
    if (health > maxHealth || playerZone[p] >= zones || playerX[p] >= arenaSize || playerY[p] >= arenaSize) {
      if (health > maxHealth) add(out, 'health-out-of-range', `player ${p} has health ${health}, outside [0, ${maxHealth}]`);
      if (playerZone[p] >= zones) add(out, 'zone-out-of-range', `player ${p} is in zone ${playerZone[p]}, but the world has ${zones} zones`);
      if (playerX[p] >= arenaSize || playerY[p] >= arenaSize) {
        add(out, 'position-out-of-bounds', `player ${p} is at (${playerX[p]}, ${playerY[p]}), outside [0, ${arenaSize - 1}]`);
      }
    }
    const held = playerHeld[p];
    heldTotal += held;
    if (!walk) continue;
    let count = 0;
    // Bounded walk: a list longer than the number of treasures has a cycle.
    for (let t = playerOwnedHead[p]; t !== -1 && count <= treasureCapacity; t = treasureNextOwned[t]) {
      count++;
      if (treasureOwner[t] !== p || listed[t] === mark) {
        if (treasureOwner[t] !== p) {
          add(out, 'treasure-owner-mismatch', `treasure ${t} is in player ${p}'s inventory but its owner is ${ownerName(treasureOwner[t])}`);
        }
        if (listed[t] === mark) add(out, 'treasure-owned-twice', `treasure ${t} is held by more than one player (seen again in player ${p}'s inventory)`);
      }
      listed[t] = mark;
    }
    if (count !== held) add(out, 'held-count-mismatch', `player ${p} holds ${count} treasures but counts ${held}`);
  }
  if (players !== state.playersPresent) add(out, 'player-count-mismatch', `${players} players present but the counter says ${state.playersPresent}`);

  const treasurePresent = state.treasurePresent;
  const treasureZone = state.treasureZone;
  const treasureX = state.treasureX;
  const treasureY = state.treasureY;
  let available = 0;
  // The present treasures only (the bit set kept beside the flags), in id order.
  const presentWords = state.presentWords;
  const presentBits = state.presentBits;
  let listedCount = 0;
  for (let s = 0; s < presentWords.length; s++) {
    for (let words = presentWords[s]; words !== 0; words &= words - 1) {
      const w = (s << 5) | (31 - Math.clz32(words & -words));
      for (let bits = presentBits[w]; bits !== 0; bits &= bits - 1) {
        const t = (w << 5) | (31 - Math.clz32(bits & -bits));
        listedCount++;
        if (treasurePresent[t] !== 1) {
          add(out, 'treasure-list-mismatch', `treasure ${t} is in the set of present treasures but its flag says it is not`);
          continue;
        }
        const owner = treasureOwner[t];
        // One test for the common case; the rules are told apart only when one is broken.
        const ownerOk = owner === OWNER_NONE || (listed[t] === mark && owner >= 0 && owner < playerCapacity && playerPresent[owner] === 1);
        if (owner === OWNER_NONE) available++;
        if (ownerOk && treasureZone[t] < zones && treasureX[t] < arenaSize && treasureY[t] < arenaSize) continue;
        if (owner !== OWNER_NONE && !(owner >= 0 && owner < playerCapacity && playerPresent[owner] === 1)) {
          add(out, 'treasure-owner-missing', `treasure ${t} is owned by player ${owner}, who is not in the world`);
        } else if (owner !== OWNER_NONE && listed[t] !== mark) {
          add(out, 'treasure-owner-mismatch', `treasure ${t} is owned by player ${owner} but is not in their inventory`);
        }
        if (treasureZone[t] >= zones) add(out, 'zone-out-of-range', `treasure ${t} is in zone ${treasureZone[t]}, but the world has ${zones} zones`);
        if (treasureX[t] >= arenaSize || treasureY[t] >= arenaSize) {
          add(out, 'position-out-of-bounds', `treasure ${t} is at (${treasureX[t]}, ${treasureY[t]}), outside [0, ${arenaSize - 1}]`);
        }
      }
    }
  }
  if (listedCount !== state.presentTreasureCount) {
    add(out, 'treasure-list-mismatch', `the set of present treasures holds ${listedCount}, but ${state.presentTreasureCount} were put in the world`);
  }
  if (available !== state.treasuresAvailable) {
    add(out, 'treasure-counter-mismatch', `the counter says ${state.treasuresAvailable} treasures are available; the treasures say ${available}`);
  }
  if (state.treasuresSpawned !== state.treasuresAvailable + heldTotal + state.treasuresBanked) {
    add(
      out,
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
