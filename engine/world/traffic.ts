// Synthetic `world` traffic: a seeded generator of realistic game events with timestamps,
// partitions and keys. Pure: the same options give the same events, on every machine.
//
// Arrivals are a Poisson process in virtual time (exponential gaps with mean 1/rate), shaped by
// the profile:
//   steady  constant rate;
//   ramp    the rate climbs linearly from 0.25x to 1.75x the given rate over the session;
//   burst   the first 100 ms of every virtual second run at 5x the rate;
//   hot     constant rate, but players join zones with a Zipf-like skew (zone k gets weight
//           1/(k+1)), so a few zones, and their partitions, carry most of the traffic.
// The first `players` events are joins; after that the mix is about 50% move, 20% rotate,
// 15% shoot, 6% loot, 6% spawn, 1.5% leave, 1.5% join. The generator keeps a light model
// of who is online in which zone and which treasures it believes are available, so shots
// aim at players in the same zone and loots at treasures that exist; whether they land is
// the engine's business. Partition = zone mod partitions; key = the player id (decimal), or
// "t<id>" for a treasure spawn.

import { SeededRandom } from '../random.js';
import { WorldEventKind, worldEvent, type WorldEvent } from './events.js';
import { DEFAULT_WORLD_OPTIONS } from './state.js';

export const TRAFFIC_PROFILES = ['steady', 'ramp', 'burst', 'hot'] as const;
export type TrafficProfile = (typeof TRAFFIC_PROFILES)[number];

export interface TrafficOptions {
  readonly seed: number;
  /** Number of events to generate. */
  readonly events: number;
  /** Mean arrival rate, events per second of virtual time. */
  readonly ratePerSec: number;
  readonly partitions: number;
  readonly players: number;
  readonly profile: TrafficProfile;
  /** Timestamp of the session start, microseconds since the Unix epoch. */
  readonly startUs: number;
  /** Zones and arena size of the world the traffic is for. */
  readonly zones: number;
  readonly arenaSize: number;
  readonly maxStep: number;
}

/** Treasure ids the generator cycles through, shared out among zones (a spawn onto an id still in the world is ignored). */
export const TREASURE_ID_POOL = 1 << 16;

/** 2026-01-01T00:00:00Z: a fixed start, so that generated tapes do not depend on the wall clock. */
export const DEFAULT_START_US = 1_767_225_600_000_000;

export const DEFAULT_TRAFFIC_OPTIONS: TrafficOptions = {
  seed: 1,
  events: 1_000_000,
  ratePerSec: 500_000,
  partitions: DEFAULT_WORLD_OPTIONS.zones,
  players: 5_000,
  profile: 'steady',
  startUs: DEFAULT_START_US,
  zones: DEFAULT_WORLD_OPTIONS.zones,
  arenaSize: DEFAULT_WORLD_OPTIONS.arenaSize,
  maxStep: DEFAULT_WORLD_OPTIONS.maxStep,
};

/**
 * `options` with every option left out at its default: the options a generator runs with.
 * Returned as a literal of its own, not as the spread: the spread's result changed its hidden
 * class at the ninth call in a process, and every optimized method of the generator that read
 * an option was thrown away (`--trace-deopt`: "wrong map" in the constructor, advance, gapUs and
 * five more). The recorder's source worker calls this twice a recording: in its fifth, V8
 * compiled those methods again, about 56 ms of its helper threads' time (`--trace-opt`).
 */
export function trafficOptions(options: Partial<TrafficOptions> = {}): TrafficOptions {
  const o = { ...DEFAULT_TRAFFIC_OPTIONS, ...options };
  return {
    seed: o.seed,
    events: o.events,
    ratePerSec: o.ratePerSec,
    partitions: o.partitions,
    players: o.players,
    profile: o.profile,
    startUs: o.startUs,
    zones: o.zones,
    arenaSize: o.arenaSize,
    maxStep: o.maxStep,
  };
}

export interface TrafficRecord {
  readonly index: number;
  readonly timestampUs: number;
  readonly partition: number;
  /** Key as UTF-8 bytes. The same array is handed out for every event of a player: do not mutate. */
  readonly key: Uint8Array;
  readonly event: WorldEvent;
}

// Cumulative thresholds of the event mix, out of 1000.
const MIX = [
  [500, WorldEventKind.move],
  [700, WorldEventKind.rotate],
  [850, WorldEventKind.shoot],
  [910, WorldEventKind.loot],
  [970, WorldEventKind.spawn],
  [985, WorldEventKind.leave],
  [1000, WorldEventKind.join],
] as const;

