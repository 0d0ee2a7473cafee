// Headless Chromium for the HTML report tests: Debian's chromium package, driven by
// playwright-core (which downloads no browser). .ci/run installs it; in CI a missing browser
// fails the tests, locally they skip with a message that says how to install it.

import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.TAPEDECK_CHROMIUM ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? null;

/** Headless and quiet: no background connections (this machine's network is closed), no sandbox (root in CI). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function chromiumAvailable(): boolean {
  if (CHROMIUM !== null) return true;
  if (process.env.CI) throw new Error('headless Chromium is required in CI (apt-get install chromium, or set TAPEDECK_CHROMIUM)');
  console.warn('SKIPPING the HTML report tests: no Chromium found (apt-get install chromium, or set TAPEDECK_CHROMIUM=/path/to/chrome)');
  return false;
}
