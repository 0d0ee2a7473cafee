// A faster decoder of Kafka record batches for the recorder's kafkajs consumer.
//
// kafkajs 2.2.4 decodes every record of a fetch through its general protocol Decoder: a new
// Decoder object per record, 64-bit Long objects for the timestamp and offset (parsed from and
// printed back to decimal strings for every record) and a fresh object per header. On the
// recorder's reader thread that decoding was the larger part of the thread's time, and a
// capture could not keep up with a bare consumer doing nothing else.
//
// installFastRecordDecoder() puts this decoder in the place of kafkajs's record-batch decoder
// (src/protocol/recordBatch/v0/decoder.js) in the calling thread's module cache, before
// kafkajs loads its fetch responses (it loads them on the first fetch). The records it returns
// read the same as kafkajs's, field for field (test/recorder/kafka-decode.test.ts compares the
// two on random batches); it reads the bytes directly and uses plain numbers while values are
// exact as numbers. Each record is a FastRecord: its key, value, headers and timestamp are
// made when they are read, and its numbers and the places of its bytes can be read as they
// are, so that the recorder packs a record into its block without a Buffer per field.
// Anything it does not handle the same way is handed to kafkajs's own decoder, the whole
// batch: compressed batches, control batches, offsets or timestamps beyond 2^53, header names
// that Object.prototype has, a record that does not parse within its length.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The kafkajs version this decoder was written against and checked for; any other keeps kafkajs's own. */
export const FAST_DECODER_KAFKAJS_VERSION = '2.2.4';

const BATCH_DECODER = 'kafkajs/src/protocol/recordBatch/v0/decoder.js';
/** kafkajs modules that take the batch decoder when they load: installing after them is too late. */
const USERS = ['kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js'];

/** kafkajs's Decoder, as far as this file uses it. */
interface KafkaDecoder {
  buffer: Buffer;
  offset: number;
}
type BatchDecoder = (decoder: KafkaDecoder) => Promise<unknown>;

const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_MASK = 0x08;
const TRANSACTIONAL_MASK = 0x10;
const CONTROL_MASK = 0x20;
const LOG_APPEND_TIME = 1;
const CREATE_TIME = 0;
/** Bytes from the start of a batch to its records' count: firstOffset(8) length(4) epoch(4) magic(1) crc(4) attributes(2) lastOffsetDelta(4) 3 x int64(24) epoch(2) sequence(4). */
const RECORDS_AT = 57;
/** Offsets and timestamps whose sums with a 32-bit delta stay exact as numbers. */
const SAFE = Number.MAX_SAFE_INTEGER - 2 ** 32;

/** Thrown inside the fast path: the batch goes to kafkajs's decoder instead. */
class NotFast extends Error {}
const NOT_FAST = new NotFast('not on the fast path');

/** How many batches each decoder took, in this thread (for tests and diagnostics). */
export const fastDecoderStats = { fast: 0, fallback: 0 };

let installed: 'fast' | string | null = null;

/**
 * Put the fast decoder in place for kafkajs in this thread. Returns 'fast', or why kafkajs's
 * own decoder stays (another kafkajs version; kafkajs already fetched in this thread).
 */
export function installFastRecordDecoder(): 'fast' | string {
  if (installed !== null) return installed;
  installed = install();
  return installed;
}

function install(): 'fast' | string {
  let version: string;
  let path: string;
  try {
    version = (require('kafkajs/package.json') as { version: string }).version;
    path = require.resolve(BATCH_DECODER);
  } catch (error) {
    return `kafkajs's record-batch decoder was not found (${(error as Error).message})`;
  }
  if (version !== FAST_DECODER_KAFKAJS_VERSION) return `kafkajs ${version} is not ${FAST_DECODER_KAFKAJS_VERSION}, the version the fast decoder was checked against`;
  for (const user of USERS) {
    if (require.cache[require.resolve(user)] !== undefined) return 'kafkajs had fetched already in this thread';
  }
  const original = require(path) as BatchDecoder;
  const module = require.cache[path];
  if (module === undefined) return "kafkajs's record-batch decoder is not in the module cache";
  module.exports = fastBatchDecoder(original);
  return 'fast';
}

