// The `world` state: players and treasures in columns of typed arrays indexed by id, so the
// hot loop touches no Maps and allocates nothing. Arrays grow (doubling) when a larger id
// appears; ids are bounded by the codec (WORLD_LIMITS.maxId).
//
// Digest. Every entity has a 64-bit hash (two 32-bit lanes, the hashWords algorithm with
// different seeds) of all its fields, cached beside it. The state digest is the sum, modulo 2^32 per lane, of
// the cached entity hashes, finished together with the counters and the options. A sum does
// not depend on the order entities were created or updated in, and changing one entity costs
// one re-hash. Re-hashing is deferred to the next digest (each changed entity once, however
// often it changed), so digest() costs O(entities changed since the last one): runners can
// take a digest after every event.

import { CodecError } from '../errors.js';
import { PRIME3, PRIME4, hashFinish, hashStart, hashStep, hashWords, hex64, highWord, lowWord } from '../hash.js';

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

// The start values of the entity hashes (hashStart of each lane's seed and word count).
const START_A_PLAYER = hashStart(SEED_A_PLAYER, 9);
const START_B_PLAYER = hashStart(SEED_B_PLAYER, 9);
const START_A_TREASURE = hashStart(SEED_A_TREASURE, 4);
const START_B_TREASURE = hashStart(SEED_B_TREASURE, 4);
// hashStep's constants as signed 32-bit values.
const P3 = PRIME3 | 0;
const P4 = PRIME4 | 0;

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
  /** Players changed since the hashes were last brought up to date (see rehashPlayer). */
  playerDirty = new Uint8Array(INITIAL_CAPACITY);
  dirtyPlayers = new Int32Array(INITIAL_CAPACITY);
  dirtyPlayerCount = 0;

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
  treasureDirty = new Uint8Array(INITIAL_CAPACITY);
  dirtyTreasures = new Int32Array(INITIAL_CAPACITY);
  dirtyTreasureCount = 0;
  /**
   * The treasures in the world as a bit set kept beside treasurePresent (set it through
   * setTreasurePresent): bit t of presentBits is treasure t, and bit w of presentWords says
   * that presentBits[w] is not 0. Scans walk the set bits, so they visit the live economy in id
   * order (memory read front to back) and skip empty stretches of ids 1,024 at a time. Not part
   * of the state's value (digest, snapshot).
   */
  presentBits = new Uint32Array(INITIAL_CAPACITY / 32);
  presentWords = new Uint32Array(1);
  presentTreasureCount = 0;

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
    this.playerDirty = grown(this.playerDirty, capacity);
    this.dirtyPlayers = grown(this.dirtyPlayers, capacity);
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
    this.treasureDirty = grown(this.treasureDirty, capacity);
    this.dirtyTreasures = grown(this.dirtyTreasures, capacity);
    this.presentBits = grown(this.presentBits, capacity / 32);
    this.presentWords = grown(this.presentWords, Math.ceil(capacity / 1024));
  }

  /** Put treasure `id` in the world or take it out (the flag and the bit set together). */
  setTreasurePresent(id: number, present: boolean): void {
    const word = id >>> 5;
    if (present) {
      if (this.treasurePresent[id] === 1) return;
      this.treasurePresent[id] = 1;
      this.presentBits[word] |= 1 << (id & 31);
      this.presentWords[word >>> 5] |= 1 << (word & 31);
      this.presentTreasureCount++;
    } else {
      if (this.treasurePresent[id] !== 1) return;
      this.treasurePresent[id] = 0;
      this.presentBits[word] &= ~(1 << (id & 31));
      if (this.presentBits[word] === 0) this.presentWords[word >>> 5] &= ~(1 << (word & 31));
      this.presentTreasureCount--;
    }
  }

  isPlayer(id: number): boolean {
    return id < this.playerCapacity && this.playerPresent[id] === 1;
  }

  isTreasure(id: number): boolean {
    return id < this.treasureCapacity && this.treasurePresent[id] === 1;
  }

  /**
   * Note that player `id` changed (joined, moved, left...). Its cached hash and the sums are
   * brought up to date at the next digest (flushHashes): between two checkpoints most events
   * touch a player who already changed, so deferring saves most of the re-hashing.
   */
  rehashPlayer(id: number): void {
    if (this.playerDirty[id] === 0) {
      this.playerDirty[id] = 1;
      this.dirtyPlayers[this.dirtyPlayerCount++] = id;
    }
  }

  /** Note that treasure `id` changed; see rehashPlayer. */
  rehashTreasure(id: number): void {
    if (this.treasureDirty[id] === 0) {
      this.treasureDirty[id] = 1;
      this.dirtyTreasures[this.dirtyTreasureCount++] = id;
    }
  }

  /**
   * Re-hash every entity that changed since the last flush (an absent one hashes to 0) and
   * update the sums. Fields are packed two 16-bit values to a word.
   *
   * Each entity's two lanes are hashWords(seed, [id, w1, w2, ...]) (engine/hash.ts), computed
   * here side by side with hashStep written out: each word is multiplied once for both lanes,
   * the two chains interleave, and nothing waits on a call. Through helper calls (which V8 did
   * not inline into this loop) a player cost 73 ns; written out, 21 ns. The golden fixture's
   * digests pin the result to the algorithm.
   */
  flushHashes(): void {
    let sumA = this.sumA;
    let sumB = this.sumB;
    const dirtyPlayers = this.dirtyPlayers;
    const playerDirty = this.playerDirty;
    const playerPresent = this.playerPresent;
    const playerZone = this.playerZone;
    const playerX = this.playerX;
    const playerY = this.playerY;
    const playerAngle = this.playerAngle;
    const playerHealth = this.playerHealth;
    const playerKills = this.playerKills;
    const playerDeaths = this.playerDeaths;
    const playerHeld = this.playerHeld;
    const playerDeathAtUs = this.playerDeathAtUs;
    const playerHashA = this.playerHashA;
    const playerHashB = this.playerHashB;
    for (let i = 0; i < this.dirtyPlayerCount; i++) {
      const id = dirtyPlayers[i];
      playerDirty[id] = 0;
      let a = 0;
      let b = 0;
      if (playerPresent[id] === 1) {
        const deathAtUs = playerDeathAtUs[id];
        let ha = START_A_PLAYER;
        let hb = START_B_PLAYER;
        let m = Math.imul(id, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(playerZone[id] | (playerX[id] << 16), P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(playerY[id] | (playerAngle[id] << 16), P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(playerHealth[id], P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(playerKills[id] | 0, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(playerDeaths[id] | 0, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(playerHeld[id] | 0, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(lowWord(deathAtUs) | 0, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(highWord(deathAtUs) | 0, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        a = hashFinish(ha);
        b = hashFinish(hb);
      }
      sumA = (sumA - playerHashA[id] + a) | 0;
      sumB = (sumB - playerHashB[id] + b) | 0;
      playerHashA[id] = a;
      playerHashB[id] = b;
    }
    this.dirtyPlayerCount = 0;
    const dirtyTreasures = this.dirtyTreasures;
    const treasureDirty = this.treasureDirty;
    const treasurePresent = this.treasurePresent;
    const treasureZone = this.treasureZone;
    const treasureX = this.treasureX;
    const treasureY = this.treasureY;
    const treasureValue = this.treasureValue;
    const treasureOwner = this.treasureOwner;
    const treasureHashA = this.treasureHashA;
    const treasureHashB = this.treasureHashB;
    for (let i = 0; i < this.dirtyTreasureCount; i++) {
      const id = dirtyTreasures[i];
      treasureDirty[id] = 0;
      let a = 0;
      let b = 0;
      if (treasurePresent[id] === 1) {
        let ha = START_A_TREASURE;
        let hb = START_B_TREASURE;
        let m = Math.imul(id, P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(treasureZone[id] | (treasureX[id] << 16), P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(treasureY[id] | (treasureValue[id] << 16), P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        m = Math.imul(treasureOwner[id], P3);
        ha = (ha + m) | 0; ha = Math.imul((ha << 17) | (ha >>> 15), P4); hb = (hb + m) | 0; hb = Math.imul((hb << 17) | (hb >>> 15), P4);
        a = hashFinish(ha);
        b = hashFinish(hb);
      }
      sumA = (sumA - treasureHashA[id] + a) | 0;
      sumB = (sumB - treasureHashB[id] + b) | 0;
      treasureHashA[id] = a;
      treasureHashB[id] = b;
    }
    this.dirtyTreasureCount = 0;
    this.sumA = sumA;
    this.sumB = sumB;
  }

  /** The digest: 16 hex digits. Brings the hashes up to date first (see flushHashes). */
  digest(): string {
    this.flushHashes();
    return worldDigest(this.optionsHash, this.sumA, this.sumB, this.playersPresent, this.treasuresSpawned, this.treasuresAvailable, this.treasuresBanked);
  }

  /**
   * What a shard contributes to the digest of a sharded replay: the lane sums and the
   * counters, all of which add up across disjoint shards (see EngineSharding).
   */
  digestWords(): number[] {
    this.flushHashes();
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
