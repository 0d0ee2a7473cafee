// The NDJSON source: one event per line (format in tape/ndjson.ts), from a file or stdin.
//
// Accepted at the level of lines: CRLF line ends (the "\r" is dropped), a UTF-8 byte order
// mark at the very start of the file, a last line without a newline. Everything else that
// is wrong with a line makes it a reject with a reason code (see docs/recording.md).
// Resume position: the byte offset and line number after the last committed line. A file can
// be re-read, so the recorder syncs relaxed; stdin cannot, so it is `live`, and so is a path
// that is not a regular file (a named pipe, or `<(zcat events.ndjson.gz)`): it is read once,
// in order, as stdin is.
//
// A file is opened once, when the source is made, and every read (the recording's, the parse
// workers', the resume checksum's) goes through that descriptor: a file renamed or removed
// while it is recorded (a log rotated) is read to its end all the same.
//
// A gzip-compressed file (events.ndjson.gz, a rotated log) is read through zlib, in order, on
// the recording's thread. Its positions are those of the text it holds (the byte offset in the
// decompressed lines), so a tape recorded from the .gz file resumes from the plain one, and
// back; --resume decompresses the file again up to the offset and checks the bytes before it.

import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { isatty, ReadStream } from 'node:tty';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { isUtf8 } from 'node:buffer';
import { resolve } from 'node:path';
import type { EventCodec } from '../../engine/types.js';
import { TapedeckError } from '../../engine/errors.js';
import { crc32 } from '../../tape/crc32.js';
import { unreadableWhy } from '../../tape/errors.js';
import { GZIP_MAGIC, isProblem, parseEventLine, startsWithBytes, UTF8_BOM, type LineTransform } from '../../tape/ndjson.js';
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
  /**
   * The input's text from `from` on, already read on another thread (a segment of a gzip file
   * that the main thread decompresses, for a parse worker): read as it comes, with positions
   * from `from`; `input` only names it.
   */
  readonly text?: AsyncIterable<Uint8Array>;
  /** Stop before the first line that starts at or after this byte offset (a segment of a file read in parallel). */
  readonly until?: number;
  /** Whether the first line read may start with a byte order mark: by default when it is the file's first line. */
  readonly allowBom?: boolean;
  /**
   * Read the file with blocking reads rather than a stream: for a worker thread that does
   * nothing else, where it spares the hop through libuv's thread pool for every chunk.
   */
  readonly blockingReads?: boolean;
  /**
   * An open descriptor of `input` to read instead of opening the path: a worker thread reads
   * the file the main thread's source opened (the descriptor stays that source's to close).
   */
  readonly fd?: number;
  /**
   * The file's size when the recording opened it (a parse worker's source is given the main
   * thread's): a read that finds the file's end before it means the file was cut short while it
   * was read (E_INPUT_TRUNCATED). By default the size this source finds when it opens the file.
   */
  readonly sizeAtOpen?: number;
}

/**
 * The leading bytes of compressed files, which are not lines of text: input that starts with
 * one (but a gzip file, which is read decompressed) is refused as a whole (E_INPUT_COMPRESSED), with the command that reads
 * it, rather than line by line as invalid UTF-8 (or, with --quarantine, kept aside as garbage).
 */
const COMPRESSED: readonly { readonly format: string; readonly magic: readonly number[]; readonly decompress: string }[] = [
  { format: 'gzip', magic: GZIP_MAGIC, decompress: 'gunzip -c' },
  { format: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], decompress: 'zstd -dc' },
  { format: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], decompress: 'xz -dc' },
  { format: 'bzip2', magic: [0x42, 0x5a, 0x68], decompress: 'bzip2 -dc' },
  { format: 'zip', magic: [0x50, 0x4b, 0x03, 0x04], decompress: 'unzip -p' },
];

