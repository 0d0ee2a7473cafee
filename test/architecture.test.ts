// The structure docs/architecture.md promises: engine/ is pure, and dependencies point one way
// (cli -> simulator -> recorder, replayer -> tape -> engine).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './support/cli.js';

function sources(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) out.push(path);
    }
  };
  walk(join(REPO, folder));
  return out;
}

function imports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\s(?:[^;']*?from\s+)?'([^']+)'/gms)].map((m) => m[1]);
}

/** Strip comments so that prose mentioning Date or Math.random does not count. */
function code(file: string): string {
  return readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

const ALLOWED: Record<string, string[]> = {
  engine: ['engine'],
  tape: ['engine', 'tape'],
  recorder: ['engine', 'tape', 'recorder'],
  replayer: ['engine', 'tape', 'replayer'],
  simulator: ['engine', 'tape', 'recorder', 'replayer', 'simulator'],
};

describe('architecture', () => {
  it('engine/ is pure: no node: modules, no wall clock, no ambient randomness, no timers', () => {
    const files = sources('engine');
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const where = relative(REPO, file);
      for (const spec of imports(file)) {
        expect(spec.startsWith('.') || spec.startsWith('pure-rand/'), `${where} imports ${spec}`).toBe(true);
      }
      const text = code(file);
      for (const banned of [/\bDate\b/, /Math\.random/, /\bperformance\b/, /\bset(Timeout|Interval|Immediate)\b/, /\bprocess\./, /\brequire\(/]) {
        expect(banned.test(text), `${where} uses ${banned}`).toBe(false);
      }
    }
  });

  it('dependencies point one way: cli -> recorder, replayer -> tape -> engine', () => {
    for (const [folder, allowed] of Object.entries(ALLOWED)) {
      for (const file of sources(folder)) {
        for (const spec of imports(file)) {
          if (!spec.startsWith('.')) continue;
          const target = relative(REPO, join(file, '..', spec)).split(/[\\/]/)[0];
          expect(allowed, `${relative(REPO, file)} imports ${spec} (${target}/)`).toContain(target);
        }
      }
    }
  });

  it('the CLI loads kafkajs, fast-check and the HDR histograms only for the commands that use them', () => {
    // Static value imports reachable from the CLI's entry (cli/main.ts, and cli/early.ts, which
    // bin/tapedeck.js loads first) and from each command's module, which main.ts loads when the
    // command runs; type-only imports load nothing.
    const heavy = ['kafkajs', 'fast-check', 'hdr-histogram-js'];
    const roots = [join(REPO, 'cli', 'main.ts'), join(REPO, 'cli', 'early.ts'), ...sources('cli/commands')];
    expect(roots.length).toBeGreaterThan(12);
    const seen = new Map<string, string | null>(roots.map((root) => [root, null]));
    const queue = [...roots];
    const chain = (file: string): string => {
      const out: string[] = [];
      for (let f: string | null = file; f !== null; f = seen.get(f) ?? null) out.unshift(relative(REPO, f));
      return out.join(' -> ');
    };
    while (queue.length > 0) {
      const file = queue.shift()!;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^\s*(import|export)\s+(type\s)?(?:[^;']*?from\s+)?'([^']+)'/gms)) {
        if (m[2] !== undefined) continue;
        const spec = m[3];
        if (spec.startsWith('.')) {
          const target = join(file, '..', spec).replace(/\.js$/, '.ts');
          if (!seen.has(target)) {
            seen.set(target, file);
            queue.push(target);
          }
        } else {
          expect(heavy.some((h) => spec === h || spec.startsWith(`${h}/`)), `${chain(file)} imports ${spec} when the CLI starts`).toBe(false);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(40);
  });
});
