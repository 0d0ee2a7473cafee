// Built-in engines by name, and the check that an engine object (built in or loaded from a
// user's module) has the shape the contract asks for. Loading a module by path is I/O and
// lives with the CLI; this file stays pure.

import { EngineShapeError } from './errors.js';
import { jsonCodec } from './json-codec.js';
import { MAX_PARTITION, type Engine } from './types.js';
import { worldEngine } from './world/index.js';

const BUILT_IN: ReadonlyMap<string, Engine> = new Map<string, Engine>([['world', worldEngine as unknown as Engine]]);

export function builtInEngineNames(): string[] {
  return [...BUILT_IN.keys()];
}

export function builtInEngine(name: string): Engine | undefined {
  return BUILT_IN.get(name);
}

const REQUIRED_FUNCTIONS = ['init', 'apply', 'digest', 'snapshot', 'restore', 'checkInvariants'] as const;
const CODEC_FUNCTIONS = ['encode', 'decode', 'toJSON', 'fromJSON'] as const;

/**
 * Check an engine object and fill in defaults (the JSON codec when it declares none). `where`
 * names its origin in messages, e.g. the module path.
 */
export function normalizeEngine(candidate: unknown, where: string): Engine {
  if (candidate === null || typeof candidate !== 'object') {
    throw new EngineShapeError(`${where}: an engine must be an object, got ${candidate === null ? 'null' : typeof candidate}`);
  }
  const e = candidate as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof e.name !== 'string' || e.name === '') problems.push('`name` must be a non-empty string');
  if (typeof e.version !== 'string' || e.version === '') problems.push('`version` must be a non-empty string');
  for (const fn of REQUIRED_FUNCTIONS) if (typeof e[fn] !== 'function') problems.push(`\`${fn}\` must be a function`);
  for (const fn of ['view', 'generate'] as const) {
    if (e[fn] !== undefined && typeof e[fn] !== 'function') problems.push(`\`${fn}\`, when given, must be a function`);
  }
  if (e.simulation !== undefined) {
    const sim = e.simulation as Record<string, unknown> | null;
    if (sim === null || typeof sim !== 'object' || typeof sim.events !== 'function') problems.push('`simulation`, when given, must be an object with an `events(fc)` function');
  }
  if (e.transientEvents !== undefined && typeof e.transientEvents !== 'boolean') problems.push('`transientEvents`, when given, must be true or false');
  let codec = e.codec;
  if (codec === undefined) {
    codec = jsonCodec;
  } else if (codec === null || typeof codec !== 'object') {
    problems.push('`codec`, when given, must be an object');
  } else {
    const c = codec as Record<string, unknown>;
    if (typeof c.name !== 'string' || c.name === '') problems.push('`codec.name` must be a non-empty string');
    for (const fn of CODEC_FUNCTIONS) if (typeof c[fn] !== 'function') problems.push(`\`codec.${fn}\` must be a function`);
    for (const fn of ['decodeAt', 'decodeInto', 'encodedLength', 'encodeInto'] as const) {
      if (c[fn] !== undefined && typeof c[fn] !== 'function') problems.push(`\`codec.${fn}\`, when given, must be a function`);
    }
  }
  if (problems.length > 0) {
    throw new EngineShapeError(`${where} is not a valid engine: ${problems.join('; ')}. See "Writing an engine" in the README.`);
  }
  // The module's object stays the prototype of the engine returned, so that an engine written
  // as a class keeps its methods (a copy of the object's own properties dropped them: `generate`
  // then read as missing, and `apply` failed) and `this` in them reads its fields.
  // What the engine returns to be stored is checked as it comes: a digest that is no string, a
  // snapshot or an encoded event that is no bytes, was stored as something else than what its
  // checksum or a reader expects (see digestString and bytesFrom).
  const engine = Object.create(candidate) as Engine;
  const digest = e.digest as (this: Engine, state: unknown) => unknown;
  const snapshot = e.snapshot as (this: Engine, state: unknown) => unknown;
  Object.defineProperties(engine, {
    codec: { value: codec === jsonCodec ? codec : checkedCodec(codec as Engine['codec'], where), enumerable: true },
    digest: {
      value: function checkedDigest(this: Engine, state: unknown): string {
        return digestString(digest.call(this, state), where);
      },
      enumerable: true,
    },
    snapshot: {
      value: function checkedSnapshot(this: Engine, state: unknown): Uint8Array {
        return bytesFrom(snapshot.call(this, state), `${where}: snapshot()`);
      },
      enumerable: true,
    },
  });
  return engine;
}

/** A user's codec, its encode() checked to return bytes (the rest as it is, through the prototype). */
function checkedCodec(codec: Engine['codec'], where: string): Engine['codec'] {
  const checked = Object.create(codec) as Engine['codec'];
  const encode = codec.encode;
  Object.defineProperty(checked, 'encode', {
    value: function checkedEncode(this: Engine['codec'], event: unknown): Uint8Array {
      return bytesFrom(encode.call(this, event), `${where}: codec.encode()`);
    },
    enumerable: true,
  });
  return checked;
}

/**
 * `partition`, the partition an engine's generate() hook gave event `index`, if it is an
 * integer in [0, MAX_PARTITION]; else an EngineShapeError saying so. A partition of -1 or 1.5
 * was packed into a block that every command then refused as damaged, and an omitted one failed
 * the first commit.
 */
export function generatedPartition(partition: unknown, index: number, where: string): number {
  if (typeof partition === 'number' && Number.isInteger(partition) && partition >= 0 && partition <= MAX_PARTITION) return partition;
  throw new EngineShapeError(`${where}: generate() gave event ${index} the partition ${described(partition)}; it must be an integer in [0, ${MAX_PARTITION}]. See "Writing an engine" in the README.`);
}

/** How a value that should have been something else is named in an error. */
function described(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return `a ${typeof value} (${String(value).slice(0, 40)})`;
}

/**
 * `value`, bytes an engine returned (a snapshot, an encoded event), if it is a Uint8Array (a
 * Buffer is one); else an EngineShapeError naming `what` and what it returned. A snapshot that
 * was a string was stored as text and every command then refused the tape as damaged; an
 * event encoded as a string was stored as bytes of zero.
 */
export function bytesFrom(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new EngineShapeError(`${what} returned ${described(value)}; it must return a Uint8Array. See "Writing an engine" in the README.`);
}

/**
 * `value`, a digest an engine's digest() returned, if it is a string; else an EngineShapeError
 * naming what it was. A digest is stored in the tape as text and compared as text: a number
 * was stored as its digits but checksummed as a number, so that every command then refused the
 * tape as damaged, and `undefined` failed the recording's first commit with a misleading error.
 */
export function digestString(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  throw new EngineShapeError(`${where}: digest() returned ${described(value)}; it must return a string, equal for equal states. See "Writing an engine" in the README.`);
}