/** The error for input that starts with a compressed format's magic bytes, or null. `stream`: stdin or a pipe, not a file. */
export function compressedInputError(label: string, head: Uint8Array, stream: boolean): TapedeckError | null {
  const c = COMPRESSED.find(({ magic }) => startsWithBytes(head, magic));
  if (c === undefined) return null;
  const how = stream
      ? c.magic === GZIP_MAGIC
        ? `give the gzip file itself (--input FILE.gz), which is read decompressed and which --resume can read again; or decompress it before the pipe: ${c.decompress} FILE | tapedeck record --source ndjson --input - ...`
        : `decompress it before the pipe: ${c.decompress} FILE | tapedeck record --source ndjson --input - ...`
      : `decompress it (${c.decompress} ${label} > events.ndjson) and record the text file, which --resume can read again; or pipe it: ${c.decompress} ${label} | tapedeck record --source ndjson --input - ...`;
  return new TapedeckError('E_INPUT_COMPRESSED', `${label} is ${c.format}-compressed, not lines of NDJSON text; ${how}`);
}

/** Decompressed bytes a gzip source keeps behind what it has handed on: for the checksum of a position's tail (sealPosition). */
const GZIP_KEEP_BYTES = 1 << 20;
/** A gzip file at least this large (compressed: about 16 MiB of text) is parsed on the parse workers (text()). */
export const GZIP_WORKER_MIN_BYTES = 2 << 20;

export class NdjsonSource<E> implements Source<E> {
  readonly name = 'ndjson';
  readonly description: unknown;
  readonly live: boolean;
  private readonly label: string;
  /** The file read (not for stdin, or text given by the caller). */
  readonly inputFile?: string;
  private readonly maxLineBytes: number;
  private readonly firstLine: number;
  private readonly allowBom: boolean;
  /** Where this run starts reading (for a pipe: its first byte, whatever offset a resumed tape stored). */
  private readonly from: NdjsonPosition;
  /** The input's descriptor: null for stdin. */
  private fd: number | null = null;
  /** Whether close() closes fd (this source opened it). */
  private readonly ownsFd: boolean;
  /**
   * The input is a named pipe, or a terminal (`--input /dev/tty`): read as a stream, as stdin
   * is (a socket; a tty.ReadStream), so that a stop can end a read waiting for input.
   */
  private readonly streamed: 'fifo' | 'tty' | null;
  /**
   * Stdin or a pipe, once reading started. A stop while a read waits for input that may never
   * come (an idle producer) destroys it, so that the read ends at once; a stop while lines are
   * being taken lets them take what the stream holds (see drainTo).
   */
  private stream: InputStream | null = null;
  /** Bytes taken so far from stdin or a pipe (this run's). */
  private streamBytes = 0;
  /** Waiting for the stream's next chunk (nothing read is in hand but an unfinished line). */
  private waiting = false;
  /**
   * After a stop while lines were being taken: streamBytes once what the stream held at the stop
   * is taken. Those are bytes stdin cannot give again, so their whole lines are recorded; then
   * the stream ends there.
   */
  private drainTo: number | null = null;
  /** Bytes the stream had read and not handed on when it was closed (they came after a stop). */
  private discardedBytes = 0;
  /** A regular file's size when it was opened (compressed, for a gzip file); null for stdin or a pipe. */
  readonly fileSize: number | null;
  /** A regular file's size when the recording opened it (NdjsonSourceOptions.sizeAtOpen, else fileSize): where its reads expect its end. */
  private readonly sizeAtOpen: number | null;
  /** The input is a gzip-compressed file: read through zlib, in order (positions are in its text). */
  readonly gzip: boolean;
  /** Compressed bytes of a gzip file read so far (its progress). */
  private compressedRead = 0;
  /**
   * The last decompressed chunks of a gzip file handed on (GZIP_KEEP_BYTES and the latest),
   * with the offset of each in the text: where sealPosition finds the bytes before a position.
   */
  private readonly recent: { readonly start: number; readonly bytes: Buffer }[] = [];
  private recentBytes = 0;
  /** With text(): the offset before which the recorder has taken every line (see textTaken); else null. */
  private textTakenTo: number | null = null;
  /** The input is a plain regular file, read by offset; else stdin, a pipe or a gzip file, read once in order. */
  private get seekable(): boolean {
    return this.fileSize !== null && !this.gzip;
  }
  private stopped = false;

