// Errors about tapes: missing, not a tape, from a newer format, or damaged. All are input
// errors (exit 2) and name the file and, where there is one, the block and its sequence range.

import { TapedeckError } from '../engine/errors.js';

export class TapeError extends TapedeckError {
  readonly path: string;
  constructor(code: string, path: string, message: string, options?: { cause?: unknown }) {
    super(code, `${path}: ${message}`, options);
    this.name = 'TapeError';
    this.path = path;
  }
}

/**
 * A write to a tape failed (the disk is full, an I/O error, another process holding the file).
 * What was committed before it stays, sound; `reason` is the message without the path.
 */
export class TapeWriteError extends TapeError {
  readonly reason: string;
  /** Events the tape holds after the failure (its last commit's), when the writer's user knows. */
  readonly committedEvents: number | null;
  /** Another process wrote to the tape meanwhile: what it holds is that process's doing. */
  readonly conflict: boolean;
  constructor(path: string, reason: string, options?: { cause?: unknown; committedEvents?: number; conflict?: boolean }) {
    super('E_TAPE_WRITE', path, reason, options);
    this.name = 'TapeWriteError';
    this.reason = reason;
    this.committedEvents = options?.committedEvents ?? null;
    this.conflict = options?.conflict ?? false;
  }
}

/** Stored data failed its checksum or structure check: nothing from it may be replayed. */
export class TapeCorruptError extends TapeError {
  readonly blockNo: number | null;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  constructor(path: string, message: string, where: { blockNo?: number; firstSeq?: number; eventCount?: number } = {}, options?: { cause?: unknown }) {
    const range =
      where.blockNo === undefined
        ? ''
        : ` in block ${where.blockNo}` +
          (where.firstSeq === undefined
            ? ''
            : where.eventCount === undefined
              ? ` (from event ${where.firstSeq})`
              : ` (events ${where.firstSeq}..${where.firstSeq + where.eventCount - 1})`);
    super('E_TAPE_CORRUPT', path, `tape is damaged${range}: ${message}. Run \`tapedeck verify ${path}\` for a full report.`, options);
    this.name = 'TapeCorruptError';
    this.blockNo = where.blockNo ?? null;
    this.firstSeq = where.firstSeq ?? null;
    this.lastSeq = where.firstSeq === undefined || where.eventCount === undefined ? null : where.firstSeq + where.eventCount - 1;
  }
}
