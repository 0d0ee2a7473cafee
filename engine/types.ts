// The engine contract. Everything here is pure: no I/O, no wall clock, no ambient randomness.
// Runners (recorder, replayer, live ingest) own time and randomness and hand them in through
// an ApplyContext, so the same engine code gives the same state wherever it runs.

import type { Random } from './random.js';

/**
 * The highest partition a tape holds: a 32-bit signed integer's range, as Kafka's partitions
 * and the NDJSON line format (tape/ndjson.ts) have it.
 */
export const MAX_PARTITION = 2 ** 31 - 1;

/** The JSON form of one event: what NDJSON lines carry beside timestamp, partition and key. */
export interface JsonEvent {
  readonly type: string;
  readonly payload: unknown;
}

/**
 * Turns an engine's events into bytes for the tape and back, and into the JSON form used by
 * NDJSON import/export. `decode` and `fromJSON` throw a CodecError naming what is wrong.
 */
export interface EventCodec<E> {
  /** Stable name stored in the tape, e.g. "world-binary/1" or "json". */
  readonly name: string;
  encode(event: E): Uint8Array;
  decode(bytes: Uint8Array): E;
  /**
   * Optional fast path: decode `length` bytes at `offset` without a subarray allocation.
   * Must give exactly what `decode(bytes.subarray(offset, offset + length))` gives.
   */
  decodeAt?(bytes: Uint8Array, offset: number, length: number): E;
  /**
   * Optional fast path, given together with decodeAt: decode as decodeAt does, but into
   * `into` (an event this codec returned before: every field overwritten) and return it; with
   * `into` null, return a new event. Throws what decodeAt throws (`into` may then hold part of
   * the event). Runners use it only for an engine that declares `transientEvents`, so that a
   * run decodes every event into the same object instead of allocating one per event.
   */
  decodeInto?(bytes: Uint8Array, offset: number, length: number, into: E | null): E;
  /**
   * Optional fast path for recording, given together with encodeInto: the length of
   * encode(event), checking the event as encode does.
   */
  encodedLength?(event: E): number;
  /**
   * Optional fast path for recording: write encode(event)'s bytes at `offset` of `bytes` (which
   * has room for encodedLength(event) of them) and return the offset after them, without an
   * array per event. Must write exactly what encode(event) returns, or throw what it throws.
   */
  encodeInto?(event: E, bytes: Uint8Array, offset: number): number;
  toJSON(event: E): JsonEvent;
  fromJSON(json: JsonEvent): E;
}

/** One invariant that does not hold, named so that a report can say what and where. */
export interface InvariantViolation {
  /** Short stable identifier, e.g. "health-out-of-range". */
  readonly code: string;
  /** A sentence naming the entity and the values, e.g. "player 12 has health 140, outside [0, 100]". */
  readonly message: string;
}

/** What the engine sees of the event's transport and of the virtual world around it. */
export interface ApplyContext<U = unknown> {
  /** Position of the event in the tape, from 0. */
  readonly seq: number;
  /** Virtual time in microseconds since the Unix epoch; never goes backwards within a run. */
  readonly nowUs: number;
  /** Recorded source timestamp of this event, in microseconds since the Unix epoch. */
  readonly timestampUs: number;
  /** Source partition of this event. */
  readonly partition: number;
  /**
   * Seeded randomness for this event. The sequence depends only on the run seed and `seq`,
   * so a replay that starts from a snapshot draws the same values as a straight run.
   */
  readonly random: Random;
  /** Publish an output update (the engine's "updates topic"); off the state's path. */
  emit(update: U): void;
}

/**
 * An event engine: a deterministic state machine over events E with state S, publishing
 * updates U. The reference engine `world` is one implementation; users load theirs by path.
 */
