// Errors about tapes: missing, not a tape, from a newer format, or damaged. All are input
// errors (exit 2) and name the file and, where there is one, the block and its sequence range.

import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { TapedeckError } from '../engine/errors.js';

export class TapeError extends TapedeckError {
  readonly path: string;
  constructor(code: string, path: string, message: string, options?: { cause?: unknown }) {
    super(code, `${path}: ${message}`, options);
    this.name = 'TapeError';
    this.path = path;
  }
}

/** A "permission denied" from the file system, for a message: EACCES or EPERM. */
function denied(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

const FOLDER_DENIED = 'permission denied: this user may not enter a folder on its path';

/**
 * The file at `path` (undefined: there is none), or a TapeError with `code` when this user may
 * not reach it (a folder on the way it may not enter), where Node's stat says only "EACCES".
 */
export function statTapePath(path: string, code: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if (denied(error)) throw new TapeError(code, path, FOLDER_DENIED, { cause: error });
    throw error;
  }
}

/**
 * Why this user may not read the file at `path`, when that is the reason (SQLite and Node say
 * only "unable to open database file" or "EACCES"): a folder on its path it may not enter, or
 * the file's mode and owner; else null.
 */
export function unreadableWhy(path: string): string | null {
  try {
    accessSync(path, constants.R_OK);
    return null;
  } catch (error) {
    if (!denied(error)) return null;
    let file: Stats | undefined;
    try {
      file = statSync(path, { throwIfNoEntry: false });
    } catch (statError) {
      if (denied(statError)) return FOLDER_DENIED;
      throw statError;
    }
    const mode = file === undefined ? '' : ` (mode ${(file.mode & 0o777).toString(8).padStart(4, '0')}, owner uid ${file.uid})`;
    return `permission denied: this user may not read the file${mode}`;
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
  /** Another process wrote to the tape meanwhile, or moved, deleted or replaced its file: what the path holds is not this writer's doing. */
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
