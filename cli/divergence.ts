// Printing a divergence for humans: the event, the two digests, and where the states differ.

import type { Divergence } from '../replayer/bisect.js';
import { line } from './output.js';

export function printDivergence(d: Divergence, expectedName: string, actualName: string): void {
  if (d.event === null) {
    line(`  DIVERGED  already at the snapshot before event ${d.seq + 1}: ${expectedName} ${d.expectedDigest}, ${actualName} ${d.actualDigest}`);
  } else {
    line(`  DIVERGED  first at event ${d.seq} (partition ${d.partition}, timestamp ${d.timestampUs} us): ${JSON.stringify(d.event)}`);
    line(`            digest after it: ${expectedName} ${d.expectedDigest}, ${actualName} ${d.actualDigest}`);
  }
  if (d.differences.length === 0) {
    line('            (the engines have no view(), so the state difference cannot be shown)');
    return;
  }
  line(`            state differences (${d.differencesTotal}; ${expectedName} -> ${actualName}):`);
  for (const x of d.differences) line(`              ${x.path}: ${JSON.stringify(x.expected)} -> ${JSON.stringify(x.actual)}`);
  if (d.differencesTotal > d.differences.length) line(`              ... and ${d.differencesTotal - d.differences.length} more`);
}
