// The `world` state: players and treasures in columns of typed arrays indexed by id, so the
// hot loop touches no Maps and allocates nothing. Arrays grow (doubling) when a larger id
// appears; ids are bounded by the codec (WORLD_LIMITS.maxId).
//
// Digest. Every entity has a 64-bit hash (two 32-bit lanes, the hashWords algorithm with
// different seeds) of all its fields, cached beside it. The state digest is the sum, modulo 2^32 per lane, of
// the cached entity hashes, finished together with the counters and the options. A sum does
// not depend on the order entities were created or updated in, and changing one entity costs
// one re-hash: digest() is O(1), so runners can take a digest after every event.

import { CodecError } from '../errors.js';
import { hashFinish, hashStart, hashStep, hashWords, hex64, highWord, lowWord, PRIME3, PRIME4 } from '../hash.js';

export interface WorldOptions {
  /** Number of zones (shards); each maps to one partition. */
  readonly zones: number;
  /** Side of each zone's square arena; coordinates are in [0, arenaSize - 1]. */
  readonly arenaSize: number;
  readonly maxHealth: number;
  /** A dead player's next action after this long respawns them at a random spot. */
  readonly respawnDelayUs: number;
  /** Largest distance a single move covers on each axis; larger steps are clamped. */
  readonly maxStep: number;
  /** A shot hits when the target is within this distance, in the same zone. */
  readonly shootRange: number;
}

export const DEFAULT_WORLD_OPTIONS: WorldOptions = {
  zones: 64,
  arenaSize: 1024,
  maxHealth: 100,
  respawnDelayUs: 3_000_000,
  maxStep: 16,
  shootRange: 300,
};

/** Owner value of a treasure that no player holds. */
export const OWNER_NONE = -1;

// Lane seeds: A and B for the two lanes, distinct per entity kind so that a player and a
// treasure with the same fields never hash alike.
const SEED_A = 0x5eed_a;
const SEED_B = 0x5eed_b;
const SEED_A_PLAYER = 0x5eed_a1;
const SEED_B_PLAYER = 0x5eed_b1;
const SEED_A_TREASURE = 0x5eed_a2;
const SEED_B_TREASURE = 0x5eed_b2;
const INITIAL_CAPACITY = 64;

/** The words of the entity being re-hashed (the hot path allocates nothing). */
const HASH_WORDS = new Int32Array(9);

/**
 * hashStep over HASH_WORDS[0..count), then hashFinish: the same values as hashWords. The
 * steps are one loop written out rather than nine hashStep calls per lane, because the re-hash
 * runs on every event and is inlined into the engine's hot path, where V8's inlining budget
 * left those calls in place (measured: replay about 5% slower).
 */
function hashLaneWords(h: number, count: number): number {
  const w = HASH_WORDS;
  for (let i = 0; i < count; i++) {
    h = (h + Math.imul(w[i], PRIME3)) | 0;
    h = Math.imul((h << 17) | (h >>> 15), PRIME4);
  }
  return hashFinish(h);
}

export function normalizeWorldOptions(input: unknown): WorldOptions {
  if (input === undefined || input === null) return DEFAULT_WORLD_OPTIONS;
  if (typeof input !== 'object' || Array.isArray(input)) throw new CodecError('world options must be an object');
  const given = input as Record<string, unknown>;
  const limits: Record<keyof WorldOptions, [number, number]> = {
    zones: [1, 65536],
    arenaSize: [1, 65536],
    maxHealth: [1, 65535],
    respawnDelayUs: [0, Number.MAX_SAFE_INTEGER],
    maxStep: [0, 32767],
    shootRange: [0, 1 << 17],
  };
  for (const key of Object.keys(given)) {
    if (!(key in limits)) {
      throw new CodecError(`unknown world option "${key}"; known options: ${Object.keys(limits).join(', ')}`);
    }
  }
  const result: Record<string, number> = { ...DEFAULT_WORLD_OPTIONS };
  for (const [key, [min, max]] of Object.entries(limits)) {
    const value = given[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new CodecError(`world option ${key} must be an integer in [${min}, ${max}], got ${String(value)}`);
    }
    result[key] = value;
  }
  return result as unknown as WorldOptions;
}

function grown<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(array: T, capacity: number, fill = 0): T {
  const next = new (array.constructor as new (n: number) => T)(capacity);
  next.set(array);
  if (fill !== 0) next.fill(fill, array.length);
  return next;
}

export class WorldState {
  readonly options: WorldOptions;
  private readonly optionsHash: number;

