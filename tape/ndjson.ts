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

import type { EventCodec } from '../engine/types.js';
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

const KNOWN_FIELDS = new Set(['timestampUs', 'partition', 'key', 'keyBase64', 'headers', 'type', 'payload']);
const MAX_PARTITION = 2 ** 31 - 1;
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
  if (fields.headers.length > 0) {
    line.headers = fields.headers.map((h) => ({ name: Buffer.from(h.name).toString('utf8'), valueBase64: Buffer.from(h.value).toString('base64') }));
  }
  line.type = json.type;
  line.payload = json.payload;
  return JSON.stringify(line);
}
