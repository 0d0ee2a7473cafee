import { describe, expect, it } from 'vitest';
import { hashWords, hex64, highWord, lowWord } from '../../engine/hash.js';

describe('hashWords', () => {
  // Reference values from python-xxhash 3.x: xxh32(little-endian bytes of the words, seed).
  it('equals XXH32 of the words\' little-endian bytes for up to three words', () => {
    expect(hashWords(0, [])).toBe(0x02cc5d05);
    expect(hashWords(0, [1])).toBe(0xf3bb7693);
    expect(hashWords(7, [1, 0xdeadbeef, 42])).toBe(0x700b0ad7);
    expect(hashWords(0x5eeda, [0xffffffff, 5])).toBe(0x11597b7f);
  });

  it('treats negative numbers as their 32-bit two\'s complement', () => {
    expect(hashWords(0, [-1, 5])).toBe(hashWords(0, [0xffffffff, 5]));
  });

  it('splits safe integers into words and formats digests', () => {
    expect(lowWord(2 ** 40 + 7)).toBe(7);
    expect(highWord(2 ** 40 + 7)).toBe(256);
    expect(hex64(0xabc, 0x1)).toBe('00000abc00000001');
  });
});
