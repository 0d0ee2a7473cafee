import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { worldCodec } from '../../engine/world/codec.js';
import { trafficOptions, WorldTraffic, type TrafficOptions } from '../../engine/world/traffic.js';
import { WorldTrafficSource } from '../../recorder/sources/synthetic.js';
import { packerSupports, WORLD_EVENT_FIELDS, WorldEventRing, WorldTrafficPacker } from '../../recorder/sources/world-traffic-packer.js';
import { WORLD_TRAFFIC_SOURCE_SHA256 } from '../../recorder/sources/world-traffic-wasm.js';
import { BlockBuilder, BlockCursor, type EncodedBlock } from '../../tape/block.js';
import { tapedeck, tempDir } from '../support/cli.js';
import { propertyParams } from '../support/property.js';

const writer = { encodedLength: worldCodec.encodedLength!, encodeInto: worldCodec.encodeInto! };

/** A block's events as the WebAssembly generator hands them over: WORLD_EVENT_FIELDS numbers and a timestamp each. */
type EventNumbers = { fields: number[]; timestamps: number[] };
type Outcome = { blocks: EncodedBlock[]; numbers?: EventNumbers[]; position: number; error?: string };

/** The blocks the JavaScript generator and BlockBuilder.addRun make, completed by the builder (the reference). */
function javascriptBlocks(options: TrafficOptions, startIndex: number, blockEvents: number): Outcome {
  const traffic = new WorldTraffic(options);
  traffic.skipTo(startIndex);
  const builder = new BlockBuilder();
  const blocks: EncodedBlock[] = [];
  let seq = 100;
  try {
    for (;;) {
      const n = builder.addRun(seq, blockEvents, traffic, writer);
      if (n === 0) break;
      seq += n;
      blocks.push(builder.finish(blocks.length));
    }
  } catch (error) {
    return { blocks, position: traffic.position, error: String(error) };
  }
  return { blocks, position: traffic.position };
}

function wasmBlocks(options: TrafficOptions, startIndex: number, blockEvents: number): Outcome {
  const packer = new WorldTrafficPacker(options, blockEvents, startIndex);
  const blocks: EncodedBlock[] = [];
  const numbers: EventNumbers[] = [];
  let seq = 100;
  try {
    for (;;) {
      const block = packer.packBlock(seq, blockEvents, blocks.length);
      if (block === null) break;
      seq += block.eventCount;
      blocks.push(block);
      const ring = WorldEventRing.create(block.eventCount, 2);
      expect(packer.eventsInto(ring, 1)).toBe(block.eventCount);
      numbers.push({ fields: [...ring.fields.subarray(block.eventCount * WORLD_EVENT_FIELDS)], timestamps: [...ring.timestamps.subarray(block.eventCount)] });
    }
  } catch (error) {
    return { blocks, numbers, position: packer.position, error: String(error) };
  }
  return { blocks, numbers, position: packer.position };
}

/** Where two blocks' events as numbers first differ, or null (a toEqual diff of 30,000 numbers takes minutes to print). */
function firstDifference(actual: EventNumbers, expected: EventNumbers): string | null {
  if (actual.timestamps.length !== expected.timestamps.length) return `${actual.timestamps.length} events, expected ${expected.timestamps.length}`;
  for (let i = 0; i < expected.fields.length; i++) {
    if (actual.fields[i] !== expected.fields[i]) return `event ${Math.floor(i / WORLD_EVENT_FIELDS)}, field ${i % WORLD_EVENT_FIELDS}: ${actual.fields[i]}, expected ${expected.fields[i]}`;
  }
  for (let i = 0; i < expected.timestamps.length; i++) {
    if (actual.timestamps[i] !== expected.timestamps[i]) return `event ${i}'s timestamp: ${actual.timestamps[i]}, expected ${expected.timestamps[i]}`;
  }
  return null;
}

