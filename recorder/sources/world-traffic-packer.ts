// The synthetic source's blocks made by WebAssembly (world-traffic.c): the `world` traffic
// generator and the block packing of its events in one call a block, on the recorder's source
// worker. The blocks are those that WorldTraffic and BlockBuilder.addRun make, byte for byte
// (test/recorder/world-traffic-packer.test.ts); options outside the ranges the C code handles
// (packerSupports) are left to that JavaScript, which also gives the errors for them.

import { MAX_PARTITION } from '../../engine/types.js';
import { TRAFFIC_PROFILES, type TrafficOptions } from '../../engine/world/traffic.js';
import { WORLD_LIMITS } from '../../engine/world/events.js';
import { BLOCK_MAX_BYTES, blockChecksum, MAX_BLOCK_VALUE, SOURCE_FIELDS, type EncodedBlock } from '../../tape/block.js';
import { WORLD_TRAFFIC_WASM } from './world-traffic-wasm.js';

/** The part of the WebAssembly JavaScript API used here (Node has it; its types are in the DOM library, which this project leaves out). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { readonly exports: unknown };
};
type WasmModule = object;

/** world-traffic.c's exports. */
interface Exports {
  readonly memory: { readonly buffer: ArrayBuffer };
  io(): number;
  blockBytes(): number;
  sources(): number;
  fields(): number;
  timestamps(): number;
  init(seed: number, partitions: number, players: number, profile: number, zones: number, arena: number, step: number, capacity: number): number;
  skip(count: number): number;
  pack(limit: number, maxBytes: number): number;
}

/** Numbers a world event is handed over as: kind, id, other, zone, x, y, amount, partition. */
export const WORLD_EVENT_FIELDS = 8;

/**
 * Blocks' world events as numbers, in shared memory: `slots` slots of up to `slotEvents`
 * events each (WORLD_EVENT_FIELDS int32s and a timestamp an event), the block numbered b in
 * slot b mod slots. The recorder's source worker writes a block's events there as it sends
 * the block, and the main thread applies them from there. The slots are as many as the blocks
 * the worker may have in flight (MAX_IN_FLIGHT): after sending a block the worker waits until
 * at most MAX_IN_FLIGHT - 1 are untaken (SendWindow), so the slot it fills next, that of the
 * block MAX_IN_FLIGHT before, holds events the main thread has applied. (A stop lets that
 * wait return at once, but the worker then stops its source before it packs another block.)
 * Events as numbers, not decoded from the block: the main thread's decoding was about a tenth
 * of its time, and the source worker has time to spare.
 */
export class WorldEventRing {
  readonly fields: Int32Array;
  readonly timestamps: Float64Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly slotEvents: number,
    readonly slots: number,
  ) {
    const events = slotEvents * slots;
    this.fields = new Int32Array(buffer, 0, events * WORLD_EVENT_FIELDS);
    this.timestamps = new Float64Array(buffer, events * WORLD_EVENT_FIELDS * 4, events);
  }

  static create(slotEvents: number, slots: number): WorldEventRing {
    return new WorldEventRing(new SharedArrayBuffer(slotEvents * slots * (WORLD_EVENT_FIELDS * 4 + 8)), slotEvents, slots);
  }
}

/** Bytes a world event packs into at most (see world-traffic.c), with room to spare. */
const MAX_EVENT_BYTES = 64;
/** Events skip() generates a call, when resuming. */
const SKIP_CHUNK = 1 << 30;

/** Compiled once a thread, on first use. */
let compiled: WasmModule | null = null;

const integerIn = (value: number, min: number, max: number): boolean => Number.isInteger(value) && value >= min && value <= max;

/** Whether this Node has WebAssembly: not with `--jitless` or `--no-expose-wasm`. */
const wasmAvailable = typeof WebAssembly === 'object';

/**
 * Whether the WebAssembly generator handles these options: every one an integer in the range
 * the world's events can hold (its ids, zones, coordinates and steps), with the four profiles.
 * Others go to the JavaScript generator, which names what is wrong with them; so does every
 * recording when this Node has no WebAssembly.
 */
export function packerSupports(o: TrafficOptions): boolean {
  return (
    wasmAvailable &&
    Number.isSafeInteger(o.seed) &&
    integerIn(o.partitions, 1, MAX_PARTITION) &&
    integerIn(o.players, 1, WORLD_LIMITS.maxId + 1) &&
    integerIn(o.zones, 1, WORLD_LIMITS.maxZone + 1) &&
    integerIn(o.arenaSize, 1, WORLD_LIMITS.maxCoordinate + 1) &&
    integerIn(o.maxStep, 0, WORLD_LIMITS.maxStep) &&
    (TRAFFIC_PROFILES as readonly string[]).includes(o.profile) &&
    Number.isSafeInteger(o.events) &&
    o.events >= 0 &&
    // A positive, finite rate and a start in a block's range: every arrival time the C code
    // works with is then finite and below 2^53 (it stops at the first beyond MAX_BLOCK_VALUE).
    Number.isFinite(o.ratePerSec) &&
    o.ratePerSec > 0 &&
    integerIn(o.startUs, 0, MAX_BLOCK_VALUE)
  );
}