/** The kind each roll in [0, 999] picks, by MIX (a table lookup: the roll is made per event). */
const KIND_OF_ROLL = new Uint8Array(1000);
for (let roll = 0, i = 0; roll < 1000; roll++) {
  while (roll >= MIX[i][0]) i++;
  KIND_OF_ROLL[roll] = MIX[i][1];
}

/** Decimal digits of the non-negative integer `n`. */
function digitCount(n: number): number {
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  return digits;
}

/** Writes `prefix` then the decimal digits of `n` at `offset` of `bytes`; returns the length written. */
function putAsciiKey(bytes: Uint8Array, offset: number, prefix: string, n: number): number {
  const length = prefix.length + digitCount(n);
  for (let i = 0; i < prefix.length; i++) bytes[offset + i] = prefix.charCodeAt(i);
  for (let i = length - 1, v = n; i >= prefix.length; i--, v = Math.floor(v / 10)) bytes[offset + i] = 48 + (v % 10);
  return length;
}

/** The ASCII bytes of `prefix` followed by the decimal digits of `n` (TextEncoder is slower here). */
function asciiKey(prefix: string, n: number): Uint8Array {
  const bytes = new Uint8Array(prefix.length + digitCount(n));
  putAsciiKey(bytes, 0, prefix, n);
  return bytes;
}

/** Room at the end of WorldTraffic.keyBytes for a spawn's key: "t" and the digits of any id. */
const SPAWN_KEY_ROOM = 1 + 16;

/**
 * A set of ids with O(1) add, remove and uniform pick. `slot` maps an id to its index in the
 * bag; bags that never hold the same id at once (the zones' bags) share one slot array.
 */
class IdBag {
  private readonly ids: number[] = [];

  constructor(private readonly slot: Int32Array) {}

  static slots(bound: number): Int32Array {
    return new Int32Array(bound).fill(-1);
  }
  get size(): number {
    return this.ids.length;
  }
  add(id: number): void {
    this.slot[id] = this.ids.length;
    this.ids.push(id);
  }
  remove(id: number): void {
    const i = this.slot[id];
    if (i === -1 || this.ids[i] !== id) return;
    const last = this.ids.pop() as number;
    if (last !== id) {
      this.ids[i] = last;
      this.slot[last] = i;
    }
    this.slot[id] = -1;
  }
  pick(random: SeededRandom): number {
    return this.ids[random.int(0, this.ids.length - 1)];
  }
}

export class WorldTraffic {
  readonly options: TrafficOptions;
  /**
   * The profile, tested once here rather than by a string comparison per event: on the
   * recorder's source worker the options arrive copied from another thread, and a copied
   * string is compared by its contents, not by identity (about 25 of the 1,825 instructions
   * generating and packing an event took there, valgrind).
   */
  private readonly ramp: boolean;
  private readonly burst: boolean;
  private readonly random: SeededRandom;
  private index = 0;
  private elapsedUs = 0;
  /** Per zone: the index, within the zone's share of treasure ids, of its next spawn. */
  private readonly nextTreasure: Int32Array;
  /** The event advance() generated last: one object, overwritten by each call (next() hands out a copy). */
  readonly current: WorldEvent = worldEvent(WorldEventKind.join, 0);
  currentTimestampUs = 0;
  currentPartition = 0;
  /**
   * Every player's key (the decimal id), one after another, then room for the key of the
   * spawn being generated: the current event's key is `currentKeyLength` bytes from
   * `currentKeyOffset`. One array for all keys, written by the generator: packing a block
   * copies keys from it about 30% faster than from 5,000 small arrays scattered over the heap.
   */
  readonly keyBytes: Uint8Array;
  currentKeyOffset = 0;
  currentKeyLength = 0;
  /** Where each player's key starts in keyBytes; entry `players` is where the spawn key goes. */
  private readonly playerKeyOffsets: Int32Array;
  /** Zone of the event being generated: it picks the partition. */
  private eventZone = 0;
  private readonly playerZone: Int32Array;
  private readonly playerKeys: Uint8Array[];
  private readonly online: IdBag;
  private readonly offline: IdBag;
  private readonly zonePlayers: IdBag[];
  private readonly zoneTreasures: IdBag[];
  private readonly zoneWeights: Float64Array;
  /** The zone whose bag holds each treasure id the generator believes available, or -1. */
  private readonly treasureZone = new Int32Array(TREASURE_ID_POOL).fill(-1);

