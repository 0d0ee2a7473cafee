// An engine for tests of reader threads stuck in the engine's code (test/e2e/stuck-thread.test.ts
// and the Kafka tests): the counter example engine with a JSON codec of its own, whose
// generate() hook loops for ever at event TAPEDECK_TEST_STUCK_AT, and whose codec loops for ever
// on an event of type "stuck", when TAPEDECK_TEST_STUCK is 1 (worker threads see the process's
// environment). Without it, the same engine records the same events.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { interrupt, REPO, tapedeck, type RunningTapedeck } from './cli.js';
import { committedEvents, waitForCommitted } from './kill.js';

/** The environment that makes the engine stick. */
export const STUCK_ENV = { TAPEDECK_TEST_STUCK: '1' } as const;

/** Write the engine module into `dir`; returns its path (for --engine). Its codec stores an event as JSON.stringify({ type, payload }). */
export function writeStuckEngine(dir: string): string {
  const path = join(dir, 'stuck-engine.mjs');
  writeFileSync(
    path,
    `import counter from ${JSON.stringify(join(REPO, 'examples', 'counter-engine.mjs'))};
const stuck = process.env.TAPEDECK_TEST_STUCK === '1';
const at = Number(process.env.TAPEDECK_TEST_STUCK_AT ?? -1);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
export default {
  ...counter,
  codec: {
    name: 'json-stuck-test',
    encode: (event) => encoder.encode(JSON.stringify(event)),
    decode: (bytes) => JSON.parse(decoder.decode(bytes)),
    toJSON: (event) => event,
    fromJSON: (json) => {
      if (stuck && json.type === 'stuck') for (;;) {}
      return { type: json.type, payload: json.payload };
    },
  },
  generate(random, index) {
    if (stuck && index === at) for (;;) {}
    return counter.generate(random, index);
  },
};
`,
  );
  return path;
}

/**
 * Write, into `dir`, the built-in world engine with a codec whose toJSON (rendering a value:
 * `replay --to-kafka`'s sender threads) loops for ever at its TAPEDECK_TEST_STUCK_AT-th call on
 * a thread when TAPEDECK_TEST_STUCK is 1; returns its path. Otherwise it is the world engine.
 */
export function writeStuckRenderEngine(dir: string): string {
  const path = join(dir, 'stuck-render-engine.mjs');
  writeFileSync(
    path,
    `import { worldEngine } from ${JSON.stringify(join(REPO, 'dist', 'index.js'))};
const stuck = process.env.TAPEDECK_TEST_STUCK === '1';
const at = Number(process.env.TAPEDECK_TEST_STUCK_AT ?? -1);
let calls = 0;
export default {
  ...worldEngine,
  codec: {
    ...worldEngine.codec,
    toJSON(event) {
      if (stuck && ++calls === at) for (;;) {}
      return worldEngine.codec.toJSON(event);
    },
  },
};
`,
  );
  return path;
}

/** Ctrl-C once `committed` events are in the tape; the exit, and how long it took after the signal. */
export async function interruptWhenStuck(run: RunningTapedeck, tape: string, committed: number): Promise<{ code: number | null; ms: number }> {
  await waitForCommitted(tape, committed);
  // The thread reaches the event it sticks on soon after; the stop comes while it is stuck.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return interrupt(run);
}

/**
 * What a recording interrupted while `thread` (a pattern) was stuck must have said and left:
 * exit 0 after `quietSeconds` of the thread's silence, the thread named in a warning and in the
 * summary, a sound tape of at least one and at most `atMost` events. Returns them.
 */
export function expectEndedStuck(run: RunningTapedeck, result: { code: number | null; ms: number }, tape: string, thread: string, quietSeconds: number, atMost: number): number {
  const stderr = run.stderr();
  expect(result.code, stderr).toBe(0);
  // Quiet for quietSeconds after the stop, then the thread is ended; room for a slow machine.
  expect(result.ms, stderr).toBeGreaterThanOrEqual(quietSeconds * 1000 - 1_000);
  expect(result.ms, stderr).toBeLessThan(quietSeconds * 1000 + 20_000);
  expect(stderr).toMatch(/tapedeck: stopping after SIGINT: a reader thread or the broker has not answered yet; SIGINT again quits at once \(the tape keeps its last commit\)/);
  expect(stderr).toMatch(new RegExp(`warning: ${thread} sent nothing for ${quietSeconds} s after the stop, so it was ended`));
  expect(run.stdout()).toMatch(new RegExp(`stopped by SIGINT, ending ${thread}, which did not answer: every event it handed over is committed; --resume reads the rest again`));
  const verify = tapedeck(['verify', tape]);
  expect(verify.status, verify.stdout + verify.stderr).toBe(0);
  const events = committedEvents(tape);
  expect(events).toBeGreaterThan(0);
  expect(events).toBeLessThanOrEqual(atMost);
  return events;
}
