// fast-check parameters for tapedeck's property tests. Every run prints its seed with a
// ready-to-run command; TAPEDECK_SEED fixes the seed (CI may set it; a failure prints it).

import fc from 'fast-check';

export function propertyParams(name: string, numRuns = 100): fc.Parameters<unknown> {
  const fromEnv = process.env.TAPEDECK_SEED;
  const seed = fromEnv !== undefined ? Number(fromEnv) : (Math.random() * 0x7fffffff) | 0;
  console.log(`[property] ${name}: seed ${seed} (rerun: TAPEDECK_SEED=${seed} npx vitest run -t "${name}")`);
  return { seed, numRuns };
}