  constructor(options: Partial<TrafficOptions> = {}) {
    this.options = trafficOptions(options);
    const o = this.options;
    this.ramp = o.profile === 'ramp';
    this.burst = o.profile === 'burst';
    this.random = new SeededRandom(o.seed);
    this.playerZone = new Int32Array(o.players).fill(-1);
    this.nextTreasure = new Int32Array(o.zones);
    this.playerKeys = Array.from({ length: o.players }, (_, p) => asciiKey('', p));
    this.playerKeyOffsets = new Int32Array(o.players + 1);
    let keyLength = 0;
    for (let p = 0; p < o.players; p++) {
      this.playerKeyOffsets[p] = keyLength;
      keyLength += this.playerKeys[p].length;
    }
    this.playerKeyOffsets[o.players] = keyLength;
    this.keyBytes = new Uint8Array(keyLength + SPAWN_KEY_ROOM);
    for (let p = 0; p < o.players; p++) this.keyBytes.set(this.playerKeys[p], this.playerKeyOffsets[p]);
    this.online = new IdBag(IdBag.slots(o.players));
    this.offline = new IdBag(IdBag.slots(o.players));
    for (let p = 0; p < o.players; p++) this.offline.add(p);
    const playerSlots = IdBag.slots(o.players);
    const treasureSlots = IdBag.slots(TREASURE_ID_POOL);
    this.zonePlayers = Array.from({ length: o.zones }, () => new IdBag(playerSlots));
    this.zoneTreasures = Array.from({ length: o.zones }, () => new IdBag(treasureSlots));
    // Cumulative zone weights: uniform, or 1/(k+1) for the hot profile.
    this.zoneWeights = new Float64Array(o.zones);
    let total = 0;
    for (let z = 0; z < o.zones; z++) {
      total += o.profile === 'hot' ? 1 / (z + 1) : 1;
      this.zoneWeights[z] = total;
    }
    for (let z = 0; z < o.zones; z++) this.zoneWeights[z] /= total;
  }

  /** Index of the next event to be generated (the generator's source position). */
  get position(): number {
    return this.index;
  }

  /** Index of the event advance() generated last (its source position). */
  get currentPosition(): number {
    return this.index - 1;
  }

  get done(): boolean {
    return this.index >= this.options.events;
  }

  /** The next event, or null when `events` have been generated. */
  next(): TrafficRecord | null {
    if (!this.advance()) return null;
    const e = this.current;
    return {
      index: this.index - 1,
      timestampUs: this.currentTimestampUs,
      partition: this.currentPartition,
      key: this.currentKey,
      event: worldEvent(e.kind, e.id, e.other, e.zone, e.x, e.y, e.amount),
    };
  }

  /**
   * The current event's key as an array of its own: the player's (the same array for every
   * event of a player: do not mutate), or a new one for a spawn.
   */
  get currentKey(): Uint8Array {
    const e = this.current;
    return e.kind === WorldEventKind.spawn ? asciiKey('t', e.id) : this.playerKeys[e.id];
  }

  /**
   * Generate the next event into `current` (and `currentTimestampUs`, `currentPartition`, the
   * key's place in `keyBytes`), allocating nothing per event; false when `events` have been
   * generated. The recorder's source worker packs from these; next() copies them out.
   */
  advance(): boolean {
    if (this.index >= this.options.events) return false;
    const index = this.index++;
    this.elapsedUs += this.gapUs(index);
    if (index < this.options.players) this.joinEvent();
    else this.mixedEvent();
    const e = this.current;
    this.currentTimestampUs = this.options.startUs + Math.floor(this.elapsedUs);
    // Zone z goes to partition z mod partitions; with no more zones than partitions (the
    // defaults) that is z, without a division.
    const zone = this.eventZone;
    const partitions = this.options.partitions;
    this.currentPartition = zone < partitions ? zone : zone % partitions;
    if (e.kind === WorldEventKind.spawn) {
      const at = this.playerKeyOffsets[this.options.players];
      this.currentKeyOffset = at;
      this.currentKeyLength = putAsciiKey(this.keyBytes, at, 't', e.id);
    } else {
      const at = this.playerKeyOffsets[e.id];
      this.currentKeyOffset = at;
      this.currentKeyLength = this.playerKeyOffsets[e.id + 1] - at;
    }
    return true;
  }

  /** Skip ahead so that the next event generated is number `index` (used to resume). */
  skipTo(index: number): void {
    while (this.index < index && this.advance()) {
      // Generating is the only way to rebuild the model; it is fast enough to replay.
    }
  }

  private gapUs(index: number): number {
    const o = this.options;
    let rate = o.ratePerSec;
    if (this.ramp) rate *= 0.25 + (1.5 * index) / Math.max(1, o.events - 1);
    else if (this.burst && this.elapsedUs % 1_000_000 < 100_000) rate *= 5;
    // 1 - float() is in (0, 1], so the log is finite.
    return (-Math.log(1 - this.random.float()) * 1e6) / rate;
  }

