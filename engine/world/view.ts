// A plain JSON view of the `world` state, for structural comparison and diffs. Entities are
// keyed by id and listed in id order, so equal states give deep-equal views.

import { OWNER_NONE, type WorldState } from './state.js';

export interface WorldView {
  counters: { playersPresent: number; treasuresSpawned: number; treasuresAvailable: number; treasuresBanked: number };
  players: Record<string, { zone: number; x: number; y: number; angle: number; health: number; kills: number; deaths: number; held: number; deathAtUs: number }>;
  treasures: Record<string, { zone: number; x: number; y: number; value: number; owner: number | 'none' }>;
}

export function viewWorld(state: WorldState): WorldView {
  const players: WorldView['players'] = {};
  for (let p = 0; p < state.playerCapacity; p++) {
    if (state.playerPresent[p] !== 1) continue;
    players[p] = {
      zone: state.playerZone[p],
      x: state.playerX[p],
      y: state.playerY[p],
      angle: state.playerAngle[p],
      health: state.playerHealth[p],
      kills: state.playerKills[p],
      deaths: state.playerDeaths[p],
      held: state.playerHeld[p],
      deathAtUs: state.playerDeathAtUs[p],
    };
  }
  const treasures: WorldView['treasures'] = {};
  for (let t = 0; t < state.treasureCapacity; t++) {
    if (state.treasurePresent[t] !== 1) continue;
    const owner = state.treasureOwner[t];
    treasures[t] = {
      zone: state.treasureZone[t],
      x: state.treasureX[t],
      y: state.treasureY[t],
      value: state.treasureValue[t],
      owner: owner === OWNER_NONE ? 'none' : owner,
    };
  }
  return {
    counters: {
      playersPresent: state.playersPresent,
      treasuresSpawned: state.treasuresSpawned,
      treasuresAvailable: state.treasuresAvailable,
      treasuresBanked: state.treasuresBanked,
    },
    players,
    treasures,
  };
}
