// The NDJSON source: one event per line (format in tape/ndjson.ts), from a file or stdin.
//
// Accepted at the level of lines: CRLF line ends (the "\r" is dropped), a UTF-8 byte order
// mark at the very start of the file, a last line without a newline. Everything else that
// is wrong with a line makes it a reject with a reason code (see docs/recording.md).
// Resume position: the byte offset and line number after the last committed line. A file can
// be re-read, so the recorder syncs relaxed; stdin cannot, so it is `live`.

import { createReadStream, openSync, readSync, closeSync, statSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { resolve } from 'node:path';
import type { EventCodec } from '../../engine/types.js';
import { TapedeckError } from '../../engine/errors.js';
import { isProblem, parseEventLine, type LineTransform } from '../../tape/ndjson.js';
import { Redactor } from '../redact.js';
import type { Source, SourceItem, SourceRecord, SourceReject, SourceSpec } from '../source.js';
import { splitLines, type Line } from './lines.js';

export const DEFAULT_MAX_LINE_BYTES = 1 << 20;
/**
 * Bytes read at a time: a batch holds the lines of one read, and at 64 KiB (about 500 lines)
 * they die young; at 1 MiB a batch's objects outlived the young generation and recording
 * spent a fifth of its time in garbage collection.
 */
const READ_CHUNK_BYTES = 1 << 16;
/** A smaller file is read faster on the main thread than a worker starts. */
export const WORKER_MIN_BYTES = 16 << 20;

export interface NdjsonPosition {
  /** Offset of the next line to read. */
  readonly byteOffset: number;
  /** Number of lines read so far (the next line is line + 1). */
  readonly line: number;
  /**
   * For a file: how many bytes before byteOffset (up to TAIL_CHECK_BYTES) tailCrc32 covers, and
   * their CRC-32; --resume reads them again and refuses a file where they differ. Absent for
   * stdin, and in tapes written before tapedeck stored them (only the line start is checked).
   */
  readonly tailBytes?: number;
  readonly tailCrc32?: number;
}

/** Bytes before the resume offset whose checksum the stored position keeps. */
export const TAIL_CHECK_BYTES = 1 << 16;

export interface NdjsonSourceOptions<E> {
  /** A file path, or "-" for stdin. */
  readonly input: string;
  readonly codec: EventCodec<E>;
  readonly maxLineBytes?: number;
  /** Where to start (resume); the beginning by default. */
  readonly from?: NdjsonPosition;
  /** Keep raw bytes of rejected lines (default true). */
  readonly keepRaw?: boolean;
  /** Redaction (recorder/redact.ts): applied to every line that parses, rejected ones included; its record goes into the tape's metadata. */
  readonly redaction?: { readonly transform: LineTransform; readonly record: unknown };
  /** For tests: the stream to read instead of process.stdin when input is "-". */
  readonly stdin?: AsyncIterable<Uint8Array>;
  /** Stop before the first line that starts at or after this byte offset (a segment of a file read in parallel). */
  readonly until?: number;
  /** Whether the first line read may start with a byte order mark: by default when it is the file's first line. */
  readonly allowBom?: boolean;
  /**
   * Read the file with blocking reads rather than a stream: for a worker thread that does
   * nothing else, where it spares the hop through libuv's thread pool for every chunk.
   */
  readonly blockingReads?: boolean;
}

const BOM = [0xef, 0xbb, 0xbf];

/**
 * The leading bytes of compressed files, which are not lines of text: a file or stdin that
 * starts with one is refused as a whole (E_INPUT_COMPRESSED), with the command that reads it,
 * rather than line by line as invalid UTF-8 (or, with --quarantine, kept aside as garbage).
 */
const COMPRESSED: readonly { readonly format: string; readonly magic: readonly number[]; readonly decompress: string }[] = [
  { format: 'gzip', magic: [0x1f, 0x8b], decompress: 'gunzip -c' },
  { format: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], decompress: 'zstd -dc' },
  { format: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], decompress: 'xz -dc' },
  { format: 'bzip2', magic: [0x42, 0x5a, 0x68], decompress: 'bzip2 -dc' },
  { format: 'zip', magic: [0x50, 0x4b, 0x03, 0x04], decompress: 'unzip -p' },
];

