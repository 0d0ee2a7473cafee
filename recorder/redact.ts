// Redaction at record time: fields of JSON events removed (--redact PATH) or replaced by a keyed
// hash (--hash PATH) before anything reaches the tape, the rejects table included.
//
// Paths are dotted, into the event's JSON form {"type", "payload"} (an NDJSON line's event
// fields, a Kafka record's JSON value), plus `key` for the record's key:
//
//   payload.email            one field
//   payload.user.address.zip a nested field
//   payload.items.*.card     `*` matches every field of an object or element of an array
//   payload.items.0.card     a number selects one array element
//   key                      the record's key (hash: replaced by the keyed hash; redact: removed)
//
// A path that does not match an event is not an error: events differ in shape. Hashes are
// HMAC-SHA256 with a key the user provides (a file or an environment variable, never stored in
// the tape): "hmac:" and the first 32 hex digits (128 bits). Equal values give equal hashes, so
// joins, counts and equality in the engine still mean what they meant; different values give
// different hashes. Values are hashed as their JSON text, objects with sorted keys.

import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { TapedeckError } from '../engine/errors.js';

export interface RedactionRules {
  readonly redact: readonly string[];
  readonly hash: readonly string[];
}

/** What a tape's metadata says about its redaction (never the key). */
export interface RedactionRecord {
  readonly redacted: readonly string[];
  readonly hashed: readonly string[];
  readonly hash: 'hmac-sha256/128';
}

export const HASH_KEY_ENV = 'TAPEDECK_HASH_KEY';

type Segment = string | number | '*';

function parsePath(path: string, option: string): Segment[] {
  if (path === 'key') return ['key'];
  const segments = path.split('.');
  if (segments[0] !== 'payload' && segments[0] !== 'type') {
    throw new TapedeckError('E_USAGE', `${option} ${path}: a path starts with "payload." (or is "key"), e.g. payload.user.email`);
  }
  if (segments.some((s) => s === '')) throw new TapedeckError('E_USAGE', `${option} ${path}: empty segment in the path`);
  if (segments[0] === 'type' && segments.length > 1) throw new TapedeckError('E_USAGE', `${option} ${path}: "type" is a string; it has no fields`);
  return segments.map((s) => (s === '*' ? '*' : /^\d+$/.test(s) ? Number(s) : s));
}

function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const o = value as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/** What a worker thread needs to build the same redactor (Redactor.parts, Redactor.fromParts): the rules and the key, in memory only. */
export interface RedactionParts {
  readonly redact: readonly string[];
  readonly hash: readonly string[];
  readonly key: Uint8Array | null;
}

export class Redactor {
  private readonly redactPaths: Segment[][];
  private readonly hashPaths: Segment[][];
  private readonly hashKey: Buffer | null;
  readonly record: RedactionRecord;
  readonly redactsKey: boolean;
  readonly hashesKey: boolean;

  constructor(
    readonly rules: RedactionRules,
    hashKey: Buffer | null,
  ) {
    this.redactPaths = rules.redact.map((p) => parsePath(p, '--redact'));
    this.hashPaths = rules.hash.map((p) => parsePath(p, '--hash'));
    if (this.hashPaths.length > 0 && (hashKey === null || hashKey.length === 0)) {
      throw new TapedeckError('E_USAGE', `--hash needs a key: --hash-key-file FILE, or the environment variable ${HASH_KEY_ENV}`);
    }
    this.hashKey = hashKey;
    this.redactsKey = rules.redact.includes('key');
    this.hashesKey = rules.hash.includes('key');
    this.record = { redacted: [...rules.redact], hashed: [...rules.hash], hash: 'hmac-sha256/128' };
  }

  /** What a worker thread needs to build the same redactor: the rules and the key (in memory only). */
  parts(): RedactionParts {
    return { redact: this.rules.redact, hash: this.rules.hash, key: this.hashKey };
  }

  /** The redactor that parts() describes, built again (on a worker thread). */
  static fromParts(parts: RedactionParts): Redactor {
    return new Redactor({ redact: parts.redact, hash: parts.hash }, parts.key === null ? null : Buffer.from(parts.key));
  }

  get active(): boolean {
    return this.redactPaths.length > 0 || this.hashPaths.length > 0;
  }

  hashValue(value: unknown): string {
    return this.hashBytes(Buffer.from(stableJson(value), 'utf8'));
  }

  hashBytes(bytes: Uint8Array): string {
    return `hmac:${createHmac('sha256', this.hashKey!).update(bytes).digest('hex').slice(0, 32)}`;
  }

  /** A record key that is not part of the JSON (Kafka's): removed, hashed, or as it was. */
  key(key: Uint8Array | null): Uint8Array | null {
    if (key === null) return null;
    if (this.redactsKey) return null;
    if (this.hashesKey) return Buffer.from(this.hashBytes(key), 'utf8');
    return key;
  }

  /**
   * Redact and hash, in place, the fields of an event's JSON form ({type, payload, ...}); for an
   * NDJSON line, also its "key" (or "keyBase64") field when the rules name the key.
   */
  apply(event: Record<string, unknown>): void {
    if (this.redactsKey || this.hashesKey) {
      for (const field of ['key', 'keyBase64'] as const) {
        const k = event[field];
        if (typeof k !== 'string') continue;
        if (this.redactsKey) event[field] = null;
        else {
          event.key = this.hashBytes(field === 'key' ? Buffer.from(k, 'utf8') : Buffer.from(k, 'base64'));
          if (field === 'keyBase64') delete event.keyBase64;
        }
      }
    }
    for (const path of this.redactPaths) if (path[0] !== 'key') visit(event, path, 0, (parent, k) => deleteField(parent, k));
    for (const path of this.hashPaths) {
      if (path[0] !== 'key') visit(event, path, 0, (parent, k) => setField(parent, k, this.hashValue(getField(parent, k))));
    }
  }
}

function getField(parent: unknown, k: string | number): unknown {
  return (parent as Record<string | number, unknown>)[k];
}

function setField(parent: unknown, k: string | number, value: unknown): void {
  (parent as Record<string | number, unknown>)[k] = value;
}

function deleteField(parent: unknown, k: string | number): void {
  if (Array.isArray(parent)) parent[k as number] = null;
  else delete (parent as Record<string | number, unknown>)[k];
}

/** Call `at(parent, key)` for every field the path reaches from `node` (the last segment's parent and key). */
function visit(node: unknown, path: Segment[], i: number, at: (parent: unknown, key: string | number) => void): void {
  if (node === null || typeof node !== 'object') return;
  const segment = path[i];
  const last = i === path.length - 1;
  const keys: (string | number)[] =
    segment === '*' ? (Array.isArray(node) ? node.map((_, n) => n) : Object.keys(node)) : [segment];
  for (const k of keys) {
    if (Array.isArray(node) ? typeof k !== 'number' || k >= node.length : !Object.prototype.hasOwnProperty.call(node, k)) continue;
    if (last) at(node, k);
    else visit((node as Record<string | number, unknown>)[k], path, i + 1, at);
  }
}

/** The hash key: from --hash-key-file, else the environment variable; null when neither is given. */
export function loadHashKey(file: string | undefined): Buffer | null {
  if (file !== undefined) {
    try {
      const key = readFileSync(file);
      if (key.length === 0) throw new Error('the file is empty');
      return key;
    } catch (error) {
      throw new TapedeckError('E_USAGE', `--hash-key-file ${file}: cannot read the key: ${(error as Error).message}`);
    }
  }
  const env = process.env[HASH_KEY_ENV];
  return env === undefined || env === '' ? null : Buffer.from(env, 'utf8');
}
