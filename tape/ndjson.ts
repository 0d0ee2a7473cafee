// The NDJSON event line: what `tapedeck export --format ndjson` writes and what
// `tapedeck record --source ndjson` reads. One JSON object per line:
//
//   {"timestampUs":1767225600000001,"partition":3,"key":"12","type":"move","payload":{"player":12,"dx":1,"dy":-3}}
//
//   timestampUs  integer, microseconds since the Unix epoch (required)
//   partition    integer >= 0 (required)
//   key          string (UTF-8) or null; absent means null
//   keyBase64    the key as base64, for keys that are not UTF-8 (instead of key)
//   headers      optional array of {"name": string, "valueBase64": string}
//   type         the event's type, as the engine's codec names it (required)
//   payload      the event's fields, as the engine's codec wants them (required)
//
// Any other field is refused, so a typo is caught rather than ignored. Parsing problems are
// ParseProblem values with a stable reason code; docs/recording.md lists them.

import { MAX_PARTITION, type EventCodec } from '../engine/types.js';
import { MAX_BLOCK_VALUE, type EventHeader } from './block.js';

export interface ParsedLine<E> {
  readonly timestampUs: number;
  readonly partition: number;
  readonly key: Uint8Array | null;
  readonly headers: EventHeader[] | undefined;
  readonly event: E;
  readonly payload: Uint8Array;
}

export interface ParseProblem {
  readonly reasonCode: string;
  readonly reason: string;
  /** With a transform: the line as JSON after it (what a quarantine may keep), when the line parsed. */
  readonly transformed?: string;
}

/**
 * A change applied to every line that parses, before anything else reads it: redaction at
 * record time (recorder/redact.ts). `apply` edits the line object in place (its key and
 * payload fields); `key` maps a key that travels outside the JSON (a Kafka record's).
 */
export interface LineTransform {
  apply(line: Record<string, unknown>): void;
  key(key: Uint8Array | null): Uint8Array | null;
}

/** The leading bytes of a gzip file: `record` reads a file of these lines gzip-compressed too. */
export const GZIP_MAGIC: readonly number[] = [0x1f, 0x8b];
/** UTF-8's byte order mark, which may open an input (its first line's start, or an input of nothing else). */
export const UTF8_BOM: readonly number[] = [0xef, 0xbb, 0xbf];

/** Whether `head` starts with the bytes `magic`. */
export const startsWithBytes = (head: Uint8Array, magic: readonly number[]): boolean => head.length >= magic.length && magic.every((b, i) => head[i] === b);

const KNOWN_FIELDS = new Set(['timestampUs', 'partition', 'key', 'keyBase64', 'headers', 'type', 'payload']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Nesting past which holdsUnsafeNumber stops looking and lets the exact text scan decide. */
const MAX_WALK_DEPTH = 32;

/**
 * Whether a parsed value holds a number that JSON.parse may have rounded: any integer literal
 * beyond 2^53 - 1 parses to a number of at least 2^53 in magnitude, so looking at the parsed
 * numbers finds every candidate. Cheap (a line holds a few numbers), so that the exact scan of
 * the text (findUnsafeInteger, which also tells an integer literal from 1e20) runs only then.
 * Too deep a nesting counts as a candidate rather than being walked.
 */
function holdsUnsafeNumber(value: unknown, depth: number): boolean {
  if (typeof value === 'number') return value > MAX_SAFE || value < -MAX_SAFE;
  if (value === null || typeof value !== 'object') return false;
  if (depth >= MAX_WALK_DEPTH) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (holdsUnsafeNumber(value[i], depth + 1)) return true;
    return false;
  }
  const o = value as Record<string, unknown>;
  for (const key in o) if (holdsUnsafeNumber(o[key], depth + 1)) return true;
  return false;
}

/** A key's UTF-8 bytes: ASCII keys (nearly all) byte by byte, which beats a Buffer per key. */
function keyBytes(key: string): Uint8Array {
  const n = key.length;
  if (n <= 256) {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) return Buffer.from(key, 'utf8');
      bytes[i] = c;
    }
    return bytes;
  }
  return Buffer.from(key, 'utf8');
}

