// Word hashing for digests and seeds.
//
// The algorithm is xxHash32's small-input path applied word by word (xxHash32 by Yann Collet,
// the same constants and round): start = seed + PRIME5 + 4 * wordCount; for each 32-bit word w,
// h = rotl32(h + w * PRIME3, 17) * PRIME4; then the xxHash32 avalanche. For up to three words
// this is exactly XXH32 of the words' little-endian bytes (a test pins that against a
// reference value). It is written out here, not taken from a byte-hashing library, because
// engines hash small tuples of integers on every event, and serialising them to bytes first
// would cost more than the hash itself. All arithmetic is 32-bit (Math.imul, >>> 0), so the
// values are the same on every platform.

export const PRIME1 = 0x9e3779b1;
export const PRIME2 = 0x85ebca77;
export const PRIME3 = 0xc2b2ae3d;
export const PRIME4 = 0x27d4eb2f;
export const PRIME5 = 0x165667b1;

/** Begin a hash of `wordCount` words. */
export function hashStart(seed: number, wordCount: number): number {
  return (seed + PRIME5 + wordCount * 4) | 0;
}

/** Fold one 32-bit word (any JS number; its low 32 bits are used) into the hash. */
export function hashStep(h: number, word: number): number {
  h = (h + Math.imul(word | 0, PRIME3)) | 0;
  h = (h << 17) | (h >>> 15);
  return Math.imul(h, PRIME4);
}

/** Finish: xxHash32 avalanche, giving an unsigned 32-bit value. */
export function hashFinish(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, PRIME2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash a list of 32-bit words. Convenience for cold paths; hot paths inline the three steps. */
export function hashWords(seed: number, words: ArrayLike<number>): number {
  let h = hashStart(seed, words.length);
  for (let i = 0; i < words.length; i++) h = hashStep(h, words[i]);
  return hashFinish(h);
}

/** Split a non-negative safe integer (up to 2^53) into its low and high 32-bit words. */
export function lowWord(value: number): number {
  return value >>> 0;
}
export function highWord(value: number): number {
  return Math.floor(value / 4294967296) >>> 0;
}

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Two 32-bit lanes as 16 lowercase hex digits: the digest format of the built-in engines.
 * Table lookups, because Number#toString(16) costs several hundred nanoseconds and runners
 * may take a digest after every event.
 */
export function hex64(high: number, low: number): string {
  return (
    HEX_BYTE[(high >>> 24) & 0xff] +
    HEX_BYTE[(high >>> 16) & 0xff] +
    HEX_BYTE[(high >>> 8) & 0xff] +
    HEX_BYTE[high & 0xff] +
    HEX_BYTE[(low >>> 24) & 0xff] +
    HEX_BYTE[(low >>> 16) & 0xff] +
    HEX_BYTE[(low >>> 8) & 0xff] +
    HEX_BYTE[low & 0xff]
  );
}
