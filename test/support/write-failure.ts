// What a recording that a failed write stopped must leave: an operating error, not a bug, from a
// process that ended by itself, naming the events the tape keeps; and a sound tape of them.

import { expect } from 'vitest';
import { tapedeck, type CliResult } from './cli.js';

/**
 * The events a recording stopped by a failed write says its tape keeps: it exited 2 by itself,
 * without a stack, with stderr matching `message`, whose first group is that count.
 */
export function keptAfterWriteFailure(r: CliResult, message: RegExp): number {
  expect(r.status, `the recorder did not end by itself: ${r.stderr}`).toBe(2);
  expect(r.stderr).not.toMatch(/internal error|SqliteError|    at /);
  const match = message.exec(r.stderr);
  expect(match, r.stderr).not.toBeNull();
  return Number(match![1].replaceAll(',', ''));
}

/** The tape verifies, and holds `events` events. */
export function expectSoundTapeOf(tape: string, events: number): void {
  expect(tapedeck(['verify', tape]).status).toBe(0);
  expect(tapedeck(['inspect', tape, '--json']).json<{ events: number }>().events).toBe(events);
}