function expectSameBlocks(actual: Outcome, expected: Outcome): void {
  expect(actual.error).toBe(expected.error);
  // Where the JavaScript failed mid-block, the block it was filling was not finished.
  if (expected.error === undefined) expect(actual.position).toBe(expected.position);
  expect(actual.blocks.length).toBe(expected.blocks.length);
  for (let i = 0; i < expected.blocks.length; i++) {
    // The header, checksum and position index; then the bytes.
    const { data: a, sources: sourcesA, ...headerA } = actual.blocks[i];
    const { data: b, sources: sourcesB, ...headerB } = expected.blocks[i];
    expect(headerA, `block ${i}`).toEqual(headerB);
    expect([...sourcesA], `block ${i}'s position index`).toEqual([...sourcesB]);
    expect(Buffer.from(a).equals(Buffer.from(b)), `block ${i}'s bytes`).toBe(true);
    // The events as numbers are the block's events, decoded.
    const expectedNumbers: EventNumbers = { fields: [], timestamps: [] };
    const cursor = new BlockCursor().reset(expected.blocks[i], b);
    while (cursor.next()) {
      const e = worldCodec.decodeAt!(b, cursor.payloadOffset, cursor.payloadLength);
      expectedNumbers.fields.push(e.kind, e.id, e.other, e.zone, e.x, e.y, e.amount, cursor.partition);
      expectedNumbers.timestamps.push(cursor.timestampUs);
    }
    expect(firstDifference(actual.numbers![i], expectedNumbers), `block ${i}'s events as numbers`).toBe(null);
  }
}

