// Snapshot and restore of the `world` state.
//
// Layout (little-endian): "TDWS" u8 version=1, u32 optionsJsonLength, options JSON (UTF-8),
// u32 playersPresent, u32 treasuresSpawned, u32 treasuresAvailable, u32 treasuresBanked,
// u32 playerCount then per present player in id order:
//   u32 id, u16 zone, u16 x, u16 y, u16 angle, u16 health, u32 kills, u32 deaths, u32 held, f64 deathAtUs
// u32 treasureCount then per present treasure in id order:
//   u32 id, u16 zone, u16 x, u16 y, u16 value, i32 owner
// Inventories are rebuilt from owners on restore; held counts are restored as stored, so a
// state that broke an invariant restores broken, and the checks still see it.

import { CodecError } from '../errors.js';
import { WORLD_LIMITS } from './events.js';
import { normalizeWorldOptions, WorldState } from './state.js';

const MAGIC = 0x53574454; // "TDWS" read as little-endian u32
const VERSION = 1;
const PLAYER_BYTES = 34;
const TREASURE_BYTES = 16;

export function snapshotWorld(state: WorldState): Uint8Array {
  const optionsJson = new TextEncoder().encode(JSON.stringify(state.options));
  let players = 0;
  for (let p = 0; p < state.playerCapacity; p++) players += state.playerPresent[p];
  let treasures = 0;
  for (let t = 0; t < state.treasureCapacity; t++) treasures += state.treasurePresent[t];
  const size = 5 + 4 + optionsJson.length + 16 + 4 + players * PLAYER_BYTES + 4 + treasures * TREASURE_BYTES;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let o = 0;
  view.setUint32(o, MAGIC, true); o += 4;
  view.setUint8(o, VERSION); o += 1;
  view.setUint32(o, optionsJson.length, true); o += 4;
  bytes.set(optionsJson, o); o += optionsJson.length;
  view.setUint32(o, state.playersPresent, true); o += 4;
  view.setUint32(o, state.treasuresSpawned, true); o += 4;
  view.setUint32(o, state.treasuresAvailable, true); o += 4;
  view.setUint32(o, state.treasuresBanked, true); o += 4;
  view.setUint32(o, players, true); o += 4;
  for (let p = 0; p < state.playerCapacity; p++) {
    if (state.playerPresent[p] !== 1) continue;
    view.setUint32(o, p, true);
    view.setUint16(o + 4, state.playerZone[p], true);
    view.setUint16(o + 6, state.playerX[p], true);
    view.setUint16(o + 8, state.playerY[p], true);
    view.setUint16(o + 10, state.playerAngle[p], true);
    view.setUint16(o + 12, state.playerHealth[p], true);
    view.setUint32(o + 14, state.playerKills[p], true);
    view.setUint32(o + 18, state.playerDeaths[p], true);
    view.setUint32(o + 22, state.playerHeld[p], true);
    view.setFloat64(o + 26, state.playerDeathAtUs[p], true);
    o += PLAYER_BYTES;
  }
  view.setUint32(o, treasures, true); o += 4;
  for (let t = 0; t < state.treasureCapacity; t++) {
    if (state.treasurePresent[t] !== 1) continue;
    view.setUint32(o, t, true);
    view.setUint16(o + 4, state.treasureZone[t], true);
    view.setUint16(o + 6, state.treasureX[t], true);
    view.setUint16(o + 8, state.treasureY[t], true);
    view.setUint16(o + 10, state.treasureValue[t], true);
    view.setInt32(o + 12, state.treasureOwner[t], true);
    o += TREASURE_BYTES;
  }
  if (o !== size) throw new Error(`world snapshot size mismatch: wrote ${o} of ${size} bytes`);
  return bytes;
}

export function restoreWorld(bytes: Uint8Array): WorldState {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (o: number, n: number, what: string): void => {
    if (o + n > bytes.length) throw new CodecError(`world snapshot truncated: ${what} needs ${n} bytes at offset ${o}, snapshot has ${bytes.length}`);
  };
  let o = 0;
  need(o, 9, 'header');
  if (view.getUint32(0, true) !== MAGIC) throw new CodecError('not a world snapshot (bad magic)');
  const version = view.getUint8(4);
  if (version !== VERSION) throw new CodecError(`world snapshot version ${version} is not supported (this build reads ${VERSION})`);
  const optionsLength = view.getUint32(5, true);
  o = 9;
  need(o, optionsLength, 'options');
  const options = normalizeWorldOptions(JSON.parse(new TextDecoder().decode(bytes.subarray(o, o + optionsLength))));
  o += optionsLength;
  need(o, 20, 'counters');
  const state = new WorldState(options);
  state.playersPresent = view.getUint32(o, true);
  state.treasuresSpawned = view.getUint32(o + 4, true);
  state.treasuresAvailable = view.getUint32(o + 8, true);
  state.treasuresBanked = view.getUint32(o + 12, true);
  const players = view.getUint32(o + 16, true);
  o += 20;
  need(o, players * PLAYER_BYTES, 'players');
  for (let i = 0; i < players; i++, o += PLAYER_BYTES) {
    const p = view.getUint32(o, true);
    if (p > WORLD_LIMITS.maxId) throw new CodecError(`world snapshot player id ${p} exceeds ${WORLD_LIMITS.maxId}`);
    state.ensurePlayer(p);
    state.playerPresent[p] = 1;
    state.playerZone[p] = view.getUint16(o + 4, true);
    state.playerX[p] = view.getUint16(o + 6, true);
    state.playerY[p] = view.getUint16(o + 8, true);
    state.playerAngle[p] = view.getUint16(o + 10, true);
    state.playerHealth[p] = view.getUint16(o + 12, true);
    state.playerKills[p] = view.getUint32(o + 14, true);
    state.playerDeaths[p] = view.getUint32(o + 18, true);
    state.playerHeld[p] = view.getUint32(o + 22, true);
    state.playerDeathAtUs[p] = view.getFloat64(o + 26, true);
  }
  need(o, 4, 'treasure count');
  const treasures = view.getUint32(o, true);
  o += 4;
  need(o, treasures * TREASURE_BYTES, 'treasures');
  for (let i = 0; i < treasures; i++, o += TREASURE_BYTES) {
    const t = view.getUint32(o, true);
    if (t > WORLD_LIMITS.maxId) throw new CodecError(`world snapshot treasure id ${t} exceeds ${WORLD_LIMITS.maxId}`);
    state.ensureTreasure(t);
    state.setTreasurePresent(t, true);
    state.treasureZone[t] = view.getUint16(o + 4, true);
    state.treasureX[t] = view.getUint16(o + 6, true);
    state.treasureY[t] = view.getUint16(o + 8, true);
    state.treasureValue[t] = view.getUint16(o + 10, true);
    state.treasureOwner[t] = view.getInt32(o + 12, true);
  }
  if (o !== bytes.length) throw new CodecError(`world snapshot has ${bytes.length - o} trailing bytes`);
  // Rebuild inventories (owners that are present players) and the cached hashes.
  for (let t = 0; t < state.treasureCapacity; t++) {
    if (state.treasurePresent[t] !== 1) continue;
    const owner = state.treasureOwner[t];
    if (owner >= 0 && state.isPlayer(owner)) {
      state.treasureNextOwned[t] = state.playerOwnedHead[owner];
      state.playerOwnedHead[owner] = t;
    }
    state.rehashTreasure(t);
  }
  for (let p = 0; p < state.playerCapacity; p++) if (state.playerPresent[p] === 1) state.rehashPlayer(p);
  return state;
}