  constructor(private readonly options: NdjsonSourceOptions<E>) {
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.firstLine = (options.from?.line ?? 0) + 1;
    this.allowBom = options.allowBom ?? (options.from?.line ?? 0) === 0;
    if (!Number.isSafeInteger(this.maxLineBytes) || this.maxLineBytes < 1) {
      throw new TapedeckError('E_USAGE', `--max-line-bytes must be a positive integer, got ${options.maxLineBytes}`);
    }
    const stdin = options.input === '-';
    const given = options.text !== undefined;
    this.label = stdin ? 'stdin' : options.input;
    if (!stdin && !given) this.inputFile = options.input;
    this.ownsFd = !stdin && !given && options.fd === undefined;
    let streamed: 'fifo' | 'tty' | null = null;
    let fileSize: number | null = null;
    let gzip = false;
    if (!stdin && !given) {
      const fd = options.fd ?? openInput(options.input);
      this.fd = fd;
      try {
        const file = fstatSync(fd);
        if (file.isDirectory()) throw new TapedeckError('E_INPUT_NOT_FOUND', `${options.input}: is a folder, not a file of NDJSON lines`);
        streamed = file.isFIFO() ? 'fifo' : file.isCharacterDevice() && isatty(fd) ? 'tty' : null;
        if (file.isFile()) {
          fileSize = file.size;
          const head = readRange(fd, 0, 8);
          gzip = startsWithBytes(head, GZIP_MAGIC);
          const compressed = gzip ? null : compressedInputError(options.input, head, false);
          if (compressed !== null) throw compressed;
          // (A gzip file's resume point is checked when it is decompressed up to it: see gunzipped.)
          const from = options.from;
          const sizeAtOpen = options.sizeAtOpen;
          if (from !== undefined && sizeAtOpen !== undefined && from.byteOffset > file.size && from.byteOffset <= sizeAtOpen) {
            // A parse worker's segment that starts past the end of a file that was longer when
            // the recording opened it: the file was cut short, it is not another file.
            throw cutShort(fd, file.size, { label: options.input, size: sizeAtOpen });
          }
          if (from !== undefined && from.byteOffset > 0 && !gzip) checkResumePoint(fd, options.input, from);
        }
      } catch (error) {
        this.close();
        throw error;
      }
    }
    this.streamed = streamed;
    this.fileSize = fileSize;
    this.sizeAtOpen = options.sizeAtOpen ?? fileSize;
    this.gzip = gzip;
    this.live = fileSize === null;
    // A stream (stdin, a pipe) cannot be read again: a resumed recording reads what is piped in
    // now from its first byte, and goes on numbering lines after those recorded.
    const from = options.from ?? { byteOffset: 0, line: 0 };
    this.from = fileSize !== null || given ? from : { byteOffset: 0, line: from.line };
    this.description = {
      kind: 'ndjson',
      input: stdin ? '-' : resolve(options.input),
      ...(gzip ? { compression: 'gzip' } : {}),
      maxLineBytes: this.maxLineBytes,
      ...(options.redaction === undefined ? {} : { redaction: options.redaction.record }),
    };
  }

  workerSpec(): { spec: SourceSpec; large: boolean } | null {
    const o = this.options;
    if (this.fd === null || o.stdin !== undefined || o.text !== undefined) return null;
    if (o.redaction !== undefined && !(o.redaction.transform instanceof Redactor)) return null;
    const from = this.from;
    const redaction = o.redaction === undefined ? null : (o.redaction.transform as Redactor).parts();
    if (this.gzip) {
      // The text is decompressed here, in order, and cut into segments for the parse workers (text()).
      return {
        spec: { kind: 'ndjson-text', input: o.input, maxLineBytes: this.maxLineBytes, from, keepRaw: o.keepRaw !== false, redaction },
        large: this.fileSize! >= GZIP_WORKER_MIN_BYTES,
      };
    }
    if (!this.seekable) return null;
    return {
      spec: {
        kind: 'ndjson',
        input: o.input,
        fd: this.fd,
        sizeAtOpen: this.sizeAtOpen!,
        maxLineBytes: this.maxLineBytes,
        from,
        keepRaw: o.keepRaw !== false,
        redaction,
      },
      large: fstatSync(this.fd).size - from.byteOffset >= WORKER_MIN_BYTES,
    };
  }