  private pickZone(): number {
    const u = this.random.float();
    const w = this.zoneWeights;
    let lo = 0;
    let hi = w.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (u < w[mid]) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private coordinate(): number {
    return this.random.int(0, this.options.arenaSize - 1);
  }

  private joinEvent(): void {
    if (this.offline.size === 0) {
      this.moveEvent(this.online.pick(this.random));
      return;
    }
    const player = this.offline.pick(this.random);
    const zone = this.pickZone();
    this.offline.remove(player);
    this.online.add(player);
    this.zonePlayers[zone].add(player);
    this.playerZone[player] = zone;
    this.eventZone = zone;
    this.emit(WorldEventKind.join, player, 0, zone, this.coordinate(), this.coordinate(), 0);
  }

  private mixedEvent(): void {
    if (this.online.size === 0) {
      this.joinEvent();
      return;
    }
    const kind = KIND_OF_ROLL[this.random.int(0, 999)] as WorldEventKind;
    const player = this.online.pick(this.random);
    switch (kind) {
      case WorldEventKind.move:
        this.moveEvent(player);
        return;
      case WorldEventKind.rotate:
        this.playerAction(WorldEventKind.rotate, player, 0, 0, 0, this.random.int(0, 65535));
        return;
      case WorldEventKind.shoot: {
        const players = this.zonePlayers[this.playerZone[player]];
        let target = player;
        if (players.size >= 2) {
          target = players.pick(this.random);
          if (target === player) target = players.pick(this.random);
        }
        // Nobody else in the zone, or the shooter drawn twice: a move instead.
        if (target === player) this.moveEvent(player);
        else this.playerAction(WorldEventKind.shoot, player, target, 0, 0, this.random.int(10, 35));
        return;
      }
      case WorldEventKind.loot: {
        const treasures = this.zoneTreasures[this.playerZone[player]];
        if (treasures.size === 0) {
          this.spawnEvent();
          return;
        }
        const treasure = treasures.pick(this.random);
        treasures.remove(treasure);
        this.treasureZone[treasure] = -1;
        this.playerAction(WorldEventKind.loot, player, treasure, 0, 0, 0);
        return;
      }
      case WorldEventKind.spawn:
        this.spawnEvent();
        return;
      case WorldEventKind.leave: {
        this.online.remove(player);
        this.offline.add(player);
        const zone = this.playerZone[player];
        this.zonePlayers[zone].remove(player);
        this.playerZone[player] = -1;
        this.eventZone = zone;
        this.emit(WorldEventKind.leave, player, 0, 0, 0, 0, 0);
        return;
      }
      default:
        this.joinEvent();
    }
  }

  private moveEvent(player: number): void {
    const step = this.options.maxStep;
    this.playerAction(WorldEventKind.move, player, 0, this.random.int(-step, step), this.random.int(-step, step), 0);
  }

  private spawnEvent(): void {
    // Treasure ids are zone-local and cycle: zone z spawns z, z + zones, z + 2 zones, ...
    // through its share of the pool, so an id whose treasure was banked can come back, but
    // only in the zone it was in. No event on one zone's partition then depends on another
    // zone's state, which is what lets a replay shard the world by partition.
    const zone = this.pickZone();
    const zones = this.options.zones;
    const share = Math.max(1, Math.floor(TREASURE_ID_POOL / zones));
    const treasure = zone + zones * this.nextTreasure[zone];
    this.nextTreasure[zone] = (this.nextTreasure[zone] + 1) % share;
    // An id from the pool may still sit, unlooted, in some zone: it moves to the new one.
    const previous = this.treasureZone[treasure];
    if (previous !== -1) this.zoneTreasures[previous].remove(treasure);
    this.treasureZone[treasure] = zone;
    this.zoneTreasures[zone].add(treasure);
    this.eventZone = zone;
    this.emit(WorldEventKind.spawn, treasure, 0, zone, this.coordinate(), this.coordinate(), this.random.int(1, 100));
  }

  /** A player's action: it goes to the partition of the player's zone. */
  private playerAction(kind: WorldEventKind, player: number, other: number, x: number, y: number, amount: number): void {
    this.emit(kind, player, other, 0, x, y, amount);
    this.eventZone = this.playerZone[player];
  }

  /**
   * The event into `current`. Callers draw its random fields as arguments, which are
   * evaluated left to right, so the draws keep the order they had when events were built as
   * objects (the generator's sequence is pinned by golden tests).
   */
  private emit(kind: WorldEventKind, id: number, other: number, zone: number, x: number, y: number, amount: number): void {
    const e = this.current;
    e.kind = kind;
    e.id = id;
    e.other = other;
    e.zone = zone;
    e.x = x;
    e.y = y;
    e.amount = amount;
  }
}
