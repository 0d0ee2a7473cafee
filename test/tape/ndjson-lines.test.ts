// The bytes `export` writes (EventLineWriter, which builds each line straight into bytes) are
// exactly the text of formatEventLine (the line as an object through JSON.stringify), for any
// timestamp, partition, key (UTF-8 or not, needing escapes or not), headers, type and payload
// a codec's toJSON may give. And what export writes, record reads back as the same events.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventCodec, JsonEvent } from '../../engine/types.js';
import { worldCodec } from '../../engine/world/codec.js';
import { WorldTraffic, type TrafficRecord } from '../../engine/world/traffic.js';
import { EventLineWriter, formatEventLine, isProblem, parseEventLine } from '../../tape/ndjson.js';
import { propertyParams } from '../support/property.js';

/** A codec whose events are their JSON form: toJSON hands the arbitrary value straight on. */
const passThrough: EventCodec<JsonEvent> = {
  name: 'pass-through',
  encode: () => new Uint8Array(0),
  decode: () => ({ type: 'x', payload: null }),
  toJSON: (event) => event,
  fromJSON: (json) => json,
};

const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('', 'a"b', 'back\\slash', 'tab\there', '\u2028', '\u007f', '\ud800'));
const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(0, -0, 2 ** 53, 1e21, -1e-7, Number.NaN, Number.POSITIVE_INFINITY, 1767225600000001),
);
/** Flat objects (the writer's own path) and anything else JSON can hold (its fallback). */
const payload = fc.oneof(
  fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('player', 'dx', '1', '0', '"', 'toJSON')), fc.oneof(number, text)),
  fc.jsonValue(),
  fc.constantFrom(undefined, null, [], {}, { nested: { a: [1, 'b'] } }, { big: 'x'.repeat(3000) }),
);
const line = fc.record({
  timestampUs: fc.oneof(fc.integer({ min: 0, max: 2 ** 52 - 1 }), fc.constantFrom(0, 9, 10, 2 ** 31 - 1, 2 ** 31, 999_999, 1_000_000, 1767225599999999, 1767225600000000, 2 ** 52 - 1)),
  partition: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  key: fc.option(fc.oneof(fc.uint8Array({ maxLength: 80 }), text.map((t) => Buffer.from(t, 'utf8'))), { nil: null }),
  headers: fc.array(fc.record({ name: fc.uint8Array({ maxLength: 8 }), value: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 2 }),
  type: fc.oneof(fc.constantFrom('move', 'join', 'ünïcødé', 'a"b'), fc.string(), fc.constant(undefined as unknown as string)),
  payload,
});

describe('NDJSON lines as export writes them', () => {
  it('are byte for byte the JSON.stringify of the line object, whatever the fields', () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), (lines) => {
        const writer = new EventLineWriter(passThrough);
        // The key is given inside a larger array, as export gives it: a view of the block.
        for (const l of lines) {
          const padded = l.key === null ? null : Buffer.concat([Buffer.from([1, 2, 3]), l.key, Buffer.from([4])]);
          writer.add(l.timestampUs, l.partition, padded, 3, l.key?.length ?? 0, l.headers, { type: l.type, payload: l.payload });
        }
        const expected = lines.map((l) => formatEventLine({ timestampUs: l.timestampUs, partition: l.partition, key: l.key, headers: l.headers }, { type: l.type, payload: l.payload }, passThrough) + '\n').join('');
        expect(writer.take().toString('utf8')).toBe(expected);
      }),
      propertyParams('are byte for byte the JSON.stringify of the line object'),
    );
  });

  it('read back by record as the events written, for world traffic', () => {
    const traffic = new WorldTraffic({ seed: 11, events: 5000 });
    const writer = new EventLineWriter(worldCodec);
    const records: TrafficRecord[] = [];
    for (let r = traffic.next(); r !== null; r = traffic.next()) {
      records.push(r);
      writer.add(r.timestampUs, r.partition, r.key, 0, r.key.length, [], r.event);
    }
    const lines = writer.take().toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(5000);
    lines.forEach((text, i) => {
      const parsed = parseEventLine(text, worldCodec);
      if (isProblem(parsed)) throw new Error(`line ${i + 1}: ${parsed.reason}`);
      expect(parsed.timestampUs).toBe(records[i].timestampUs);
      expect(parsed.partition).toBe(records[i].partition);
      expect(Buffer.from(parsed.key!)).toEqual(Buffer.from(records[i].key));
      expect(parsed.event).toEqual(records[i].event);
    });
  });
});
