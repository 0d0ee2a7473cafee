// How a runner decodes the events it applies from a tape's blocks: the codec's fastest way
// that is safe for the engine.

import type { Engine } from './types.js';

/** Decodes the event in `length` bytes at `offset` of `bytes`. */
export type EventDecoder<E> = (bytes: Uint8Array, offset: number, length: number) => E;

/**
 * The decoder a run applies events through. For an engine that keeps no event after apply()
 * (`transientEvents`) and a codec with `decodeInto`, every event is decoded into the same
 * object, which saves an allocation per event (about a fifth of the time of applying a world
 * event decoded from a block); otherwise the codec's decodeAt, or decode of a view.
 * One decoder per run: the object it reuses is the one it last returned.
 */
export function eventDecoder<E>(engine: Engine<unknown, E>): EventDecoder<E> {
  const codec = engine.codec;
  // The codec's methods are called as methods (codec.decodeInto(...)), not through a
  // reference and call(): V8 calls a method it has seen directly, while call() on a function
  // kept in a closure went through its generic Call builtins on every event (1.2% of a
  // recording's main thread, perf).
  if (engine.transientEvents === true && codec.decodeInto !== undefined) {
    let event: E | null = null;
    return (bytes, offset, length) => (event = codec.decodeInto!(bytes, offset, length, event));
  }
  if (codec.decodeAt !== undefined) return (bytes, offset, length) => codec.decodeAt!(bytes, offset, length);
  return (bytes, offset, length) => codec.decode(bytes.subarray(offset, offset + length));
}
