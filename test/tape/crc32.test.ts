// The tape's CRC-32 (tape/crc32.ts): @node-rs/crc32 where it loads, node:zlib's elsewhere. Both
// must give every tape the same checksums: the fast one is held to zlib's here.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CRC32_IMPLEMENTATION, crc32, zlibCrc32Of } from '../../tape/crc32.js';

describe('tape CRC-32', () => {
  it('uses the fast implementation on this platform (a linux-x64 binary from the npm registry)', () => {
    // The machines the tests run on are linux-x64: a binary that stopped loading there would
    // leave every recording and replay on the slower one without a word.
    expect(CRC32_IMPLEMENTATION).toBe('@node-rs/crc32');
  });

  it('gives the known CRC-32 values', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new Uint8Array(0), 0xcbf43926)).toBe(0xcbf43926);
  });

  it('equals zlib\'s over any bytes, strings, views into larger buffers, and continued runs', () => {
    const seed = Date.now() % 2 ** 31;
    console.log(`crc32 property seed: ${seed}`);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), fc.nat(), fc.nat(), fc.string(), fc.nat({ max: 0xffffffff }), (bytes, a, b, text, initial) => {
        expect(crc32(bytes)).toBe(zlibCrc32Of(bytes));
        expect(crc32(bytes, initial)).toBe(zlibCrc32Of(bytes, initial));
        expect(crc32(text)).toBe(zlibCrc32Of(text));
        const from = bytes.length === 0 ? 0 : a % bytes.length;
        const to = from + (bytes.length === 0 ? 0 : b % (bytes.length - from + 1));
        const view = bytes.subarray(from, to);
        expect(crc32(view)).toBe(zlibCrc32Of(view));
        // In two parts, the second continuing from the first: the value of the whole.
        expect(crc32(bytes.subarray(to), crc32(bytes.subarray(0, to)))).toBe(zlibCrc32Of(bytes));
      }),
      { seed, numRuns: 300 },
    );
  });
});