/** The error for input that starts with a compressed format's magic bytes, or null. */
export function compressedInputError(label: string, head: Uint8Array): TapedeckError | null {
  const c = COMPRESSED.find(({ magic }) => head.length >= magic.length && magic.every((b, i) => head[i] === b));
  if (c === undefined) return null;
  const how =
    label === 'stdin'
      ? `decompress it before the pipe: ${c.decompress} FILE | tapedeck record --source ndjson --input - ...`
      : `decompress it (${c.decompress} ${label} > events.ndjson) and record the text file, which --resume can read again; or pipe it: ${c.decompress} ${label} | tapedeck record --source ndjson --input - ...`;
  return new TapedeckError('E_INPUT_COMPRESSED', `${label} is ${c.format}-compressed, not lines of NDJSON text; ${how}`);
}

export class NdjsonSource<E> implements Source<E> {
  readonly name = 'ndjson';
  readonly description: unknown;
  readonly live: boolean;
  private readonly label: string;
  private readonly maxLineBytes: number;
  private readonly firstLine: number;
  private readonly allowBom: boolean;
  private stopped = false;

  constructor(private readonly options: NdjsonSourceOptions<E>) {
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.firstLine = (options.from?.line ?? 0) + 1;
    this.allowBom = options.allowBom ?? (options.from?.line ?? 0) === 0;
    if (!Number.isSafeInteger(this.maxLineBytes) || this.maxLineBytes < 1) {
      throw new TapedeckError('E_USAGE', `--max-line-bytes must be a positive integer, got ${options.maxLineBytes}`);
    }
    this.live = options.input === '-';
    this.label = this.live ? 'stdin' : options.input;
    if (!this.live) {
      const file = statSync(options.input, { throwIfNoEntry: false });
      if (file === undefined) throw new TapedeckError('E_INPUT_NOT_FOUND', `${options.input}: no such file`);
      if (file.isDirectory()) throw new TapedeckError('E_INPUT_NOT_FOUND', `${options.input}: is a folder, not a file of NDJSON lines`);
      const compressed = compressedInputError(options.input, readRange(options.input, 0, 8));
      if (compressed !== null) throw compressed;
      const from = options.from;
      if (from !== undefined && from.byteOffset > 0) checkResumePoint(options.input, from);
    }
    this.description = {
      kind: 'ndjson',
      input: this.live ? '-' : resolve(options.input),
      maxLineBytes: this.maxLineBytes,
      ...(options.redaction === undefined ? {} : { redaction: options.redaction.record }),
    };
  }

  workerSpec(): { spec: SourceSpec; large: boolean } | null {
    const o = this.options;
    if (this.live || o.stdin !== undefined) return null;
    if (o.redaction !== undefined && !(o.redaction.transform instanceof Redactor)) return null;
    const from = o.from ?? { byteOffset: 0, line: 0 };
    return {
      spec: {
        kind: 'ndjson',
        input: o.input,
        maxLineBytes: this.maxLineBytes,
        from,
        keepRaw: o.keepRaw !== false,
        redaction: o.redaction === undefined ? null : (o.redaction.transform as Redactor).parts(),
      },
      large: statSync(o.input).size - from.byteOffset >= WORKER_MIN_BYTES,
    };
  }

  private chunks(): AsyncIterable<Uint8Array> {
    if (this.live) return checkedStdin(this.options.stdin ?? process.stdin, (this.options.from?.line ?? 0) === 0);
    const start = this.options.from?.byteOffset ?? 0;
    if (this.options.blockingReads) return readBlocking(this.options.input, start);
    return createReadStream(this.options.input, { start, highWaterMark: READ_CHUNK_BYTES });
  }