  /**
   * The text of a gzip file from this run's start (as batches() would read it), for the parse
   * workers (workerSpec's 'ndjson-text'): the recorder cuts it into segments. The chunks stay
   * this source's (they are kept for the checksums of positions): copy what is handed on.
   */
  text(): AsyncIterable<Uint8Array> {
    if (!this.gzip || this.fd === null) throw new Error('NdjsonSource.text() is for a gzip file');
    this.textTakenTo = this.from.byteOffset;
    return this.gunzipped(this.fd);
  }

  /**
   * With text(): the recorder has taken every line before `offset`. The text kept for the
   * checksums of positions is then what is still in flight and the TAIL_CHECK_BYTES before it.
   */
  textTaken(offset: number): void {
    this.textTakenTo = offset;
    this.trimRecent();
  }

  private chunks(): AsyncIterable<Uint8Array> {
    if (this.options.text !== undefined) return this.options.text;
    const fd = this.fd;
    const first = this.from.line === 0;
    if (fd === null || this.streamed !== null) {
      let stream: InputStream;
      if (fd === null) stream = this.options.stdin ?? process.stdin;
      else {
        // The stream takes the descriptor over: it closes it when it ends or is destroyed.
        // (Half-open: a read-only pipe has no writing side to end.)
        stream = this.streamed === 'tty' ? new ReadStream(fd) : new Socket({ fd, readable: true, writable: false, allowHalfOpen: true });
        this.fd = null;
      }
      this.stream = stream;
      return checkedStream(this.counted(stream), first, this.label, () => this.stopped);
    }
    if (this.gzip) return this.gunzipped(fd);
    if (!this.seekable) return checkedStream(this.counted(readChunks(fd, null)), first, this.label, () => false);
    const start = this.from.byteOffset;
    const expected = { label: this.label, size: this.sizeAtOpen! };
    if (this.options.blockingReads) return readBlocking(fd, start, expected);
    return readChunks(fd, start, expected);
  }