/** The decoder that replaces `original`: decodes what it can, hands the rest to `original`. */
export function fastBatchDecoder(original: BatchDecoder): BatchDecoder {
  return (decoder: KafkaDecoder) => {
    const start = decoder.offset;
    let batch: unknown;
    try {
      batch = decodeBatch(decoder);
    } catch (error) {
      if (!(error instanceof NotFast) && !(error instanceof RangeError)) throw error;
      batch = null;
    }
    if (batch === null) {
      decoder.offset = start;
      fastDecoderStats.fallback++;
      return original(decoder);
    }
    fastDecoderStats.fast++;
    return Promise.resolve(batch);
  };
}

/** A 64-bit big-endian integer as a number when it is exact (|n| <= SAFE), else NotFast. */
function int64(buffer: Buffer, at: number): number {
  const high = buffer.readInt32BE(at);
  const low = buffer.readUInt32BE(at + 4);
  const value = high * 4294967296 + low;
  if (value > SAFE || value < -SAFE) throw NOT_FAST;
  return value;
}

/** The batch at decoder.offset as kafkajs's decoder returns it, or null when it must decode it. */
function decodeBatch(decoder: KafkaDecoder): unknown {
  const buffer = decoder.buffer;
  const at = decoder.offset;
  const length = buffer.readInt32BE(at + 8);
  const end = at + 12 + length;
  // A partial batch at the end of a fetch: kafkajs's decoder raises the error its caller expects.
  if (length < RECORDS_AT - 12 || end > buffer.length) return null;
  const attributes = buffer.readInt16BE(at + 21);
  if ((attributes & (COMPRESSION_MASK | CONTROL_MASK)) !== 0) return null;
  const firstOffsetNumber = int64(buffer, at);
  const firstTimestampNumber = int64(buffer, at + 27);
  const maxTimestampNumber = int64(buffer, at + 35);
  const firstOffset = String(firstOffsetNumber);
  const firstTimestamp = String(firstTimestampNumber);
  const maxTimestamp = String(maxTimestampNumber);
  const timestampType = (attributes & TIMESTAMP_TYPE_MASK) !== 0 ? LOG_APPEND_TIME : CREATE_TIME;
  const recordContext = {
    firstOffset,
    firstTimestamp,
    partitionLeaderEpoch: buffer.readInt32BE(at + 12),
    inTransaction: (attributes & TRANSACTIONAL_MASK) > 0,
    isControlBatch: false,
    lastOffsetDelta: buffer.readInt32BE(at + 23),
    producerId: buffer.readBigInt64BE(at + 43).toString(),
    producerEpoch: buffer.readInt16BE(at + 51),
    firstSequence: buffer.readInt32BE(at + 53),
    maxTimestamp,
    timestampType,
  };
  const magicByte = buffer.readInt8(at + 16);
  const batchContext = { ...recordContext, magicByte };
  const count = buffer.readInt32BE(at + RECORDS_AT);
  const records: unknown[] = count === -1 ? [] : new Array(count);
  let pos = at + RECORDS_AT + 4;
  for (let i = 0; i < count; i++) {
    // Record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
    // key and value (varint length, -1 = null), headers (varint count of name, value).
    let v = varint(buffer, pos);
    const recordLength = v.value;
    const recordEnd = v.end + recordLength;
    if (recordLength < 0 || recordEnd > end) throw NOT_FAST;
    pos = v.end;
    const recordAttributes = buffer.readInt8(pos);
    pos++;
    const timestampDelta = varlong(buffer, pos);
    pos = varEnd;
    v = varint(buffer, pos);
    const offsetDelta = v.value;
    pos = v.end;
    let f = bytesField(buffer, pos, recordEnd);
    const keyAt = f.at;
    const keyLength = f.length;
    f = bytesField(buffer, f.end, recordEnd);
    const valueAt = f.at;
    const valueLength = f.length;
    v = varint(buffer, f.end);
    pos = v.end;
    const headerCount = v.value;
    // -1 is no headers; kafkajs fails on other negative counts.
    if (headerCount < -1) throw NOT_FAST;
    // Headers are rare: a record that has some gets them decoded now (which also checks them).
    const headers: Record<string, Buffer | null | (Buffer | null)[]> | null = headerCount > 0 ? {} : null;
    for (let h = 0; h < headerCount; h++) {
      f = bytesField(buffer, pos, recordEnd);
      // A null name, a name Object.prototype has: kafkajs's own decoder decides.
      if (f.length < 0) throw NOT_FAST;
      const name = buffer.toString('utf8', f.at, f.at + f.length);
      if (name in EMPTY) throw NOT_FAST;
      f = bytesField(buffer, f.end, recordEnd);
      const headerValue = f.length < 0 ? null : buffer.slice(f.at, f.at + f.length);
      pos = f.end;
      const before = headers![name];
      headers![name] = before === undefined ? headerValue : Array.isArray(before) ? before.concat([headerValue]) : [before, headerValue];
    }
    if (pos > recordEnd) throw NOT_FAST;
    pos = recordEnd;
    const offset = firstOffsetNumber + offsetDelta;
    const timestampMs = timestampType === LOG_APPEND_TIME ? maxTimestampNumber : firstTimestampNumber + timestampDelta;
    records[i] = new FastRecord(batchContext, recordAttributes, String(offset), offset, timestampMs, buffer, keyAt, keyLength, valueAt, valueLength, headers);
  }
  decoder.offset = end;
  return { ...recordContext, records };
}

