// Files tapedeck creates hold production data (tapes, exports, reports): they are made readable
// and writable by their owner only (0600), whatever the umask. A mode given to open() only
// applies when the file is created and is then narrowed by the umask, so each helper also sets
// the mode explicitly on the open descriptor.

import { closeSync, constants as fsConstants, fchmodSync, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { TapedeckError } from '../engine/errors.js';

export const PRIVATE_MODE = 0o600;

/** Open (create or truncate) `path` for writing, owner-only; returns the descriptor. */
export function openPrivate(path: string): number {
  const fd = openSync(path, 'w', PRIVATE_MODE);
  try {
    fchmodSync(fd, PRIVATE_MODE);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/**
 * Sync the folder that holds `path` to disk, after a file was renamed into it: the file's own
 * sync puts its bytes on disk, not the folder's entry naming it, which a power loss could then
 * take back (the name would be the old file's again, or nothing). A folder this process may
 * not open (it may write it without reading it) and a file system that cannot sync folders
 * are left as they are: the rename stands, synced by the file system's next commit. An I/O
 * error is thrown.
 */
export function syncFolderOf(path: string): void {
  let fd: number;
  try {
    fd = openSync(dirname(path), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
  } finally {
    closeSync(fd);
  }
}

/** What the system's errors when writing a file mean, in words. */
const WRITE_FAILURES: Readonly<Record<string, string>> = {
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is used up',
  EFBIG: 'the file would be larger than allowed',
  EIO: 'the disk reported an I/O error',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOENT: 'its folder does not exist',
  ENOTDIR: 'a part of its path is not a folder',
  EISDIR: 'it is a folder',
};

/**
 * A system error from writing `path` (`what`: "write", "create") as an operating error (exit
 * 2) that names the file and says what went wrong; any other error is returned as it is.
 */
export function fileWriteError(what: string, path: string, error: unknown): unknown {
  const why = whyWriteFailed(error);
  return why === null ? error : new TapedeckError('E_FILE_WRITE', `cannot ${what} ${path}: ${why}`, { cause: error });
}

/** A system error from writing a file, in words with its code ("the disk is full (ENOSPC)"); null for any other error. */
export function whyWriteFailed(error: unknown): string | null {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.code !== 'string' || typeof e.syscall !== 'string') return null;
  return `${WRITE_FAILURES[e.code] ?? e.message} (${e.code})`;
}

/** Write `text` to `path` (created or replaced), owner-only; a failure is an E_FILE_WRITE error naming it. */
export function writePrivateFile(path: string, text: string): void {
  let fd: number;
  try {
    fd = openPrivate(path);
  } catch (error) {
    throw fileWriteError('create', path, error);
  }
  try {
    const bytes = Buffer.from(text, 'utf8');
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
  } catch (error) {
    throw fileWriteError('write', path, error);
  } finally {
    closeSync(fd);
  }
}

/**
 * True when `a` and `b` name one existing file: the same name, another spelling of it
 * (`./a.tape`), a symbolic or a hard link. False when either does not exist or cannot be
 * looked at (the command's own open then says why).
 */
export function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a, { throwIfNoEntry: false });
    const y = statSync(b, { throwIfNoEntry: false });
    return x !== undefined && y !== undefined && x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** True when the file can be read or written by anyone but its owner. */
export function readableByOthers(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}
