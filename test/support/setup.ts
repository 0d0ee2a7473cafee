// Run before every test file (vitest.config.ts setupFiles): the temporary folders a test file
// made with tempDir() are removed when it ends, so that test tapes do not pile up in /tmp.

import { afterAll } from 'vitest';
import { removeTempDirs } from './cli.js';

afterAll(() => {
  removeTempDirs();
});
