// Headless Chromium for the HTML report tests: Debian's chromium package, driven by
// playwright-core (which downloads no browser). .ci/run installs it; in CI a missing browser
// fails the tests, locally they skip with a message that says how to install it.

import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.TAPEDECK_CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? null;

export function chromiumAvailable(): boolean {
  if (CHROMIUM !== null) return true;
  if (process.env.CI) throw new Error('headless Chromium is required in CI (apt-get install chromium, or set TAPEDECK_CHROMIUM)');
  console.warn('SKIPPING the HTML report tests: no Chromium found (apt-get install chromium, or set TAPEDECK_CHROMIUM=/path/to/chrome)');
  return false;
}
