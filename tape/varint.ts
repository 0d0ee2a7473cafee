// Unsigned LEB128 varints and zigzag for signed deltas, for values up to 2^53 (JS safe
// integers). Writers append to a ByteSink; readers take (bytes, offset) and report the new
// offset through a one-slot cursor to avoid allocating per value.

export class ByteSink {
  bytes: Uint8Array;
  length = 0;

  constructor(initialCapacity = 1 << 16) {
    this.bytes = new Uint8Array(initialCapacity);
  }

  reset(): void {
    this.length = 0;
  }

  /** Make room for `n` more bytes (bytes may be a new, larger array afterwards). */
  ensure(n: number): void {
    this.reserve(n);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    let capacity = this.bytes.length * 2;
    while (capacity < this.length + n) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  byte(value: number): void {
    this.reserve(1);
    this.bytes[this.length++] = value;
  }

  /** Unsigned varint; `value` must be a non-negative safe integer. */
  varint(value: number): void {
    this.reserve(8);
    if (value < 0x80) {
      this.bytes[this.length++] = value;
      return;
    }
    while (value >= 0x80) {
      this.bytes[this.length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.length++] = value;
  }

  /** Signed varint (zigzag) for a safe integer. */
  zigzag(value: number): void {
    this.varint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  raw(data: Uint8Array): void {
    const n = data.length;
    this.reserve(n);
    // Typical keys and payloads are a few bytes, where a loop beats set()'s call overhead.
    if (n <= 32) {
      const bytes = this.bytes;
      let o = this.length;
      for (let i = 0; i < n; i++) bytes[o++] = data[i];
    } else {
      this.bytes.set(data, this.length);
    }
    this.length += n;
  }

  /** A copy of what was written. */
  copy(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/** Most bytes a varint of a safe integer takes. */
export const MAX_VARINT_BYTES = 8;

/**
 * Unsigned varint at `o` in `b` (which has room: MAX_VARINT_BYTES); returns the offset after
 * it. For writers that keep the offset in a local (BlockBuilder's hot path).
 */
export function putVarint(b: Uint8Array, o: number, value: number): number {
  if (value < 0x80) {
    b[o] = value;
    return o + 1;
  }
  while (value >= 0x80) {
    b[o++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  b[o] = value;
  return o + 1;
}

/** Signed varint (zigzag) at `o`; returns the offset after it. */
export function putZigzag(b: Uint8Array, o: number, value: number): number {
  return putVarint(b, o, value >= 0 ? value * 2 : -value * 2 - 1);
}

/** `n` bytes of `data` from `from` at `o` (room reserved); returns the offset after them. */
export function putBytes(b: Uint8Array, o: number, data: Uint8Array, from: number, n: number): number {
  // Typical keys and payloads are a few bytes, where a loop beats set()'s call overhead.
  if (n <= 32) {
    for (let i = 0; i < n; i++) b[o + i] = data[from + i];
  } else {
    b.set(from === 0 && n === data.length ? data : data.subarray(from, from + n), o);
  }
  return o + n;
}

/** Read state: the offset into the bytes, advanced by each read. */
export interface ReadCursor {
  offset: number;
  readonly end: number;
}

/** Decoding error within a buffer; callers turn it into a TapeCorruptError with position. */
export class VarintError extends Error {}

export function readVarint(bytes: Uint8Array, cursor: ReadCursor): number {
  if (cursor.offset < cursor.end && bytes[cursor.offset] < 0x80) return bytes[cursor.offset++];
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (cursor.offset >= cursor.end) throw new VarintError(`varint runs past the end at byte ${cursor.offset}`);
    const b = bytes[cursor.offset++];
    result += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (result > Number.MAX_SAFE_INTEGER) throw new VarintError(`varint beyond 2^53 at byte ${cursor.offset}`);
      return result;
    }
    scale *= 0x80;
  }
  throw new VarintError(`varint longer than 8 bytes at byte ${cursor.offset}`);
}

export function readZigzag(bytes: Uint8Array, cursor: ReadCursor): number {
  const v = readVarint(bytes, cursor);
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}
