// The recorder's fast record-batch decoder (recorder/sources/kafka-decode.ts) must return what
// kafkajs's own decoder returns, field for field, for every batch: random batches are encoded
// with kafkajs's own encoder, in fetch responses as a broker sends them (several batches, the
// last one possibly cut short), then decoded by both.

import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fastBatchDecoder, fastDecoderStats, FastRecord } from '../../recorder/sources/kafka-decode.js';
import { propertyParams } from '../support/property.js';

const require = createRequire(import.meta.url);
type Decoder = { buffer: Buffer; offset: number; canReadBytes(n: number): boolean };
const DecoderClass = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => Decoder;
const stock = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (d: { buffer: Buffer; offset: number }) => Promise<unknown>;
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (options: Record<string, unknown>) => Promise<{ buffer: Buffer }> };
type Encoder = {
  buffer: Buffer;
  writeVarInt(v: number): Encoder;
  writeInt8(v: number): Encoder;
  writeVarLong(v: unknown): Encoder;
  writeVarIntBytes(v: Buffer | null): Encoder;
  writeVarIntString(v: string | null): Encoder;
  writeEncoder(e: Encoder): Encoder;
};
const EncoderClass = require('kafkajs/src/protocol/encoder.js') as new () => Encoder;
const { Types: Compression } = require('kafkajs/src/protocol/message/compression/index.js') as { Types: { None: number; GZIP: number } };
const Long = require('kafkajs/src/utils/long.js') as { fromValue(v: unknown): unknown };
const fast = fastBatchDecoder(stock);

type AnyRecord = Record<string, unknown>;

/**
 * A record as a reader of its fields sees it (the fast decoder's are read through getters),
 * after checking that a FastRecord's numbers and byte places say the same as its fields.
 */
function fields(r: AnyRecord): AnyRecord {
  if (r instanceof FastRecord) {
    expect(r.offsetNumber).toBe(Number(r.offset));
    expect(r.timestampMs).toBe(Number(r.timestamp));
    expect(r.keyLength < 0 ? null : r.buffer.subarray(r.keyAt, r.keyAt + r.keyLength)).toEqual(r.key);
    expect(r.valueLength < 0 ? null : r.buffer.subarray(r.valueAt, r.valueAt + r.valueLength)).toEqual(r.value);
  }
  const { magicByte, attributes, timestamp, offset, key, value, headers, isControlRecord, batchContext } = r;
  return { magicByte, attributes, timestamp, offset, key, value, headers, isControlRecord, batchContext };
}

function batchFields(batch: unknown): unknown {
  const b = batch as AnyRecord & { records: AnyRecord[] };
  return { ...b, records: b.records.map(fields) };
}