/** One generator, from event `startIndex` on, packing blocks of up to `blockEvents` events. */
export class WorldTrafficPacker {
  private readonly x: Exports;
  private view: Float64Array;
  /** Events in the block packBlock() returned last. */
  private lastCount = 0;
  private index = 0;

  constructor(
    options: TrafficOptions,
    private readonly blockEvents: number,
    startIndex: number,
  ) {
    compiled ??= new WebAssembly.Module(Buffer.from(WORLD_TRAFFIC_WASM, 'base64'));
    const instance = new WebAssembly.Instance(compiled, { env: { log: Math.log } });
    this.x = instance.exports as unknown as Exports;
    this.view = new Float64Array(this.x.memory.buffer, this.x.io(), 16);
    this.io[0] = options.events;
    this.io[1] = options.ratePerSec;
    this.io[2] = options.startUs;
    const capacity = Math.min(blockEvents, Math.ceil(BLOCK_MAX_BYTES / MAX_EVENT_BYTES) + 1) * MAX_EVENT_BYTES;
    const profile = TRAFFIC_PROFILES.indexOf(options.profile);
    const o = options;
    if (this.x.init(o.seed | 0, o.partitions, o.players, profile, o.zones, o.arenaSize, o.maxStep, capacity) !== 0) {
      throw new Error(`the synthetic generator could not have the memory for ${o.players} players and ${o.zones} zones`);
    }
    while (this.index < startIndex) {
      const n = this.checked(this.x.skip(Math.min(SKIP_CHUNK, startIndex - this.index)));
      if (n === 0) break;
      this.index += n;
    }
  }

  /** Index of the next event to be generated (the source position to resume from). */
  get position(): number {
    return this.index;
  }

  /**
   * The next block, numbered `blockNo`, its first event numbered `seq`: up to `limit` events,
   * fewer at the end of the traffic or at BLOCK_MAX_BYTES of data; null when the traffic is
   * done. Complete, with its checksum and position index: the source worker has the time
   * that the recorder's main thread, which would otherwise add them, has not.
   */
  packBlock(seq: number, limit: number, blockNo: number): EncodedBlock | null {
    const first = this.index;
    const n = this.x.pack(limit, BLOCK_MAX_BYTES);
    if (n === -3) throw new RangeError(`blocks of ${limit} events: this generator was made for at most ${this.blockEvents}`);
    const io = this.io;
    if (n === -2) {
      const position = io[6] - 1;
      throw new RangeError(`event ${seq + (position - first)}: timestamp ${io[8]} and position ${position} must be integers in [0, 2^52 - 1]`);
    }
    this.index += this.checked(n);
    if (n === 0) return null;
    const header = { blockNo, firstSeq: seq, eventCount: n, firstTsUs: io[3], minTsUs: io[4], maxTsUs: io[5] };
    const data = new Uint8Array(this.x.memory.buffer, this.x.blockBytes(), io[7]).slice();
    const sources = new Float64Array(this.x.memory.buffer, this.x.sources(), io[10] * SOURCE_FIELDS).slice();
    this.lastCount = n;
    return { ...header, data, checksum: blockChecksum(header, data), sources };
  }

  /**
   * The events of the block packBlock() returned last, as numbers, into slot `slot` of `ring`
   * (which must hold that many a slot); returns how many.
   */
  eventsInto(ring: WorldEventRing, slot: number): number {
    const n = this.lastCount;
    if (n > ring.slotEvents) throw new RangeError(`a block of ${n} events does not fit a ring slot of ${ring.slotEvents}`);
    const memory = this.x.memory.buffer;
    ring.fields.set(new Int32Array(memory, this.x.fields(), n * WORLD_EVENT_FIELDS), slot * ring.slotEvents * WORLD_EVENT_FIELDS);
    ring.timestamps.set(new Float64Array(memory, this.x.timestamps(), n), slot * ring.slotEvents);
    return n;
  }

  private checked(n: number): number {
    if (n === -1) throw new Error('the synthetic generator ran out of memory');
    return n;
  }

  /** The numbers the module shares (see world-traffic.c), viewed afresh when its memory has grown (which detaches the views of the old). */
  private get io(): Float64Array {
    if (this.view.buffer !== this.x.memory.buffer) this.view = new Float64Array(this.x.memory.buffer, this.x.io(), 16);
    return this.view;
  }
}
