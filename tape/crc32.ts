// CRC-32 (the IEEE polynomial, as zlib's) of the tape's blocks and rows. @node-rs/crc32 computes
// it with the CPU's carry-less multiply: 10 GB/s here against 2 to 3.5 GB/s for node:zlib's
// crc32, which a recording pays on every block it writes and a replay on every block it reads
// (24 MB for 1M world events). Its prebuilt binary comes from the npm registry, for the common
// platforms; where it cannot load, node:zlib's gives the same values (a test holds the two
// together).

import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

type Crc32 = (data: string | Uint8Array, initial?: number) => number;

function fastCrc32(): Crc32 | null {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32: Crc32 };
    return native.crc32;
  } catch {
    return null;
  }
}

const native = fastCrc32();

/** Which implementation this process uses (for tests and diagnostics). */
export const CRC32_IMPLEMENTATION: '@node-rs/crc32' | 'node:zlib' = native === null ? 'node:zlib' : '@node-rs/crc32';

/**
 * node:zlib's crc32 as an unsigned 32-bit value (the reference the fast one is held to). Empty
 * input leaves `initial` as it is: zlib.crc32 on Node 20 returns 0 for bytes over a zero-length
 * ArrayBuffer (as better-sqlite3 returns an empty blob), not the value it was given.
 */
export function zlibCrc32Of(data: string | Uint8Array, initial = 0): number {
  return data.length === 0 ? initial >>> 0 : zlibCrc32(data, initial) >>> 0;
}

/** CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it), unsigned. */
export const crc32: (data: string | Uint8Array, initial?: number) => number = native === null ? zlibCrc32Of : (data, initial = 0) => native(data, initial) >>> 0;