  // Players, indexed by id.
  playerCapacity = INITIAL_CAPACITY;
  playerPresent = new Uint8Array(INITIAL_CAPACITY);
  playerZone = new Uint16Array(INITIAL_CAPACITY);
  playerX = new Uint16Array(INITIAL_CAPACITY);
  playerY = new Uint16Array(INITIAL_CAPACITY);
  playerAngle = new Uint16Array(INITIAL_CAPACITY);
  playerHealth = new Uint16Array(INITIAL_CAPACITY);
  playerKills = new Uint32Array(INITIAL_CAPACITY);
  playerDeaths = new Uint32Array(INITIAL_CAPACITY);
  playerHeld = new Uint32Array(INITIAL_CAPACITY);
  playerDeathAtUs = new Float64Array(INITIAL_CAPACITY);
  /** Head of the player's list of held treasures (linked through treasureNextOwned), or -1. */
  playerOwnedHead = new Int32Array(INITIAL_CAPACITY).fill(-1);
  playerHashA = new Uint32Array(INITIAL_CAPACITY);
  playerHashB = new Uint32Array(INITIAL_CAPACITY);

  // Treasures in the world, indexed by id. Banked treasures leave the world (and the arrays'
  // present flags), so the state stays as large as the live economy, not its history.
  treasureCapacity = INITIAL_CAPACITY;
  treasurePresent = new Uint8Array(INITIAL_CAPACITY);
  treasureZone = new Uint16Array(INITIAL_CAPACITY);
  treasureX = new Uint16Array(INITIAL_CAPACITY);
  treasureY = new Uint16Array(INITIAL_CAPACITY);
  treasureValue = new Uint16Array(INITIAL_CAPACITY);
  treasureOwner = new Int32Array(INITIAL_CAPACITY).fill(OWNER_NONE);
  treasureNextOwned = new Int32Array(INITIAL_CAPACITY).fill(-1);
  treasureHashA = new Uint32Array(INITIAL_CAPACITY);
  treasureHashB = new Uint32Array(INITIAL_CAPACITY);
  /**
   * The ids of the treasures in the world, in no particular order, kept beside treasurePresent
   * (set it through setTreasurePresent) so that scans visit the live economy, not every id ever
   * used: not part of the state's value (digest, snapshot).
   */
  presentTreasureIds = new Int32Array(INITIAL_CAPACITY);
  presentTreasureCount = 0;
  /** Where each present treasure's id sits in presentTreasureIds. */
  treasureSlot = new Int32Array(INITIAL_CAPACITY);

  // Counters.
  playersPresent = 0;
  treasuresSpawned = 0;
  treasuresAvailable = 0;
  /** Treasures that were held by players who left: out of the world, still counted. */
  treasuresBanked = 0;

  // Sums of the cached entity hashes, per lane.
  sumA = 0;
  sumB = 0;

  constructor(options: WorldOptions) {
    this.options = options;
    this.optionsHash = optionsHashOf(options);
  }

  ensurePlayer(id: number): void {
    if (id < this.playerCapacity) return;
    let capacity = this.playerCapacity;
    while (capacity <= id) capacity *= 2;
    this.playerCapacity = capacity;
    this.playerPresent = grown(this.playerPresent, capacity);
    this.playerZone = grown(this.playerZone, capacity);
    this.playerX = grown(this.playerX, capacity);
    this.playerY = grown(this.playerY, capacity);
    this.playerAngle = grown(this.playerAngle, capacity);
    this.playerHealth = grown(this.playerHealth, capacity);
    this.playerKills = grown(this.playerKills, capacity);
    this.playerDeaths = grown(this.playerDeaths, capacity);
    this.playerHeld = grown(this.playerHeld, capacity);
    this.playerDeathAtUs = grown(this.playerDeathAtUs, capacity);
    this.playerOwnedHead = grown(this.playerOwnedHead, capacity, -1);
    this.playerHashA = grown(this.playerHashA, capacity);
    this.playerHashB = grown(this.playerHashB, capacity);
  }

  ensureTreasure(id: number): void {
    if (id < this.treasureCapacity) return;
    let capacity = this.treasureCapacity;
    while (capacity <= id) capacity *= 2;
    this.treasureCapacity = capacity;
    this.treasurePresent = grown(this.treasurePresent, capacity);
    this.treasureZone = grown(this.treasureZone, capacity);
    this.treasureX = grown(this.treasureX, capacity);
    this.treasureY = grown(this.treasureY, capacity);
    this.treasureValue = grown(this.treasureValue, capacity);
    this.treasureOwner = grown(this.treasureOwner, capacity, OWNER_NONE);
    this.treasureNextOwned = grown(this.treasureNextOwned, capacity, -1);
    this.treasureHashA = grown(this.treasureHashA, capacity);
    this.treasureHashB = grown(this.treasureHashB, capacity);
    this.presentTreasureIds = grown(this.presentTreasureIds, capacity);
    this.treasureSlot = grown(this.treasureSlot, capacity);
  }