/** Decode a fetch response's record batches as kafkajs's decodeMessages does, with `decode`. */
async function decodeAll(buffer: Buffer, decode: (d: Decoder) => Promise<unknown>): Promise<{ batches: unknown[]; error: string | null; offset: number }> {
  const decoder = new DecoderClass(buffer);
  const batches: unknown[] = [];
  try {
    while (decoder.canReadBytes(49)) batches.push(batchFields(await decode(decoder)));
  } catch (error) {
    return { batches, error: `${(error as Error).name}: ${(error as Error).message}`, offset: decoder.offset };
  }
  return { batches, error: null, offset: decoder.offset };
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const headerName = fc.oneof(
  fc.constantFrom('trace', 'hop', 'h', 'toString', '__proto__', 'constructor', null),
  fc.string({ maxLength: 8 }),
  fc.string({ unit: 'grapheme', maxLength: 4 }),
);
const recordArb = fc.record({
  offsetDelta: fc.nat({ max: 5000 }),
  timestampDelta: fc.oneof(fc.integer({ min: -1000, max: 100_000 }), fc.constantFrom(2 ** 40, -(2 ** 45), 2 ** 50, -(2 ** 60))),
  key: fc.option(bytes(30), { nil: null }),
  value: fc.option(bytes(120), { nil: null }),
  headers: fc.array(fc.tuple(headerName, fc.oneof(bytes(20), fc.constant(null))), { maxLength: 4 }),
});
const batchArb = fc.record({
  firstOffset: fc.oneof(fc.nat({ max: 2 ** 31 }), fc.constantFrom(2 ** 53 - 10, 2 ** 62, 0)),
  firstTimestamp: fc.oneof(fc.integer({ min: 1_500_000_000_000, max: 1_900_000_000_000 }), fc.constantFrom(-1, 0, 2 ** 60)),
  maxTimestamp: fc.integer({ min: -1, max: 1_900_000_000_000 }),
  producerId: fc.oneof(fc.constant(-1), fc.nat(), fc.constant(2 ** 62)),
  transactional: fc.boolean(),
  logAppendTime: fc.boolean(),
  control: fc.boolean(),
  gzip: fc.boolean(),
  records: fc.array(recordArb, { maxLength: 12 }),
});

type BatchSpec = typeof batchArb extends fc.Arbitrary<infer T> ? T : never;

async function encodeBatch(b: BatchSpec): Promise<Buffer> {
  // Records written field by field (kafkajs's record encoder takes headers as a map and
  // cannot write a null header value or name, which a broker can send).
  const records = b.records.map((r) => {
    const body = new EncoderClass()
      .writeInt8(0)
      .writeVarLong(Long.fromValue(r.timestampDelta))
      .writeVarInt(r.offsetDelta)
      .writeVarIntBytes(r.key)
      .writeVarIntBytes(r.value)
      .writeVarInt(r.headers.length);
    for (const [name, value] of r.headers) body.writeVarIntString(name).writeVarIntBytes(value);
    return new EncoderClass().writeVarInt(body.buffer.length).writeEncoder(body);
  });
  const encoded = await RecordBatch({
    compression: b.gzip ? Compression.GZIP : Compression.None,
    firstOffset: Long.fromValue(b.firstOffset),
    firstTimestamp: b.firstTimestamp,
    maxTimestamp: b.maxTimestamp,
    lastOffsetDelta: b.records.length,
    transactional: b.transactional,
    producerId: Long.fromValue(b.producerId),
    records,
  });
  const buffer = Buffer.from(encoded.buffer);
  // Attributes (int16 at byte 21): the encoder sets neither of these.
  let attributes = buffer.readInt16BE(21);
  if (b.logAppendTime) attributes |= 0x08;
  if (b.control) attributes |= 0x20;
  buffer.writeInt16BE(attributes, 21);
  return buffer;
}

describe('the fast Kafka record-batch decoder', () => {
  it('returns what kafkajs decodes, field for field, for random fetch responses', async () => {
    const before = { ...fastDecoderStats };
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 4 }), fc.option(fc.nat(), { nil: null }), async (batches, cut) => {
        const parts = await Promise.all(batches.map(encodeBatch));
        let response = Buffer.concat(parts);
        // A fetch may end inside a batch (max bytes): cut the response short.
        if (cut !== null) response = response.subarray(0, response.length - (cut % parts[parts.length - 1].length));
        const expected = await decodeAll(response, stock);
        const got = await decodeAll(response, fast);
        expect(got).toEqual(expected);
      }),
      propertyParams('fast Kafka record-batch decoder', 300),
    );
    // Both paths were taken: the fast one for plain batches, kafkajs's for the rest.
    expect(fastDecoderStats.fast).toBeGreaterThan(before.fast);
    expect(fastDecoderStats.fallback).toBeGreaterThan(before.fallback);
  });

  it('returns what kafkajs decodes for damaged bytes it takes, and hands the rest to kafkajs', async () => {
    // kafkajs's own decoder on damaged bytes can loop on a huge record or header count until
    // the heap is gone; what it does there is its own. The fast decoder must never return
    // other records than kafkajs would: whenever it does not hand a batch over, the result is
    // compared with kafkajs's.
    const handedOver = new Error('handed to kafkajs');
    const fastOnly = fastBatchDecoder(() => Promise.reject(handedOver));
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(batchArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }), async (batch, flips) => {
        const response = await encodeBatch({ ...batch, gzip: false, control: false });
        // Flip bytes after the first 12 (a damaged length only says how much to read).
        for (const [at, x] of flips) if (response.length > 12) response[12 + (at % (response.length - 12))] ^= x;
        const decoder = new DecoderClass(response);
        let got: unknown;
        try {
          got = await fastOnly(decoder);
        } catch (error) {
          if (error === handedOver) return;
          throw error;
        }
        compared++;
        const expected = await stock(new DecoderClass(response));
        expect(batchFields(got)).toEqual(batchFields(expected));
      }),
      propertyParams('fast Kafka record-batch decoder, damaged bytes', 300),
    );
    expect(compared).toBeGreaterThan(0);
  });
});
