import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CodecError } from '../../../engine/errors.js';
import { worldCodec } from '../../../engine/world/codec.js';
import { join, move, shoot, spawn, WORLD_LIMITS, WorldEventKind, worldEvent, type WorldEvent } from '../../../engine/world/events.js';
import { WorldTraffic } from '../../../engine/world/traffic.js';
import { propertyParams } from '../../support/property.js';
import { worldEventArb } from '../../support/world.js';

const anyValidEvent = fc.oneof(
  worldEventArb,
  fc.tuple(fc.integer({ min: 0, max: WORLD_LIMITS.maxId }), fc.integer({ min: 0, max: WORLD_LIMITS.maxId }), fc.integer({ min: 0, max: 255 })).map(([p, t, d]) => shoot(p, t, d)),
  fc.tuple(fc.integer({ min: 0, max: WORLD_LIMITS.maxId }), fc.integer({ min: -32767, max: 32767 }), fc.integer({ min: -32767, max: 32767 })).map(([p, dx, dy]) => move(p, dx, dy)),
);

describe('world codec', () => {
  it('binary form round-trips every generated event', () => {
    fc.assert(
      fc.property(anyValidEvent, (event) => {
        expect(worldCodec.decode(worldCodec.encode(event))).toEqual(event);
      }),
      propertyParams('world codec binary round trip', 500),
    );
  });

  it('JSON form round-trips every generated event, through JSON text', () => {
    fc.assert(
      fc.property(anyValidEvent, (event) => {
        const text = JSON.stringify(worldCodec.toJSON(event));
        expect(worldCodec.fromJSON(JSON.parse(text))).toEqual(event);
      }),
      propertyParams('world codec JSON round trip', 500),
    );
  });

  it('round-trips the synthetic generator\'s events, including decodeAt at an offset', () => {
    const traffic = new WorldTraffic({ seed: 9, events: 20_000 });
    const buffer = new Uint8Array(64);
    for (let r = traffic.next(); r !== null; r = traffic.next()) {
      const bytes = worldCodec.encode(r.event);
      expect(worldCodec.decode(bytes)).toEqual(r.event);
      buffer.set(bytes, 7);
      expect(worldCodec.decodeAt!(buffer, 7, bytes.length)).toEqual(r.event);
    }
  });

  it('decodeInto, fed the event it returned last, gives each event decodeAt gives, and refuses what decodeAt refuses', () => {
    // Any bytes, most of them a valid event: every field must be overwritten, whatever kind came before.
    const payload = fc.oneof(anyValidEvent.map((e) => worldCodec.encode(e)), fc.uint8Array({ maxLength: 14 }));
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 30 }), (payloads) => {
        let into: WorldEvent | null = null;
        for (const bytes of payloads) {
          const buffer = new Uint8Array(bytes.length + 3).fill(0xee);
          buffer.set(bytes, 3);
          let expected: unknown;
          try {
            expected = worldCodec.decodeAt!(buffer, 3, bytes.length);
          } catch (error) {
            expect(() => worldCodec.decodeInto!(buffer, 3, bytes.length, into)).toThrow((error as Error).message);
            continue;
          }
          const decoded = worldCodec.decodeInto!(buffer, 3, bytes.length, into);
          if (into !== null) expect(decoded).toBe(into);
          expect({ ...decoded }).toEqual(expected);
          into = decoded;
        }
      }),
      propertyParams('world decodeInto equals decodeAt', 500),
    );
  });

  it('encodeInto writes exactly encode\'s bytes at an offset, and encodedLength is their length', () => {
    fc.assert(
      fc.property(anyValidEvent, fc.nat({ max: 40 }), (event, offset) => {
        const expected = worldCodec.encode(event);
        const buffer = new Uint8Array(64).fill(0xee);
        expect(worldCodec.encodedLength!(event)).toBe(expected.length);
        expect(worldCodec.encodeInto!(event, buffer, offset)).toBe(offset + expected.length);
        expect(buffer.subarray(offset, offset + expected.length)).toEqual(expected);
        // Nothing written outside its bytes.
        expect(buffer.subarray(0, offset).every((b) => b === 0xee)).toBe(true);
        expect(buffer.subarray(offset + expected.length).every((b) => b === 0xee)).toBe(true);
      }),
      propertyParams('world encodeInto equals encode', 500),
    );
  });

  it('encodeInto refuses what encode refuses, with the same message', () => {
    const bad = [worldEvent(WorldEventKind.rotate, 1, 0, 0, 0, 0, 70000), move(1, 0.5, 0), shoot(1, WORLD_LIMITS.maxId + 1, 3), spawn(2 ** 24, 0, 0, 0, 1), worldEvent(9 as WorldEventKind, 1)];
    for (const event of bad) {
      const message = (() => {
        try {
          worldCodec.encode(event);
        } catch (error) {
          return (error as Error).message;
        }
        throw new Error('encode accepted a bad event');
      })();
      expect(() => worldCodec.encodeInto!(event, new Uint8Array(64), 0)).toThrow(message);
    }
    expect(() => worldCodec.encodedLength!(worldEvent(9 as WorldEventKind, 1))).toThrow(/unknown world event kind 9/);
  });

  it('takes every field of every kind at both ends of its documented range, and refuses it one past either end or not an integer, naming it', () => {
    const L = WORLD_LIMITS;
    // The layout in codec.ts's header: [kind, its fields as (JSON name, WorldEvent field, min, max)].
    const layout: [WorldEventKind, [string, 'id' | 'other' | 'zone' | 'x' | 'y' | 'amount', number, number][]][] = [
      [WorldEventKind.join, [['player', 'id', 0, L.maxId], ['zone', 'zone', 0, L.maxZone], ['x', 'x', 0, L.maxCoordinate], ['y', 'y', 0, L.maxCoordinate]]],
      [WorldEventKind.leave, [['player', 'id', 0, L.maxId]]],
      [WorldEventKind.move, [['player', 'id', 0, L.maxId], ['dx', 'x', -L.maxStep, L.maxStep], ['dy', 'y', -L.maxStep, L.maxStep]]],
      [WorldEventKind.rotate, [['player', 'id', 0, L.maxId], ['angle', 'amount', 0, L.maxAngle]]],
      [WorldEventKind.shoot, [['player', 'id', 0, L.maxId], ['target', 'other', 0, L.maxId], ['damage', 'amount', 0, L.maxDamage]]],
      [WorldEventKind.loot, [['player', 'id', 0, L.maxId], ['treasure', 'other', 0, L.maxId]]],
      [WorldEventKind.spawn, [['treasure', 'id', 0, L.maxId], ['zone', 'zone', 0, L.maxZone], ['x', 'x', 0, L.maxCoordinate], ['y', 'y', 0, L.maxCoordinate], ['value', 'amount', 0, L.maxValue]]],
    ];
    const names = ['join', 'leave', 'move', 'rotate', 'shoot', 'loot', 'spawn'];
    for (const [kind, fields] of layout) {
      for (const [name, field, min, max] of fields) {
        for (const value of [min, max]) {
          const event = worldEvent(kind, 1);
          event[field] = value;
          const buffer = new Uint8Array(32);
          const end = worldCodec.encodeInto!(event, buffer, 3);
          expect(worldCodec.decodeAt!(buffer, 3, end - 3), `${names[kind]}.${name} = ${value}`).toEqual(event);
        }
        for (const value of [min - 1, max + 1, min + 0.5, Number.NaN]) {
          const event = worldEvent(kind, 1);
          event[field] = value;
          const message = `${names[kind]}.${name} must be an integer in [${min}, ${max}], got ${value}`;
          expect(() => worldCodec.encodeInto!(event, new Uint8Array(32), 0), `${names[kind]}.${name} = ${value}`).toThrow(message);
          expect(() => worldCodec.encode(event)).toThrow(CodecError);
        }
      }
    }
  });

  it('uses the documented compact sizes', () => {
    expect(worldCodec.encode(join(1, 2, 3, 4)).length).toBe(11);
    expect(worldCodec.encode(move(1, -2, 3)).length).toBe(9);
    expect(worldCodec.encode(spawn(1, 2, 3, 4, 5)).length).toBe(13);
  });

  it('names what is wrong with bad bytes', () => {
    expect(() => worldCodec.decode(new Uint8Array([]))).toThrow(/empty world event/);
    expect(() => worldCodec.decodeInto!(new Uint8Array([WorldEventKind.leave, 1, 0, 0, 0]), 2, 0, null)).toThrow(/empty world event/);
    expect(() => worldCodec.decode(new Uint8Array([9, 0, 0, 0, 0]))).toThrow(/unknown world event tag 0x09/);
    expect(() => worldCodec.decode(new Uint8Array([WorldEventKind.leave, 1, 0, 0]))).toThrow(/leave event must be 5 bytes, got 4/);
    expect(() => worldCodec.decode(new Uint8Array([WorldEventKind.leave, 0xff, 0xff, 0xff, 0xff]))).toThrow(/leave.player must be at most 16777215/);
    // A step below -32767 (either axis), a target or treasure past the id limit; an id past it
    // is named first.
    const step = (dx: number, dy: number, id = 1) => new Uint8Array([WorldEventKind.move, id, 0, 0, id === 1 ? 0 : 0xff, dx & 0xff, (dx >> 8) & 0xff, dy & 0xff, (dy >> 8) & 0xff]);
    expect(worldCodec.decode(step(-32767, 32767))).toEqual(move(1, -32767, 32767));
    expect(() => worldCodec.decode(step(-32768, 0))).toThrow(/move step below -32767/);
    expect(() => worldCodec.decode(step(0, -32768))).toThrow(/move step below -32767/);
    expect(() => worldCodec.decode(step(-32768, 0, 0xff))).toThrow(/move.player must be at most 16777215, got 4278190335/);
    expect(() => worldCodec.decode(new Uint8Array([WorldEventKind.shoot, 1, 0, 0, 0, 0, 0, 0, 1, 9]))).toThrow(/shoot.target must be at most 16777215, got 16777216/);
    expect(() => worldCodec.decode(new Uint8Array([WorldEventKind.loot, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))).toThrow(/loot.treasure must be at most 16777215, got 4294967295/);
    expect(() => worldCodec.decode(new Uint8Array([WorldEventKind.loot, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow(/loot.player must be at most/);
    // At an offset, into an event it reuses: every field overwritten.
    const into = worldCodec.decode(worldCodec.encode(spawn(9, 2, 3, 4, 5)));
    const bytes = new Uint8Array([7, 7, ...worldCodec.encode(move(3, -4, 5))]);
    expect(worldCodec.decodeInto!(bytes, 2, 9, into)).toBe(into);
    expect(into).toEqual(move(3, -4, 5));
  });

  it('names what is wrong with bad JSON', () => {
    expect(() => worldCodec.fromJSON({ type: 'teleport', payload: {} })).toThrow(/unknown world event type "teleport"/);
    expect(() => worldCodec.fromJSON({ type: 'move', payload: { player: 1, dx: 1 } })).toThrow(/move payload is missing field "dy"/);
    expect(() => worldCodec.fromJSON({ type: 'move', payload: { player: 1, dx: 1, dy: '2' } })).toThrow(/move.dy must be a number, got string/);
    expect(() => worldCodec.fromJSON({ type: 'move', payload: { player: 1, dx: 1, dy: 2, dz: 3 } })).toThrow(/unknown field "dz"/);
    expect(() => worldCodec.fromJSON({ type: 'join', payload: { player: 2 ** 53 + 2, zone: 0, x: 0, y: 0 } })).toThrow(/join.player must be an integer in \[0, 16777215\]/);
    expect(() => worldCodec.fromJSON({ type: 'rotate', payload: null })).toThrow(/rotate payload must be an object/);
  });

  it('refuses to encode out-of-range fields', () => {
    expect(() => worldCodec.encode(worldEvent(WorldEventKind.rotate, 1, 0, 0, 0, 0, 70000))).toThrow(/rotate.angle must be an integer in \[0, 65535\], got 70000/);
    expect(() => worldCodec.encode(move(1, 0.5, 0))).toThrow(/move.dx must be an integer/);
  });
});
