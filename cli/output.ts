// Output conventions: human summaries on stdout; with --json, one JSON object as the last
// line of stdout; progress bars on stderr, and only when stderr is a terminal.

import { writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import cliProgress from 'cli-progress';
import { formatDurationMs, type PacedPlan } from '../replayer/pacing.js';

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Write all of `text` to a file descriptor, synchronously. A pipe may be in non-blocking mode
 * (Node makes stdout non-blocking once process.stdout is touched), where writeSync can write
 * only part of the buffer or fail with EAGAIN: both are retried until every byte is out. A
 * reader that went away (EPIPE) ends the process quietly, as Unix tools do.
 */
export function writeAll(fd: number, text: string): void {
  writeAllBytes(fd, Buffer.from(text, 'utf8'));
}

/** writeAll for bytes. */
export function writeAllBytes(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      if (code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
      throw error;
    }
  }
}

/**
 * Output compressed as gzip: the bytes added are compressed on libuv's thread pool, a member
 * of GZIP_MEMBER_BYTES at a time (a file of members one after another, as gunzip, zcat and
 * `record` read it), while the caller goes on making the next; `write` gets the members in
 * order. At most GZIP_IN_FLIGHT members are being compressed at once.
 */
export class GzipOutput {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly compressing: Promise<Buffer>[] = [];

  constructor(private readonly write: (bytes: Uint8Array) => void) {}

  /** `bytes` may be reused by the caller once this returns: they are copied. */
  async add(bytes: Uint8Array): Promise<void> {
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= GZIP_MEMBER_BYTES) await this.startMember();
  }

  /** Compress and write what is left; resolves once everything is written. */
  async end(): Promise<void> {
    if (this.pendingBytes > 0) await this.startMember();
    while (this.compressing.length > 0) this.write(await this.compressing.shift()!);
  }

  private async startMember(): Promise<void> {
    const text = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const member = gzipAsync(text);
    // (Its failure is thrown where it is awaited, in order; not as an unhandled rejection meanwhile.)
    member.catch(() => undefined);
    this.compressing.push(member);
    while (this.compressing.length > GZIP_IN_FLIGHT) this.write(await this.compressing.shift()!);
  }
}

const GZIP_MEMBER_BYTES = 1 << 20;
const GZIP_IN_FLIGHT = 3;
const gzipAsync = promisify(gzip);

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/**
 * Control characters shown visibly: a string from a tape (a key, a topic, an invariant message
 * naming an event's field) can hold terminal escape sequences; printed raw, they could move
 * the cursor, rewrite earlier lines or retitle the window. ESC becomes "\x1b", and so on for
 * every C0 and C1 control and DEL, carriage return included (it would let a value overwrite its
 * own line); only tab and newline pass.
 */
export function visible(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** One line of human output on stdout; control characters in it are shown visibly (see visible()). */
export function line(text = ''): void {
  process.stdout.write(visible(text) + '\n');
}

/** Made on first use: making it loads the locale's data (about 25 ms), which `--version` or `--help` need not wait for. */
let numberFormat: Intl.NumberFormat | null = null;
export const fmt = (n: number): string => (numberFormat ??= new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })).format(n);
/** `n` and its noun, singular for 1: "1 block", "245 blocks". */
export const count = (n: number, noun: string, plural = `${noun}s`): string => `${fmt(n)} ${n === 1 ? noun : plural}`;
export const fmtSeconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export function fmtBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** A progress bar that shows nothing (stderr is not a terminal, or the output goes there). */
export const NO_PROGRESS: Progress = { update() {}, stop() {} };

export interface Progress {
  /** `done` of `total` (in the bar's unit); `events` so far, shown beside them when the unit is not events. */
  update(done: number, total: number, events?: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr when it is a TTY; otherwise nothing. Its unit is events, or the MiB
 * of an input file read (done and total given in bytes), with the events so far beside them;
 * 'open' is for input without a known end (stdin, a live topic): the events so far and the
 * time, without a bar.
 */
export function progress(label: string, unit: 'events' | 'bytes' | 'open' = 'events'): Progress {
  if (!process.stderr.isTTY) return NO_PROGRESS;
  const amount = unit === 'bytes' ? '{value}/{total} MiB read, {events} events' : '{value}/{total} events';
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: unit === 'open' ? `${label.padEnd(9)} {events} events | {duration_formatted}` : `${label.padEnd(9)} [{bar}] {percentage}% | ${amount} | {eta_formatted} left`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const scale = (n: number): number => (unit === 'events' ? n : Math.round((n / (1 << 20)) * 10) / 10);
  let started = false;
  return {
    update(done, total, events = done) {
      const payload = { events: events.toLocaleString('en-US') };
      if (!started) {
        bar.start(scale(total), 0, payload);
        started = true;
      }
      bar.setTotal(scale(total));
      bar.update(scale(done), payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/**
 * The note for a tape that another process had open while it was finished (RecordResult's
 * inWalMode), on stderr: it stays in WAL mode, complete and sound, with its -wal file beside it.
 */
export function noteWalMode(result: { readonly path: string; readonly inWalMode: boolean }): void {
  if (!result.inWalMode) return;
  process.stderr.write(
    `tapedeck: note: another process had ${result.path} open while the recording finished, so the tape stays in WAL mode, with ${result.path}-wal beside it; ` +
      'it is complete and sound, and tapedeck reads it as it is (keep the two files together; the next writer to close it, such as a --resume, folds the WAL in)\n',
  );
}

/**
 * The note, on stderr, that a paced replay (--speed K) will take a while: the first events
 * would otherwise come out with nothing said (the replay sleeps to follow the recorded pace).
 */
export function notePaced(plan: PacedPlan): void {
  if (plan.pacedMs < PACED_NOTE_MS) return;
  process.stderr.write(
    `tapedeck: note: at ${plan.speed} times the recorded pace, the ${formatDurationMs(plan.recordedUs / 1000)} of recorded time take about ${formatDurationMs(plan.pacedMs)} to replay (--speed max does not wait)\n`,
  );
}

/** Paced replays shorter than this go without a note. */
const PACED_NOTE_MS = 10_000;
