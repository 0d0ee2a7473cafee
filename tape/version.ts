// The running tapedeck's version, from its package.json (found by walking up from this file,
// which works both from the sources and from dist/).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

export function tapedeckVersion(): string {
  if (cached !== null) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tapedeck' && typeof pkg.version === 'string') return (cached = pkg.version);
    }
    dir = dirname(dir);
  }
  return (cached = '0.0.0-unknown');
}