  async *batches(): AsyncIterable<readonly SourceItem<E>[]> {
    const from = this.options.from ?? { byteOffset: 0, line: 0 };
    const lines = splitLines(this.chunks(), { maxLineBytes: this.maxLineBytes, startOffset: from.byteOffset, startLine: from.line });
    try {
      const until = this.options.until ?? Infinity;
      for await (const chunkLines of lines) {
        let n = chunkLines.length;
        let last = false;
        if (n > 0 && chunkLines[n - 1].byteOffset >= until) {
          while (n > 0 && chunkLines[n - 1].byteOffset >= until) n--;
          last = true;
        }
        const batch: SourceItem<E>[] = new Array(n);
        for (let i = 0; i < n; i++) batch[i] = this.parse(chunkLines[i]);
        if (batch.length > 0) yield batch;
        if (this.stopped || last) return;
      }
    } finally {
      await lines.return(undefined);
    }
  }

  private parse(line: Line): SourceItem<E> {
    if (line.tooLong) return this.reject(line, 'line-too-long', `line is ${line.length} bytes, longer than the limit of ${this.maxLineBytes} (--max-line-bytes)`);
    const bytes = line.buffer;
    let start = line.start;
    let end = line.end;
    if (end > start && bytes[end - 1] === 13) end--; // CRLF
    if (line.lineNo === this.firstLine && this.allowBom && bytes[start] === BOM[0] && bytes[start + 1] === BOM[1] && bytes[start + 2] === BOM[2]) start += 3;
    if (start === end) return this.reject(line, 'empty-line', 'empty line');
    if (!line.validUtf8 && !isUtf8(bytes.subarray(start, end))) return this.reject(line, 'invalid-utf8', 'line is not valid UTF-8');
    const text = bytes.toString('utf8', start, end);
    const parsed = parseEventLine(text, this.options.codec, this.options.redaction?.transform);
    if (isProblem(parsed)) return this.reject(line, parsed.reasonCode, parsed.reason, parsed.transformed);
    const record: NdjsonRecord<E> = {
      timestampUs: parsed.timestampUs,
      partition: parsed.partition,
      position: line.lineNo,
      key: parsed.key,
      headers: parsed.headers,
      payload: parsed.payload,
      event: parsed.event,
      nextByteOffset: line.nextByteOffset,
    };
    return record;
  }

  /** `transformed`: the redacted line, kept instead of the raw one when the line parsed. */
  private reject(line: Line, reasonCode: string, reason: string, transformed?: string): NdjsonReject {
    return {
      reject: true,
      position: { input: this.label, line: line.lineNo, byteOffset: line.byteOffset },
      where: `${this.label} line ${line.lineNo} (byte ${line.byteOffset})`,
      reasonCode,
      reason,
      raw: this.options.keepRaw === false ? null : transformed !== undefined ? Buffer.from(transformed, 'utf8') : Uint8Array.from(line.bytes),
      rawLength: line.length,
      lineNo: line.lineNo,
      nextByteOffset: line.nextByteOffset,
    };
  }

  /**
   * A file's position gets the checksum of the bytes before it (see NdjsonPosition); or not,
   * when the path no longer gives them (the file was removed or cut short while it was being
   * read): the recording goes on, and its --resume gets the line-start check only.
   */
  sealPosition(position: unknown): NdjsonPosition {
    const p = position as NdjsonPosition;
    if (this.live || p.byteOffset === 0) return p;
    let tail: Buffer;
    try {
      tail = readTail(this.options.input, p.byteOffset);
    } catch {
      return p;
    }
    if (tail.length !== Math.min(TAIL_CHECK_BYTES, p.byteOffset)) return p;
    return { byteOffset: p.byteOffset, line: p.line, tailBytes: tail.length, tailCrc32: crc32(tail) >>> 0 };
  }

  resumeAfter(item: SourceItem<E>): NdjsonPosition {
    const it = item as NdjsonRecord<E> | NdjsonReject;
    return { byteOffset: it.nextByteOffset, line: 'lineNo' in it ? it.lineNo : (it as NdjsonRecord<E>).position };
  }

  stop(): void {
    this.stopped = true;
  }
}

/** The byte offset just after an item this source handed out (its resume offset, without the position object). */
export function nextByteOffsetOf(item: SourceItem<unknown>): number {
  return (item as NdjsonRecord<unknown> | NdjsonReject).nextByteOffset;
}