  /**
   * The text of the gzip file open as `fd` (every member of it, as gunzip writes them), from
   * this run's start offset in the text: decompressed from the file's first byte, and what comes
   * before the offset checked against the position (checkTail), then dropped.
   * Damaged or cut-short data is E_INPUT_GZIP, naming how far the text went: the lines before
   * it are recorded (the recorder commits what it took), the unfinished one is not.
   */
  private async *gunzipped(fd: number): AsyncGenerator<Uint8Array> {
    const from = this.from;
    const skip = from.byteOffset;
    const gunzip = createGunzip({ chunkSize: READ_CHUNK_BYTES });
    const compressed = Readable.from(this.compressedChunks(fd), { objectMode: false });
    // Its errors (a read, zlib's) reach the loop below through gunzip, which they destroy.
    const feeding = pipeline(compressed, gunzip).catch(() => undefined);
    let at = 0;
    let checked = skip === 0;
    try {
      try {
        for await (const chunk of gunzip as AsyncIterable<Buffer>) {
          const start = at;
          at += chunk.length;
          this.keepRecent(start, chunk);
          if (at <= skip) continue;
          if (!checked) {
            checkTail(this.label, from, this.recentBytesBefore(skip), false);
            checked = true;
          }
          yield start < skip ? chunk.subarray(skip - start) : chunk;
        }
      } catch (error) {
        if (error instanceof TapedeckError) throw error;
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== undefined && code.startsWith('Z_')) {
          throw new TapedeckError(
            'E_INPUT_GZIP',
            `${this.label}: the gzip data is damaged or cut short after ${at.toLocaleString('en-US')} bytes of text (${(error as Error).message}); ` +
              'the whole lines before it are recorded, and --resume goes on from there once the file is whole',
          );
        }
        throw error;
      }
      if (!checked) {
        if (at < skip) throw new TapedeckError('E_RESUME_MISMATCH', `${this.label} holds ${at.toLocaleString('en-US')} bytes of text, fewer than the ${skip.toLocaleString('en-US')} already recorded; is it the same file?`);
        checkTail(this.label, from, this.recentBytesBefore(skip), true);
      }
    } finally {
      gunzip.destroy();
      // The reads end before the source's descriptor can be closed.
      await feeding;
    }
  }

  /** The gzip file's compressed bytes, from its start, counted (for progress). */
  private async *compressedChunks(fd: number): AsyncGenerator<Uint8Array> {
    for await (const chunk of readChunks(fd, 0)) {
      this.compressedRead += chunk.length;
      yield chunk;
    }
  }

  /** Keep a decompressed chunk that starts at `start` in the text, and forget those GZIP_KEEP_BYTES behind. */
  private keepRecent(start: number, bytes: Buffer): void {
    this.recent.push({ start, bytes });
    this.recentBytes += bytes.length;
    this.trimRecent();
  }

  private trimRecent(): void {
    const recent = this.recent;
    if (this.textTakenTo === null) {
      while (this.recentBytes - recent[0].bytes.length >= GZIP_KEEP_BYTES) this.recentBytes -= recent.shift()!.bytes.length;
      return;
    }
    // Read ahead for the parse workers: keep all that positions can still fall in.
    const keepFrom = this.textTakenTo - TAIL_CHECK_BYTES;
    while (recent.length > 1 && recent[0].start + recent[0].bytes.length <= keepFrom) this.recentBytes -= recent.shift()!.bytes.length;
  }

  /** The up to TAIL_CHECK_BYTES bytes of the text before `offset`, from the chunks kept (fewer when they no longer hold them all). */
  private recentBytesBefore(offset: number): Buffer {
    const from = Math.max(0, offset - TAIL_CHECK_BYTES);
    const parts: Buffer[] = [];
    for (const { start, bytes } of this.recent) {
      const end = start + bytes.length;
      if (end <= from || start >= offset) continue;
      parts.push(bytes.subarray(Math.max(from, start) - start, Math.min(offset, end) - start));
    }
    const kept = Buffer.concat(parts);
    const keptFrom = this.recent.length === 0 ? offset : Math.max(from, this.recent[0].start);
    // Only a run that ends at `offset` is a tail.
    return keptFrom + kept.length === offset ? kept : Buffer.alloc(0);
  }

  /** How far reading has gone in the file's bytes (compressed, for a gzip file): for a progress bar against fileSize. */
  progressBytes(position: unknown): number {
    if (this.gzip) return this.compressedRead;
    return (position as NdjsonPosition | undefined)?.byteOffset ?? 0;
  }

  /** The chunks of stdin or a pipe, counted into streamBytes; ended where a stop says (drainTo). */
  private async *counted(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const it = chunks[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (this.drainTo !== null && this.streamBytes >= this.drainTo) {
          // What the stream holds now came after the stop, but it was read from stdin all the
          // same, which cannot give it again: its whole lines are recorded too, then the
          // stream ends (what comes while they are taken is counted as left out).
          const rest = takeBuffered(this.stream);
          if (rest !== null) {
            this.streamBytes += rest.length;
            yield rest;
          }
          throw new StreamStopped();
        }
        this.waiting = true;
        let next: IteratorResult<Uint8Array>;
        try {
          next = await it.next();
        } finally {
          this.waiting = false;
        }
        if (next.done === true) return;
        this.streamBytes += next.value.length;
        yield next.value;
      }
    } finally {
      this.discardedBytes += this.stream?.readableLength ?? 0;
      await it.return?.();
    }
  }

  /**
   * Bytes read from stdin or a pipe that are not in the tape, given the position of the last
   * commit (undefined: none): what a stop left after the last whole line taken (the start of a
   * line whose newline had not come, or input that came after the stop). Stdin cannot give them
   * again, so the recorder's summary says how many. Always 0 for a file, which --resume reads
   * again.
   */
  unrecordedBytes(committed: unknown): number {
    if (this.fileSize !== null) return 0;
    const offset = (committed as NdjsonPosition | undefined)?.byteOffset ?? 0;
    return Math.max(0, this.streamBytes - offset) + this.discardedBytes;
  }

  async *batches(): AsyncIterable<readonly SourceItem<E>[]> {
    if (this.stopped) return;
    const from = this.from;
    const lines = splitLines(this.chunks(), { maxLineBytes: this.maxLineBytes, startOffset: from.byteOffset, startLine: from.line });
    try {
      for await (const chunkLines of lines) {
        // Read for each chunk of lines: a text segment learns where it ends as it is fed.
        const until = this.options.until ?? Infinity;
        let n = chunkLines.length;
        let last = false;
        if (n > 0 && chunkLines[n - 1].byteOffset >= until) {
          while (n > 0 && chunkLines[n - 1].byteOffset >= until) n--;
          last = true;
        }
        const batch: SourceItem<E>[] = new Array(n);
        for (let i = 0; i < n; i++) batch[i] = this.parse(chunkLines[i]);
        if (batch.length > 0) yield batch;
        // Stopped: a file ends here (--resume reads on from the position); stdin or a pipe goes
        // on until it has taken what it held at the stop (counted() then ends it).
        if (last || (this.stopped && this.stream === null)) return;
      }
    } catch (error) {
      // stop() ended a read that waited for input: the end that was asked for.
      if (!(error instanceof StreamStopped)) throw error;
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
    if (line.lineNo === this.firstLine && this.allowBom && startsWithBytes(bytes.subarray(start, end), UTF8_BOM)) start += UTF8_BOM.length;
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
   * when the file no longer has them (it was cut short while it was being read): the
   * recording goes on, and its --resume gets the line-start check only.
   */
  sealPosition(position: unknown): NdjsonPosition {
    const p = position as NdjsonPosition;
    if (this.fileSize === null || this.fd === null || p.byteOffset === 0) return p;
    let tail: Buffer;
    try {
      tail = this.gzip ? this.recentBytesBefore(p.byteOffset) : readTail(this.fd, p.byteOffset);
    } catch {
      return p;
    }
    if (tail.length !== Math.min(TAIL_CHECK_BYTES, p.byteOffset)) return p;
    return { byteOffset: p.byteOffset, line: p.line, tailBytes: tail.length, tailCrc32: crc32(tail) };
  }

  resumeAfter(item: SourceItem<E>): NdjsonPosition {
    const it = item as NdjsonRecord<E> | NdjsonReject;
    return { byteOffset: it.nextByteOffset, line: 'lineNo' in it ? it.lineNo : (it as NdjsonRecord<E>).position };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const stream = this.stream;
    if (stream === null) return;
    if (this.waiting) stream.destroy?.();
    else this.drainTo = this.streamBytes + (stream.readableLength ?? 0);
  }

  /** Close the file this source opened (recordTape does, when the recording ends); reading ends with it. */
  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null && this.ownsFd) closeSync(fd);
  }
}