const EMPTY = {};

/**
 * A record of a batch the fast decoder read. Its fields read as kafkajs's records' do
 * (magicByte, attributes, timestamp, offset, key, value, headers, isControlRecord,
 * batchContext); key, value, headers and timestamp are made when read. The recorder's reader
 * reads offsetNumber, timestampMs and the places of the key and value in `buffer` instead.
 */
export class FastRecord {
  readonly isControlRecord = false;
  constructor(
    readonly batchContext: { readonly magicByte: number },
    readonly attributes: number,
    readonly offset: string,
    /** The offset as a number. */
    readonly offsetNumber: number,
    /** The timestamp (ms) as a number. */
    readonly timestampMs: number,
    /** The fetch's bytes, holding this record. */
    readonly buffer: Buffer,
    /** Where the key's bytes start in `buffer`, and how many there are (-1: a null key). */
    readonly keyAt: number,
    readonly keyLength: number,
    /** Where the value's bytes start, and how many there are (-1: a null value). */
    readonly valueAt: number,
    readonly valueLength: number,
    /** The headers, when the record has any (else null). */
    readonly headerMap: Record<string, Buffer | null | (Buffer | null)[]> | null,
  ) {}

  get magicByte(): number {
    return this.batchContext.magicByte;
  }

  get timestamp(): string {
    return String(this.timestampMs);
  }

  get key(): Buffer | null {
    return this.bytes(this.keyAt, this.keyLength);
  }

  get value(): Buffer | null {
    return this.bytes(this.valueAt, this.valueLength);
  }

  private bytes(at: number, length: number): Buffer | null {
    return length < 0 ? null : this.buffer.slice(at, at + length);
  }

  get headers(): Record<string, Buffer | null | (Buffer | null)[]> {
    return this.headerMap ?? {};
  }
}

/**
 * A field of bytes with a varint length (-1: null) at `at`, which must end by `limit`: where its
 * bytes start, how many there are (-1: null) and where the field ends. (One result object,
 * reused: read it before the next call.)
 */
const fieldResult = { at: 0, length: 0, end: 0 };
function bytesField(buffer: Buffer, at: number, limit: number): typeof fieldResult {
  const v = varint(buffer, at);
  const length = v.value;
  const start = v.end;
  if (length < -1 || start + length > limit) throw NOT_FAST;
  fieldResult.at = start;
  fieldResult.length = length;
  fieldResult.end = length < 0 ? start : start + length;
  return fieldResult;
}

/** A zigzag varint and where it ends, computed as kafkajs's Decoder.readVarInt does. */
const varResult = { value: 0, end: 0 };
function varint(buffer: Buffer, at: number): typeof varResult {
  let result = 0;
  let shift = 0;
  let byte: number;
  do {
    if (at >= buffer.length || shift > 28) throw NOT_FAST;
    byte = buffer[at++];
    result += (byte & 0x7f) << shift;
    shift += 7;
  } while (byte >= 0x80);
  varResult.value = (result >>> 1) ^ -(result & 1);
  varResult.end = at;
  return varResult;
}

/** Where the last varlong() ended. */
let varEnd = 0;
/** A zigzag varlong of up to 7 bytes (49 bits, exact as a number); longer ones go to kafkajs. */
function varlong(buffer: Buffer, at: number): number {
  let result = 0;
  let scale = 1;
  let byte: number;
  let n = 0;
  do {
    if (at >= buffer.length || n === 7) throw NOT_FAST;
    byte = buffer[at++];
    result += (byte & 0x7f) * scale;
    scale *= 128;
    n++;
  } while (byte >= 0x80);
  varEnd = at;
  // Zigzag: even n is n/2, odd n is -(n+1)/2.
  return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
}