export interface Engine<S = unknown, E = unknown, U = unknown> {
  readonly name: string;
  readonly version: string;
  readonly codec: EventCodec<E>;
  /** Fresh state. `options` is engine-specific JSON, stored in the tape. */
  init(options?: unknown): S;
  /** Apply one event; returns the state to use next (the same object for mutable engines). */
  apply(state: S, event: E, ctx: ApplyContext<U>): S;
  /**
   * Digest of the whole state as a lowercase hex string. Equal states give equal digests,
   * whatever order they were built in.
   */
  digest(state: S): string;
  snapshot(state: S): Uint8Array;
  restore(bytes: Uint8Array): S;
  /** Every invariant that does not hold now; empty when the state is sound. */
  checkInvariants(state: S): InvariantViolation[];
  /** Optional JSON view of the state, used to show structural differences. */
  view?(state: S): unknown;
  /**
   * Optional traffic source for `demo` and simulation: the index-th event of a synthetic
   * stream, drawn from `random`. Returns the event plus its partition and key.
   */
  generate?(random: Random, index: number): GeneratedEvent<E>;
  /**
   * Optional: the engine's claim that its state is sharded by partition, which lets
   * `replay --workers N` apply each shard on its own thread (see EngineSharding).
   */
  readonly sharding?: EngineSharding<S>;
  /**
   * Optional: true when apply() keeps no reference to the event it is given (nor to any object
   * inside it) once it returns. Runners may then decode every event into the same object
   * (EventCodec.decodeInto). Leave it out if the state or an emitted update holds events.
   */
  readonly transientEvents?: boolean;
  /** Optional: what `tapedeck simulate` needs to generate streams for this engine (docs/simulate.md). */
  readonly simulation?: EngineSimulation<E>;
}

/**
 * How `tapedeck simulate` and tapedeck/testing generate streams for an engine, and which
 * properties the engine claims beyond the ones every engine must have (determinism,
 * snapshot/restore equivalence, invariants after every event).
 */
export interface EngineSimulation<E> {
  /**
   * A fast-check arbitrary of one event with its transport: given tapedeck's fast-check module
   * (so the engine module need not depend on it), return fc.Arbitrary<SimulatedEvent<E>>.
   * Small id and value ranges find more bugs: events that collide are what break state machines.
   */
  events(fc: unknown): unknown;
  /** Engine options for simulated runs (passed to init); default: the engine's own. */
  readonly options?: unknown;
  /** Claim: delivering an event twice (a Kafka re-delivery) leaves the state as delivering it once. */
  readonly idempotent?: boolean;
  /** Claim: the final state does not depend on how partitions interleave (each partition's order kept). */
  readonly convergent?: boolean;
}

/** One simulated event: the event, its partition and key, and the time since the previous one. */
export interface SimulatedEvent<E> {
  readonly event: E;
  readonly partition: number;
  readonly key: string | null;
  /** Microseconds after the previous event (the first: after the run's start). */
  readonly gapUs: number;
}

/**
 * An engine whose state is a union of independent shards, one per partition: an event on
 * partition p reads and changes only shard p's part of the state, and the engine's
 * invariants hold for the whole state when they hold for every shard.
 *
 * `replay --workers N` gives shard p to worker p mod N. Every worker reads the whole tape (its
 * virtual clock follows every event, so ctx.nowUs is what a single-threaded replay sees) but
 * applies only its partitions' events to a state of its own, started from init(). At each
 * checkpoint it reports digestWords(state); the runner adds the workers' words element-wise
 * modulo 2^32 and asks digestFromWords for the digest, which is compared with the recorded
 * one. Addition does not depend on order, so the combination does not depend on how
 * partitions were spread over workers.
 */
export interface EngineSharding<S> {
  /** Words (32-bit integers) that summarise this part of the state; summed across shards. */
  digestWords(state: S): readonly number[];
  /**
   * The digest of the whole state given the element-wise sum (mod 2^32) of every shard's
   * words; must equal digest() of the same state replayed in one piece.
   */
  digestFromWords(words: readonly number[], options?: unknown): string;
}

export interface GeneratedEvent<E> {
  readonly event: E;
  readonly partition: number;
  readonly key: string | null;
}