/** The input file opened for reading, or an error that names it. */
function openInput(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TapedeckError('E_INPUT_NOT_FOUND', `${path}: no such file`);
    // Said as for a tape (tape/errors.ts): the file's mode and owner, or the folder.
    const why = code === 'EACCES' || code === 'EPERM' ? (unreadableWhy(path) ?? 'permission denied') : null;
    if (why !== null) throw new TapedeckError('E_INPUT_UNREADABLE', `${path}: cannot be opened for reading: ${why}`);
    throw new TapedeckError('E_INPUT_UNREADABLE', `${path}: cannot be opened for reading (${code ?? (error as Error).message})`);
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
 * Stdin or a pipe (named `label` in errors), refused at its first bytes if they are a
 * compressed format's (when it starts a recording: a resumed one appends to lines already
 * read). The chunks that bring the first 8 bytes are held back until they are checked.
 */
async function* checkedStream(input: AsyncIterable<Uint8Array>, check: boolean, label: string, stopped: () => boolean): AsyncGenerator<Uint8Array> {
  try {
    yield* checkedChunks(input, check, label);
  } catch (error) {
    if (stopped()) throw new StreamStopped();
    throw error;
  }
  // Ended by stop() (the stream destroyed): what is left of an unfinished line is not a line.
  if (stopped()) throw new StreamStopped();
}