const problem = (reasonCode: string, reason: string): ParseProblem => ({ reasonCode, reason });

/**
 * The first integer literal outside strings whose value JSON.parse would round (beyond
 * 2^53), or null. Only called when the text has a run of 16 digits.
 */
export function findUnsafeInteger(text: string): string | null {
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    if ((c >= 48 && c <= 57) || c === 45) {
      let j = i + 1;
      while (j < text.length && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
      const next = text.charCodeAt(j);
      const isInteger = !(next === 46 || next === 101 || next === 69); // . e E
      const token = text.slice(i, j);
      if (isInteger && token.replace('-', '').length >= 16) {
        const big = BigInt(token);
        if (big > 9007199254740991n || big < -9007199254740991n) return token;
      }
      i = j - 1;
    }
  }
  return null;
}

/** Parse one line's text (without its newline). */
export function parseEventLine<E>(text: string, codec: EventCodec<E>, transform?: LineTransform): ParsedLine<E> | ParseProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    if (text.includes('\u0000')) return problem('nul-byte', `NUL byte at column ${text.indexOf('\u0000') + 1}`);
    if (text.charCodeAt(0) === 0xfeff) return problem('bom', 'byte order mark (U+FEFF) at the start of a line other than the first');
    // JSON.parse quotes part of the line in its message: not when the line may hold redacted data.
    return problem('invalid-json', transform === undefined ? `not valid JSON: ${(error as Error).message}` : 'not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return problem('not-an-object', `a line must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const o = value as Record<string, unknown>;
  // Before any transform: a redaction may replace the number that was rounded.
  if (holdsUnsafeNumber(o, 0)) {
    const unsafe = findUnsafeInteger(text);
    if (unsafe !== null) return problem('integer-too-large', transform === undefined ? `integer ${unsafe} is beyond 2^53 and would lose precision` : 'an integer is beyond 2^53 and would lose precision');
  }
  if (transform !== undefined) {
    transform.apply(o);
    const transformed = JSON.stringify(o);
    const result = parseTransformed(o, codec, transform);
    return isProblem(result) ? { ...result, transformed } : result;
  }
  return parseTransformed(o, codec, undefined);
}

function parseTransformed<E>(o: Record<string, unknown>, codec: EventCodec<E>, transform: LineTransform | undefined): ParsedLine<E> | ParseProblem {
  for (const field in o) {
    if (!KNOWN_FIELDS.has(field)) return problem('unknown-field', `unknown field "${field}"; a line has timestampUs, partition, key, type, payload (and optionally keyBase64, headers)`);
  }
  const ts = o.timestampUs;
  if (ts === undefined) return problem('missing-field', 'missing field "timestampUs"');
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0 || ts > MAX_BLOCK_VALUE) {
    return problem('wrong-type', `"timestampUs" must be an integer in [0, 2^52 - 1] (microseconds since the epoch), got ${JSON.stringify(ts)}`);
  }
  const partition = o.partition;
  if (partition === undefined) return problem('missing-field', 'missing field "partition"');
  if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition > MAX_PARTITION) {
    return problem('wrong-type', `"partition" must be an integer in [0, ${MAX_PARTITION}], got ${JSON.stringify(partition)}`);
  }
  let key: Uint8Array | null = null;
  if (o.key !== undefined && o.keyBase64 !== undefined) return problem('wrong-type', 'give "key" or "keyBase64", not both');
  if (o.key !== undefined && o.key !== null) {
    if (typeof o.key !== 'string') return problem('wrong-type', `"key" must be a string or null, got ${typeof o.key}`);
    key = keyBytes(o.key);
  } else if (o.keyBase64 !== undefined) {
    if (typeof o.keyBase64 !== 'string' || !BASE64.test(o.keyBase64)) return problem('wrong-type', '"keyBase64" must be a base64 string');
    key = Buffer.from(o.keyBase64, 'base64');
  }
  let headers: EventHeader[] | undefined;
  if (o.headers !== undefined) {
    if (!Array.isArray(o.headers)) return problem('wrong-type', '"headers" must be an array of {name, valueBase64}');
    headers = [];
    for (const h of o.headers as unknown[]) {
      const header = h as Record<string, unknown> | null;
      if (header === null || typeof header !== 'object' || typeof header.name !== 'string' || typeof header.valueBase64 !== 'string' || !BASE64.test(header.valueBase64)) {
        return problem('wrong-type', '"headers" must be an array of {name: string, valueBase64: base64 string}');
      }
      headers.push({ name: Buffer.from(header.name, 'utf8'), value: Buffer.from(header.valueBase64, 'base64') });
    }
  }
  if (o.type === undefined) return problem('missing-field', 'missing field "type"');
  if (typeof o.type !== 'string') return problem('wrong-type', `"type" must be a string, got ${typeof o.type}`);
  if (!('payload' in o)) return problem('missing-field', 'missing field "payload"');
  let event: E;
  let payload: Uint8Array;
  try {
    event = codec.fromJSON({ type: o.type, payload: o.payload });
    payload = codec.encode(event);
  } catch (error) {
    return problem('codec-rejected', `the engine's codec (${codec.name}) refused the event: ${(error as Error).message}`);
  }
  return { timestampUs: ts, partition, key, headers, event, payload };
}

