// Peak RSS while recording a long synthetic stream, measured in a child process of its own so
// that the bench's other data does not count. The child samples its RSS every 100 ms.

import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RssReport {
  readonly events: number;
  readonly elapsedMs: number;
  readonly peakRssMb: number;
  /** RSS at 10%, 25%, 50%, 75% and 100% of the run, to show it stays flat. */
  readonly rssMbAtQuarters: number[];
}

export function measureRecordingRss(events: number, dir: string): Promise<RssReport> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./rss-child.js', import.meta.url)), [String(events), join(dir, 'rss.tape')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m) => resolve(m as RssReport));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`rss child exited with ${code}`));
    });
  });
}