/** Stdin or a pipe as the source reads it: a Node Readable, or any iterable of chunks (tests). */
type InputStream = AsyncIterable<Uint8Array> & { destroy?(): unknown; read?(): unknown; readonly readableLength?: number };

/** What a Readable holds, taken at once (its async iterator is between chunks); null when nothing, or not a Readable. */
function takeBuffered(stream: InputStream | null): Buffer | null {
  if (stream?.read === undefined || (stream.readableLength ?? 0) === 0) return null;
  const parts: Buffer[] = [];
  for (let chunk = stream.read(); chunk !== null && chunk !== undefined; chunk = stream.read()) {
    parts.push(Buffer.isBuffer(chunk) ? chunk : typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array));
  }
  return parts.length === 0 ? null : Buffer.concat(parts);
}

/** Thrown through the line splitter when stop() ended the stream, so that it does not take an unfinished line for the last one. */
class StreamStopped extends Error {}

async function* checkedChunks(input: AsyncIterable<Uint8Array>, check: boolean, label: string): AsyncGenerator<Uint8Array> {
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  const release = (): Uint8Array[] => {
    const compressed = compressedInputError(label, Buffer.concat(held).subarray(0, 8), true);
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

const readAsync = promisify(read);

/** A file's name, and the size it had when the recording opened it: where its end is expected. */
interface ExpectedEnd {
  readonly label: string;
  readonly size: number;
}

/**
 * The end of the file open as `fd` was found at byte `at`, before the size it had when the
 * recording opened it: something cut the file short while it was read (logrotate's
 * copytruncate does that to a log). Its last line read may be cut too, and the lines after are
 * gone: the recording stops here rather than report the cut line as bad input or end as if
 * the file had been read whole.
 */
function cutShort(fd: number, at: number, expected: ExpectedEnd): TapedeckError {
  let now = at;
  try {
    now = fstatSync(fd).size;
  } catch {
    // The size found by the read stands.
  }
  const n = (value: number): string => value.toLocaleString('en-US');
  return new TapedeckError(
    'E_INPUT_TRUNCATED',
    `${expected.label}: the file was cut short while it was recorded: it held ${n(expected.size)} bytes when the recording opened it, and its end came at byte ${n(at)} ` +
      `(${n(now)} bytes now; another program truncated it, as logrotate's copytruncate does?). The whole lines before the cut are recorded, not the one it cut; ` +
      '--resume goes on from there if the file is put back whole',
  );
}

/**
 * The file open as `fd` from byte `start` (null: a pipe, read in order from where it is), in
 * chunks of READ_CHUNK_BYTES; with `expected`, an end before its size is an error (cutShort).
 * Not a read stream: destroying one closes its descriptor, which is the source's to close
 * (close()), and closing a descriptor twice can close another file that was given its number
 * meanwhile.
 */
async function* readChunks(fd: number, start: number | null, expected?: ExpectedEnd): AsyncGenerator<Uint8Array> {
  for (let at = start; ; ) {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const { bytesRead } = await readAsync(fd, chunk, 0, READ_CHUNK_BYTES, at);
    if (bytesRead === 0) {
      if (expected !== undefined && at !== null && at < expected.size) throw cutShort(fd, at, expected);
      return;
    }
    if (at !== null) at += bytesRead;
    yield bytesRead === READ_CHUNK_BYTES ? chunk : chunk.subarray(0, bytesRead);
  }
}

/** The file open as `fd` from `start`, in chunks of READ_CHUNK_BYTES, by blocking reads; an end before `expected.size` is an error (cutShort). */
async function* readBlocking(fd: number, start: number, expected: ExpectedEnd): AsyncGenerator<Uint8Array> {
  for (let at = start; ; ) {
    const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const n = readSync(fd, chunk, 0, READ_CHUNK_BYTES, at);
    if (n === 0) {
      if (at < expected.size) throw cutShort(fd, at, expected);
      return;
    }
    at += n;
    yield n === READ_CHUNK_BYTES ? chunk : chunk.subarray(0, n);
  }
}

/**
 * The offset of the first line that starts at or after `offset` in the file open as `fd` (its
 * size when none does): the start of a segment when a file is read in parallel.
 */
export function lineStartAtOrAfter(fd: number, offset: number): number {
  if (offset <= 0) return 0;
  const buffer = Buffer.alloc(1 << 16);
  for (let at = offset - 1; ; ) {
    const n = readSync(fd, buffer, 0, buffer.length, at);
    if (n === 0) return at;
    const nl = buffer.subarray(0, n).indexOf(10);
    if (nl >= 0) return at + nl + 1;
    at += n;
  }
}

/** The bytes of the file open as `fd` from `start`, up to `length` of them (fewer where the file ends sooner). */
function readRange(fd: number, start: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let n = 0;
  while (n < length) {
    const got = readSync(fd, bytes, n, length - n, start + n);
    if (got === 0) break;
    n += got;
  }
  return bytes.subarray(0, n);
}

/** The up to TAIL_CHECK_BYTES bytes of the file before `byteOffset` (fewer when the file is shorter). */
function readTail(fd: number, byteOffset: number): Buffer {
  const start = Math.max(0, byteOffset - TAIL_CHECK_BYTES);
  return readRange(fd, start, byteOffset - start);
}

/**
 * A resume offset must be the start of a line of the same file: the byte before it a newline,
 * and, when the position has it, the checksum of the bytes before it the one recorded.
 */
function checkResumePoint(fd: number, path: string, from: NdjsonPosition): void {
  const byteOffset = from.byteOffset;
  const size = fstatSync(fd).size;
  if (byteOffset > size) {
    throw new TapedeckError('E_RESUME_MISMATCH', `${path} is ${size} bytes, shorter than the ${byteOffset} bytes already recorded; is it the same file?`);
  }
  checkTail(path, from, readTail(fd, byteOffset), byteOffset === size);
}

/** The checks of a resume point on `tail`, the up to TAIL_CHECK_BYTES bytes before it; `atEnd`: nothing follows it. */
function checkTail(path: string, from: NdjsonPosition, tail: Buffer, atEnd: boolean): void {
  const byteOffset = from.byteOffset;
  // At the end of a file without a final newline the last byte is not a newline; that is
  // fine when nothing follows.
  if (tail[tail.length - 1] !== 10 && !atEnd) {
    throw new TapedeckError('E_RESUME_MISMATCH', `${path}: byte ${byteOffset} is not the start of a line; the file changed since it was recorded`);
  }
  if (from.tailCrc32 !== undefined && from.tailBytes !== undefined) {
    const checked = tail.subarray(tail.length - from.tailBytes);
    if (from.tailBytes > tail.length || crc32(checked) !== from.tailCrc32) {
      throw new TapedeckError(
        'E_RESUME_MISMATCH',
        `${path}: the ${from.tailBytes.toLocaleString('en-US')} bytes before byte ${byteOffset.toLocaleString('en-US')} (line ${(from.line + 1).toLocaleString('en-US')}, where the recording resumes) ` +
          `are not those recorded: this is not the file the tape was recorded from, or it changed since; record it into a new tape`,
      );
    }
  }
}