export function isProblem<E>(result: ParsedLine<E> | ParseProblem): result is ParseProblem {
  return (result as ParseProblem).reasonCode !== undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Format one event as an NDJSON line (without the newline). */
export function formatEventLine<E>(
  fields: { timestampUs: number; partition: number; key: Uint8Array | null; headers: readonly EventHeader[] },
  event: E,
  codec: EventCodec<E>,
): string {
  const json = codec.toJSON(event);
  const line: Record<string, unknown> = { timestampUs: fields.timestampUs, partition: fields.partition };
  if (fields.key === null) {
    line.key = null;
  } else {
    try {
      line.key = utf8.decode(fields.key);
    } catch {
      line.keyBase64 = Buffer.from(fields.key).toString('base64');
    }
  }
  if (fields.headers.length > 0) line.headers = headersJson(fields.headers);
  line.type = json.type;
  line.payload = json.payload;
  return JSON.stringify(line);
}

const headersJson = (headers: readonly EventHeader[]): unknown[] =>
  headers.map((h) => ({ name: Buffer.from(h.name).toString('utf8'), valueBase64: Buffer.from(h.value).toString('base64') }));

/** A key's field as formatEventLine writes it: `,"key":` and the text, or `,"keyBase64":` when it is not UTF-8. */
function formatKey(key: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(key);
  } catch {
    return ',"keyBase64":' + JSON.stringify(Buffer.from(key).toString('base64'));
  }
  return ',"key":' + JSON.stringify(text);
}

/** The headers' field as formatEventLine writes it. */
const formatHeaders = (headers: readonly EventHeader[]): string => ',"headers":' + JSON.stringify(headersJson(headers));

const ASCII = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));
const TS_FIELD = ASCII('{"timestampUs":');
const PARTITION_FIELD = ASCII(',"partition":');
const KEY_NULL = ASCII(',"key":null');
const KEY_FIELD = ASCII(',"key":"');
const PAYLOAD_FIELD = ASCII(',"payload":');
/** Bytes a payload may take to be written in place (a longer one goes through JSON.stringify). */
const PAYLOAD_ROOM = 1024;

/** A character (or byte) JSON writes as it is in a string: printable ASCII but a quote or backslash. */
const plainJsonChar = (c: number): boolean => c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c;

/** `text` (ASCII, short) into `b` at `o`; returns the offset after it. */
function putAscii(b: Uint8Array, o: number, text: Uint8Array): number {
  for (let i = 0; i < text.length; i++) b[o++] = text[i];
  return o;
}

/** Field names as JSON writes them, with the colon (`"dx":`), as bytes: a payload has few names, written millions of times. */
const FIELD_NAMES = new Map<string, Uint8Array>();
const MAX_FIELD_NAMES = 4096;