interface NdjsonRecord<E> extends SourceRecord<E> {
  readonly nextByteOffset: number;
}

interface NdjsonReject extends SourceReject {
  readonly lineNo: number;
  readonly nextByteOffset: number;
}

/**
 * Stdin, refused at its first bytes if they are a compressed format's (when it starts a
 * recording: a resumed one appends to lines already read). The chunks that bring the first
 * 8 bytes are held back until they are checked.
 */
async function* checkedStdin(input: AsyncIterable<Uint8Array>, check: boolean): AsyncGenerator<Uint8Array> {
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  const release = (): Uint8Array[] => {
    const compressed = compressedInputError('stdin', Buffer.concat(held).subarray(0, 8));
    if (compressed !== null) throw compressed;
    check = false;
    return held.splice(0);
  };
  for await (const chunk of input) {
    if (!check) {
      yield chunk;
      continue;
    }
    held.push(chunk);
    heldBytes += chunk.length;
    if (heldBytes >= 8) yield* release();
  }
  if (check) yield* release();
}

/** The file from `start`, in chunks of READ_CHUNK_BYTES, by blocking reads. */
async function* readBlocking(path: string, start: number): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, 'r');
  try {
    for (let at = start; ; ) {
      const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const n = readSync(fd, chunk, 0, READ_CHUNK_BYTES, at);
      if (n === 0) return;
      at += n;
      yield n === READ_CHUNK_BYTES ? chunk : chunk.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The offset of the first line that starts at or after `offset` in the file (its size when
 * none does): the start of a segment when a file is read in parallel.
 */
export function lineStartAtOrAfter(path: string, offset: number): number {
  if (offset <= 0) return 0;
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(1 << 16);
    for (let at = offset - 1; ; ) {
      const n = readSync(fd, buffer, 0, buffer.length, at);
      if (n === 0) return at;
      const nl = buffer.subarray(0, n).indexOf(10);
      if (nl >= 0) return at + nl + 1;
      at += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The bytes of the file from `start`, up to `length` of them (fewer where the file ends sooner). */
function readRange(path: string, start: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    let n = 0;
    while (n < length) {
      const got = readSync(fd, bytes, n, length - n, start + n);
      if (got === 0) break;
      n += got;
    }
    return bytes.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** The up to TAIL_CHECK_BYTES bytes of the file before `byteOffset` (fewer when the file is shorter). */
function readTail(path: string, byteOffset: number): Buffer {
  const start = Math.max(0, byteOffset - TAIL_CHECK_BYTES);
  return readRange(path, start, byteOffset - start);
}

/**
 * A resume offset must be the start of a line of the same file: the byte before it a newline,
 * and, when the position has it, the checksum of the bytes before it the one recorded.
 */
function checkResumePoint(path: string, from: NdjsonPosition): void {
  const byteOffset = from.byteOffset;
  const size = statSync(path).size;
  if (byteOffset > size) {
    throw new TapedeckError('E_RESUME_MISMATCH', `${path} is ${size} bytes, shorter than the ${byteOffset} bytes already recorded; is it the same file?`);
  }
  const tail = readTail(path, byteOffset);
  // At the end of a file without a final newline the last byte is not a newline; that is
  // fine when nothing follows.
  if (tail[tail.length - 1] !== 10 && byteOffset !== size) {
    throw new TapedeckError('E_RESUME_MISMATCH', `${path}: byte ${byteOffset} is not the start of a line; the file changed since it was recorded`);
  }
  if (from.tailCrc32 !== undefined && from.tailBytes !== undefined) {
    const checked = tail.subarray(tail.length - from.tailBytes);
    if (from.tailBytes > tail.length || crc32(checked) >>> 0 !== from.tailCrc32) {
      throw new TapedeckError(
        'E_RESUME_MISMATCH',
        `${path}: the ${from.tailBytes.toLocaleString('en-US')} bytes before byte ${byteOffset.toLocaleString('en-US')} (line ${(from.line + 1).toLocaleString('en-US')}, where the recording resumes) ` +
          `are not those recorded: this is not the file the tape was recorded from, or it changed since; record it into a new tape`,
      );
    }
  }
}