  /** Put treasure `id` in the world or take it out (the flag and the list of present ids together). */
  setTreasurePresent(id: number, present: boolean): void {
    if (present) {
      if (this.treasurePresent[id] === 1) return;
      this.treasurePresent[id] = 1;
      this.treasureSlot[id] = this.presentTreasureCount;
      this.presentTreasureIds[this.presentTreasureCount++] = id;
    } else {
      if (this.treasurePresent[id] !== 1) return;
      this.treasurePresent[id] = 0;
      const slot = this.treasureSlot[id];
      const last = this.presentTreasureIds[--this.presentTreasureCount];
      this.presentTreasureIds[slot] = last;
      this.treasureSlot[last] = slot;
    }
  }

  isPlayer(id: number): boolean {
    return id < this.playerCapacity && this.playerPresent[id] === 1;
  }

  isTreasure(id: number): boolean {
    return id < this.treasureCapacity && this.treasurePresent[id] === 1;
  }

  /**
   * Recompute player `id`'s cached hash after a change (0 when absent) and update the sums.
   * Fields are packed two 16-bit values to a word.
   */
  rehashPlayer(id: number): void {
    let a = 0;
    let b = 0;
    if (this.playerPresent[id] === 1) {
      const deathAtUs = this.playerDeathAtUs[id];
      const w = HASH_WORDS;
      w[0] = id;
      w[1] = this.playerZone[id] | (this.playerX[id] << 16);
      w[2] = this.playerY[id] | (this.playerAngle[id] << 16);
      w[3] = this.playerHealth[id];
      w[4] = this.playerKills[id];
      w[5] = this.playerDeaths[id];
      w[6] = this.playerHeld[id];
      w[7] = lowWord(deathAtUs);
      w[8] = highWord(deathAtUs);
      a = hashLaneWords(hashStart(SEED_A_PLAYER, 9), 9);
      b = hashLaneWords(hashStart(SEED_B_PLAYER, 9), 9);
    }
    this.sumA = (this.sumA - this.playerHashA[id] + a) | 0;
    this.sumB = (this.sumB - this.playerHashB[id] + b) | 0;
    this.playerHashA[id] = a;
    this.playerHashB[id] = b;
  }

  rehashTreasure(id: number): void {
    let a = 0;
    let b = 0;
    if (this.treasurePresent[id] === 1) {
      const w = HASH_WORDS;
      w[0] = id;
      w[1] = this.treasureZone[id] | (this.treasureX[id] << 16);
      w[2] = this.treasureY[id] | (this.treasureValue[id] << 16);
      w[3] = this.treasureOwner[id];
      a = hashLaneWords(hashStart(SEED_A_TREASURE, 4), 4);
      b = hashLaneWords(hashStart(SEED_B_TREASURE, 4), 4);
    }
    this.sumA = (this.sumA - this.treasureHashA[id] + a) | 0;
    this.sumB = (this.sumB - this.treasureHashB[id] + b) | 0;
    this.treasureHashA[id] = a;
    this.treasureHashB[id] = b;
  }

  /** The digest: 16 hex digits. O(1). */
  digest(): string {
    return worldDigest(this.optionsHash, this.sumA, this.sumB, this.playersPresent, this.treasuresSpawned, this.treasuresAvailable, this.treasuresBanked);
  }

  /**
   * What a shard contributes to the digest of a sharded replay: the lane sums and the
   * counters, all of which add up across disjoint shards (see EngineSharding).
   */
  digestWords(): number[] {
    return [this.sumA >>> 0, this.sumB >>> 0, this.playersPresent, this.treasuresSpawned, this.treasuresAvailable, this.treasuresBanked];
  }

  /** The digest of a state whose shards' digestWords() sum to `words`. */
  static digestFromWords(words: readonly number[], options: WorldOptions): string {
    if (words.length !== 6) throw new RangeError(`world digest words: expected 6, got ${words.length}`);
    return worldDigest(optionsHashOf(options), words[0] | 0, words[1] | 0, words[2] >>> 0, words[3] >>> 0, words[4] >>> 0, words[5] >>> 0);
  }
}

function optionsHashOf(options: WorldOptions): number {
  return hashWords(SEED_A, [
    options.zones,
    options.arenaSize,
    options.maxHealth,
    lowWord(options.respawnDelayUs),
    highWord(options.respawnDelayUs),
    options.maxStep,
    options.shootRange,
  ]);
}

function finishLane(seed: number, sum: number, optionsHash: number, counters: readonly [number, number, number, number]): number {
  let h = hashStart(seed, 6);
  h = hashStep(h, sum);
  h = hashStep(h, optionsHash);
  for (const c of counters) h = hashStep(h, c);
  return hashFinish(h);
}

function worldDigest(optionsHash: number, sumA: number, sumB: number, players: number, spawned: number, available: number, banked: number): string {
  const counters = [players, spawned, available, banked] as const;
  return hex64(finishLane(SEED_B, sumB, optionsHash, counters), finishLane(SEED_A, sumA, optionsHash, counters));
}