function fieldName(name: string): Uint8Array {
  let bytes = FIELD_NAMES.get(name);
  if (bytes === undefined) {
    bytes = Buffer.from(JSON.stringify(name) + ':', 'utf8');
    if (FIELD_NAMES.size < MAX_FIELD_NAMES) FIELD_NAMES.set(name, bytes);
  }
  return bytes;
}

/**
 * The JSON text of `payload` into `b` at `o` when it is a plain object of numbers and plain
 * strings (every built-in codec's payload, and most): the bytes JSON.stringify would give,
 * without its cost (several hundred ns for a three-field object in this Node). Returns the
 * offset after them, or -1 when the payload is anything else (nested values, a toJSON method,
 * a string to escape, more than `room` bytes), for the caller to JSON.stringify.
 */
function putFlatPayload(b: Uint8Array, o: number, payload: unknown, room: number): number {
  if (payload === null || typeof payload !== 'object' || Object.getPrototypeOf(payload) !== Object.prototype) return -1;
  const fields = payload as Record<string, unknown>;
  if ('toJSON' in fields) return -1;
  const end = o + room;
  const start = o;
  b[o++] = 0x7b; // {
  for (const name in fields) {
    if (!Object.hasOwn(fields, name)) return -1;
    const value = fields[name];
    if (typeof value === 'undefined' || typeof value === 'function' || typeof value === 'symbol') return -1;
    const nameBytes = fieldName(name);
    if (o + nameBytes.length + 2 > end) return -1;
    if (o > start + 1) b[o++] = 0x2c; // ,
    o = putAscii(b, o, nameBytes);
    if (typeof value === 'number') {
      if (Number.isSafeInteger(value)) {
        if (o + 17 > end) return -1;
        if (value < 0) {
          b[o++] = 0x2d; // -
          o = putDigits(b, o, -value);
        } else o = putDigits(b, o, value);
      } else {
        // JSON writes a number as JavaScript prints it, and NaN and the infinities as null.
        const text = Number.isFinite(value) ? String(value) : 'null';
        if (o + text.length > end) return -1;
        for (let i = 0; i < text.length; i++) b[o++] = text.charCodeAt(i);
      }
    } else if (typeof value === 'string') {
      if (o + value.length + 2 > end) return -1;
      b[o++] = 0x22;
      for (let i = 0; i < value.length; i++) {
        const c = value.charCodeAt(i);
        if (!plainJsonChar(c)) return -1;
        b[o++] = c;
      }
      b[o++] = 0x22;
    } else return -1;
  }
  if (o + 1 > end) return -1;
  b[o++] = 0x7d; // }
  return o;
}

/**
 * The decimal digits of a non-negative integer below 2^53 into `b` at `o`; returns the offset
 * after them. Digits are taken with 32-bit integer arithmetic: a larger number (a timestamp in
 * microseconds) is split into its millions and the six digits below, since the remainder of a
 * double costs many times an integer's.
 */
function putDigits(b: Uint8Array, o: number, n: number): number {
  if (n < 2147483648) return putSmallDigits(b, o, n | 0);
  let high = Math.floor(n / 1e6);
  let low = n - high * 1e6;
  // The division may round up or down by one near a multiple of 1e6; the digits must be exact.
  if (low < 0) {
    high--;
    low += 1e6;
  } else if (low >= 1e6) {
    high++;
    low -= 1e6;
  }
  o = putDigits(b, o, high);
  let v = low | 0;
  for (let i = 5; i >= 0; i--) {
    b[o + i] = 48 + (v % 10);
    v = (v / 10) | 0;
  }
  return o + 6;
}

function putSmallDigits(b: Uint8Array, o: number, n: number): number {
  let digits = 1;
  for (let v = n; v >= 10; v = (v / 10) | 0) digits++;
  let v = n;
  for (let at = o + digits - 1; at >= o; at--) {
    b[at] = 48 + (v % 10);
    v = (v / 10) | 0;
  }
  return o + digits;
}

