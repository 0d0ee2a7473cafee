// Splits a stream of byte chunks into lines, with byte offsets, and a hard limit on line
// length: a longer line is reported (with its first maxLineBytes bytes kept) and skipped,
// never buffered whole, so a file without newlines cannot exhaust memory.
//
// A line is a range of a buffer (no view per line unless asked for), and each read chunk is
// checked for UTF-8 once: the lines of a valid chunk need no check of their own.

import { isUtf8 } from 'node:buffer';
import { startsWithBytes, UTF8_BOM } from '../../tape/ndjson.js';

class LineRange implements Line {
  constructor(
    readonly buffer: Buffer,
    readonly start: number,
    readonly end: number,
    readonly validUtf8: boolean,
    readonly lineNo: number,
    readonly byteOffset: number,
    readonly nextByteOffset: number,
    readonly length: number,
    readonly tooLong: boolean,
  ) {}

  get bytes(): Uint8Array {
    return this.buffer.subarray(this.start, this.end);
  }
}

export interface Line {
  /** The buffer holding the line's bytes: [start, end) of it. */
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
  /** True when the line is known to be valid UTF-8 (its whole read chunk was); false: not checked. */
  readonly validUtf8: boolean;
  /** 1-based line number. */
  readonly lineNo: number;
  /** Byte offset of the line's first byte in the input. */
  readonly byteOffset: number;
  /** Byte offset just after the line's newline (or the end of input): where the next line starts. */
  readonly nextByteOffset: number;
  /** The line's bytes without its "\n" (a "\r" before it is kept; the caller decides): a view made on demand. */
  readonly bytes: Uint8Array;
  /** Full length of the line without its "\n"; more than bytes.length when tooLong. */
  readonly length: number;
  readonly tooLong: boolean;
}

export interface LineSplitterOptions {
  readonly maxLineBytes: number;
  /** Offset of the first byte of the input (when resuming mid-file). */
  readonly startOffset: number;
  /** Line number of the first line, minus one. */
  readonly startLine: number;
}

/**
 * Yields, per input chunk, the complete lines it finished. A final line without a newline
 * is yielded at the end of input, unless the whole input is a UTF-8 byte order mark.
 */
export async function* splitLines(chunks: AsyncIterable<Uint8Array>, options: LineSplitterOptions): AsyncGenerator<Line[]> {
  const max = options.maxLineBytes;
  let offset = options.startOffset; // absolute offset of carry[0] (or of the next chunk when carry is empty)
  let lineNo = options.startLine;
  let carry: Buffer | null = null; // the start of an unfinished line (at most max bytes)
  let carryLength = 0; // full length of the unfinished line, counting bytes skipped past max

  for await (const input of chunks) {
    const chunk = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const chunkUtf8 = isUtf8(chunk);
    const lines: Line[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl === -1 ? chunk.length : nl;
      const pieceLength = end - pos;
      if (carry === null && nl !== -1 && pieceLength <= max) {
        // The common case: a whole line inside this chunk.
        lineNo++;
        lines.push(new LineRange(chunk, pos, end, chunkUtf8, lineNo, offset, offset + pieceLength + 1, pieceLength, false));
        offset += pieceLength + 1;
      } else {
        // Part of a line that started in an earlier chunk, ends in a later one, or is too long.
        const kept = carry === null ? 0 : carry.length;
        if (kept < max) {
          const take = chunk.subarray(pos, pos + Math.min(pieceLength, max - kept));
          carry = carry === null ? Buffer.from(take) : Buffer.concat([carry, take]);
        } else if (carry === null) {
          carry = Buffer.alloc(0);
        }
        carryLength += pieceLength;
        if (nl !== -1) {
          lineNo++;
          lines.push(new LineRange(carry, 0, carry.length, false, lineNo, offset, offset + carryLength + 1, carryLength, carryLength > max));
          offset += carryLength + 1;
          carry = null;
          carryLength = 0;
        }
      }
      pos = end + 1;
    }
    yield lines;
  }
  // An input that is only a byte order mark (an empty file saved by an editor that writes one)
  // holds no line, as an empty input holds none: the BOM is how the text is encoded, not a line.
  if (carry !== null && !(offset === 0 && carryLength === UTF8_BOM.length && startsWithBytes(carry, UTF8_BOM))) {
    lineNo++;
    yield [new LineRange(carry, 0, carry.length, false, lineNo, offset, offset + carryLength, carryLength, carryLength > max)];
  }
}