describe('the WebAssembly traffic generator (world-traffic.c)', () => {
  it('is built from the C source in the repository (scripts/build-wasm.sh after any change to it)', () => {
    const source = readFileSync(new URL('../../recorder/sources/world-traffic.c', import.meta.url));
    expect(createHash('sha256').update(source).digest('hex')).toBe(WORLD_TRAFFIC_SOURCE_SHA256);
  });

  it('packs the same blocks as WorldTraffic and BlockBuilder.addRun for the default traffic (1M events)', () => {
    const options = trafficOptions({ seed: 1, events: 1_000_000 });
    expect(packerSupports(options)).toBe(true);
    const expected = javascriptBlocks(options, 0, 4096);
    expect(expected.blocks.length).toBe(245);
    expectSameBlocks(wasmBlocks(options, 0, 4096), expected);
  });

  it('packs the same blocks for any options it supports, seed, resume point and block size', () => {
    const options = fc.record({
      seed: fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 })),
      events: fc.integer({ min: 0, max: 20_000 }),
      ratePerSec: fc.oneof(fc.double({ min: 0.001, max: 1e8, noNaN: true }), fc.constantFrom(500_000, 2_500_000)),
      partitions: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 2 ** 31 - 1 })),
      players: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 6000 })),
      profile: fc.constantFrom('steady' as const, 'ramp' as const, 'burst' as const, 'hot' as const),
      startUs: fc.oneof(fc.constant(1_767_225_600_000_000), fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 2 ** 52 - 2 ** 34, max: 2 ** 52 - 1 })),
      zones: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 65536 })),
      arenaSize: fc.oneof(fc.integer({ min: 1, max: 1024 }), fc.constant(65536)),
      maxStep: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.constant(32767)),
    });
    fc.assert(
      fc.property(options, fc.nat(), fc.integer({ min: 1, max: 5000 }), (o, startAt, blockEvents) => {
        const full = trafficOptions(o);
        expect(packerSupports(full)).toBe(true);
        const startIndex = o.events === 0 ? 0 : startAt % (o.events + 1);
        expectSameBlocks(wasmBlocks(full, startIndex, blockEvents), javascriptBlocks(full, startIndex, blockEvents));
      }),
      propertyParams('WebAssembly traffic equals WorldTraffic', 120),
    );
  });

  it('stops a block at BLOCK_MAX_BYTES of data, as addRun does', () => {
    const options = trafficOptions({ seed: 3, events: 400_000 });
    const expected = javascriptBlocks(options, 0, 300_000);
    expect(expected.blocks[0].eventCount).toBeLessThan(300_000);
    expectSameBlocks(wasmBlocks(options, 0, 300_000), expected);
  });

  it('leaves options outside its ranges to the JavaScript generator, which refuses them as before', () => {
    const outside = [
      { arenaSize: 70_000 },
      { maxStep: 40_000 },
      { players: 2.5 },
      { partitions: 0 },
      { profile: 'spiky' },
      { seed: 2 ** 60 },
      { events: 2.5 },
      { ratePerSec: 0 },
      { ratePerSec: Infinity },
      { startUs: -1 },
      { startUs: 0.5 },
      { startUs: 2 ** 52 },
    ];
    for (const bad of outside) {
      expect(packerSupports(trafficOptions(bad as Partial<TrafficOptions>)), JSON.stringify(bad)).toBe(false);
    }
    // Coordinates beyond what the world codec holds: the codec names the field.
    const source = new WorldTrafficSource({ seed: 1, events: 10, arenaSize: 70_000 });
    expect(() => source.packBlock(0, 4096, 0)).toThrow(/join\.x must be an integer in \[0, 65535\]/);
    // In range, the source's blocks are the WebAssembly ones, and it resumes where they ended.
    const inRange = new WorldTrafficSource({ seed: 1, events: 5000 }, 1000);
    const block = inRange.packBlock(100, 4096, 0)!;
    const reference = javascriptBlocks(trafficOptions({ seed: 1, events: 5000 }), 1000, 4096).blocks[0];
    expect({ ...block, data: Buffer.from(block.data) }).toEqual({ ...reference, data: Buffer.from(reference.data) });
    expect(inRange.resumePosition()).toEqual({ nextIndex: 5000 });
    // Asked for more events a block than it was made for: refused, not written past its buffer.
    const packer = new WorldTrafficPacker(trafficOptions({ seed: 1, events: 50_000 }), 100, 0);
    expect(() => packer.packBlock(0, 20_000, 0)).toThrow('blocks of 20000 events: this generator was made for at most 100');
    expect(packer.packBlock(0, 100, 0)!.eventCount).toBe(100);
  });

  it('a Node without WebAssembly (--jitless) records the same tape, in JavaScript', () => {
    const dir = tempDir();
    const tapes = { jitless: join(dir, 'jitless.tape'), wasm: join(dir, 'wasm.tape') };
    // 250,000 events: enough for the source worker (from 200,000), where the generator packs.
    const args = (out: string) => ['record', '--out', out, '--events', '250000', '--seed', '3'];
    const jitless = tapedeck(args(tapes.jitless), { env: { NODE_OPTIONS: '--jitless' } });
    expect(jitless.stderr + jitless.stdout).toContain('digest 51e2b5fa0a555565 at event 250,000');
    expect(jitless.status).toBe(0);
    expect(tapedeck(args(tapes.wasm)).status).toBe(0);
    const rows = (path: string) => {
      const db = new Database(path, { readonly: true });
      try {
        // Each table's rows, hashed (blobs as base64): toEqual on 6 MB of blobs takes 20 s.
        return ['blocks', 'block_sources', 'checkpoints', 'snapshots'].map((table) => {
          const text = JSON.stringify(db.prepare(`SELECT * FROM ${table} ORDER BY 1, 2`).raw().all(), function (this: Record<string, unknown>, key, value: unknown) {
            const raw = this[key];
            return Buffer.isBuffer(raw) ? raw.toString('base64') : value;
          });
          return `${table} ${createHash('sha256').update(text).digest('hex')}`;
        });
      } finally {
        db.close();
      }
    };
    expect(rows(tapes.jitless)).toEqual(rows(tapes.wasm));
  }, 60_000);
});