/** `,"type":` and the type as JSON, as bytes, by type (a codec has a few): null when the type has no JSON text. */
const TYPE_FIELDS = new Map<string, Uint8Array>();

function typeField(type: unknown): Uint8Array | null {
  if (typeof type === 'string') {
    const cached = TYPE_FIELDS.get(type);
    if (cached !== undefined) return cached;
  }
  const text = JSON.stringify(type);
  if (text === undefined) return null;
  const bytes = Buffer.from(',"type":' + text, 'utf8');
  if (typeof type === 'string' && TYPE_FIELDS.size < MAX_FIELD_NAMES) TYPE_FIELDS.set(type, bytes);
  return bytes;
}

/**
 * NDJSON event lines written straight into bytes, each with its newline: the text that
 * formatEventLine gives, without a string for the line (export writes millions of lines, and
 * building and joining the strings cost more than the rest of the export). The numbers and
 * a plain key (printable ASCII without a quote or backslash: ids) are written byte by byte;
 * the type, payload, headers and any other key go through JSON.stringify, as in
 * formatEventLine, so the text is the same.
 */
export class EventLineWriter<E> {
  private bytes = Buffer.allocUnsafe(1 << 20);
  private length = 0;

  constructor(private readonly codec: EventCodec<E>) {}

  /** One event; its key is `keyLength` bytes of `key` from `keyOffset` (null: no key). */
  add(timestampUs: number, partition: number, key: Uint8Array | null, keyOffset: number, keyLength: number, headers: readonly EventHeader[], event: E): void {
    const json = this.codec.toJSON(event);
    const type = typeField(json.type);
    let plainKey = key !== null;
    for (let i = 0; plainKey && i < keyLength; i++) plainKey = plainJsonChar(key![keyOffset + i]);
    // A key that needs escaping, or is not UTF-8, and headers: as formatEventLine writes them.
    let rest = '';
    if (key !== null && !plainKey) rest = formatKey(key.subarray(keyOffset, keyOffset + keyLength));
    if (headers.length > 0) rest += formatHeaders(headers);
    // UTF-8 takes at most 3 bytes per UTF-16 unit; the fixed parts and two numbers fit in 96.
    // A flat payload is written in place if it fits in PAYLOAD_ROOM.
    this.reserve(96 + keyLength + 3 * rest.length + (type?.length ?? 0) + PAYLOAD_FIELD.length + PAYLOAD_ROOM);
    let b = this.bytes;
    let o = this.length;
    o = putAscii(b, o, TS_FIELD);
    o = putDigits(b, o, timestampUs);
    o = putAscii(b, o, PARTITION_FIELD);
    o = putDigits(b, o, partition);
    if (key === null) o = putAscii(b, o, KEY_NULL);
    else if (plainKey) {
      o = putAscii(b, o, KEY_FIELD);
      for (let i = 0; i < keyLength; i++) b[o++] = key[keyOffset + i];
      b[o++] = 0x22;
    }
    if (rest.length > 0) o += b.write(rest, o, 'utf8');
    // As in an object, a field whose value JSON has no text for (undefined) is left out.
    if (type !== null) o = putAscii(b, o, type);
    const flat = putFlatPayload(b, o + PAYLOAD_FIELD.length, json.payload, PAYLOAD_ROOM);
    if (flat >= 0) {
      putAscii(b, o, PAYLOAD_FIELD);
      o = flat;
    } else {
      const payload = JSON.stringify(json.payload);
      // As in an object, a field whose value JSON has no text for (undefined) is left out.
      if (payload !== undefined) {
        this.length = o;
        this.reserve(PAYLOAD_FIELD.length + 3 * payload.length + 2);
        b = this.bytes;
        o = putAscii(b, o, PAYLOAD_FIELD);
        o += b.write(payload, o, 'utf8');
      }
    }
    b[o++] = 0x7d; // }
    b[o++] = 0x0a; // newline
    this.length = o;
  }

  /** The lines added since the last take(), as a view valid until the next add(). */
  take(): Buffer {
    const out = this.bytes.subarray(0, this.length);
    this.length = 0;
    return out;
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + extra));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }
}
