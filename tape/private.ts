// Files tapedeck creates hold production data (tapes, exports, reports): they are made readable
// and writable by their owner only (0600), whatever the umask. A mode given to open() only
// applies when the file is created and is then narrowed by the umask, so each helper also sets
// the mode explicitly on the open descriptor.

import { closeSync, fchmodSync, openSync, statSync, writeSync } from 'node:fs';

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

/** Write `text` to `path` (created or replaced), owner-only. */
export function writePrivateFile(path: string, text: string): void {
  const fd = openPrivate(path);
  try {
    const bytes = Buffer.from(text, 'utf8');
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
  } finally {
    closeSync(fd);
  }
}

/** True when the file can be read or written by anyone but its owner. */
export function readableByOthers(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}
