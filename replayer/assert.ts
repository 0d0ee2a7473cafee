// The thin throwing wrapper over replayTape, for users' own test suites:
//
//   import { assertReplay } from 'tapedeck';
//   test('the new build replays production incident 4711', () => {
//     assertReplay('fixtures/incident-4711.tape', { engine: myEngine });
//   });
//
// It returns the ReplayResult when every check held and otherwise throws a
// ReplayAssertionError whose message is the report a person needs.

import { TapedeckError } from '../engine/errors.js';
import { replayTape, type ReplayOptions, type ReplayResult } from './replay.js';

export class ReplayAssertionError extends TapedeckError {
  readonly result: ReplayResult;
  constructor(result: ReplayResult) {
    super('E_REPLAY_FAILED', describeFailure(result));
    this.name = 'ReplayAssertionError';
    this.result = result;
  }
}

export function describeFailure(r: ReplayResult): string {
  const lines = [`replay of ${r.tape} through ${r.engine.name} ${r.engine.version} failed (recorded with ${r.recordedWith.name} ${r.recordedWith.version}):`];
  if (r.determinismViolation !== null) {
    const v = r.determinismViolation;
    lines.push(`  engine code called ${v.api} while applying event ${v.seq} ${JSON.stringify(v.event)}`);
  }
  for (const m of r.mismatchList.slice(0, 5)) lines.push(`  checkpoint after event ${m.nextSeq - 1}: recorded ${m.expected}, replayed ${m.actual}`);
  if (r.mismatches > 5) lines.push(`  ... ${r.mismatches - 5} more mismatching checkpoints`);
  const d = r.divergence;
  if (d !== null) {
    lines.push(`  first divergent event: ${d.seq} ${JSON.stringify(d.event)}`);
    for (const x of d.differences.slice(0, 10)) lines.push(`    ${x.path}: ${JSON.stringify(x.expected)} -> ${JSON.stringify(x.actual)}`);
  } else if (r.divergenceNote !== null) {
    lines.push(`  ${r.divergenceNote}`);
  }
  for (const v of r.invariantViolationList.slice(0, 3)) {
    for (const x of v.violations.slice(0, 3)) lines.push(`  invariant after event ${v.nextSeq - 1}: ${x.code}: ${x.message}`);
  }
  return lines.join('\n');
}

/** Replay and throw a ReplayAssertionError unless every check held. */
export function assertReplay(path: string, options: ReplayOptions = {}): ReplayResult {
  const result = replayTape(path, options);
  if (!result.ok) throw new ReplayAssertionError(result);
  return result;
}
