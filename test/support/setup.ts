// Run before every test file (vitest.config.ts setupFiles): the temporary folders a test file
// made with tempDir() are removed when it ends, so that test tapes do not pile up in /tmp; and
// a binary a test started in the background and left running (it failed before stopping it)
// is killed after that test.

import { afterAll, afterEach } from 'vitest';
import { killLeftovers, removeTempDirs } from './cli.js';

afterEach(async () => {
  await killLeftovers();
});

afterAll(() => {
  removeTempDirs();
});
