// Structural difference of two JSON values (engine state views): the paths where they differ,
// with the value on each side, so that a report can say which part of the state went wrong.

export interface Difference {
  /** Dotted path into the view, e.g. "players.12.health". */
  readonly path: string;
  readonly expected: unknown;
  readonly actual: unknown;
}

/** Past this many, differences are counted but not listed. */
export const MAX_DIFFERENCES = 25;

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}

/** Differences between `expected` and `actual`, at most `limit` of them, and their total count. */
export function diffValues(expected: unknown, actual: unknown, limit = MAX_DIFFERENCES): { differences: Difference[]; total: number } {
  const differences: Difference[] = [];
  let total = 0;
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (isObject(a) && isObject(b) && Array.isArray(a) === Array.isArray(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const key of [...keys].sort()) walk(a[key], b[key], path === '' ? key : `${path}.${key}`);
      return;
    }
    if (Object.is(a, b)) return;
    total++;
    if (differences.length < limit) differences.push({ path: path === '' ? '(root)' : path, expected: a, actual: b });
  };
  walk(expected, actual, '');
  return { differences, total };
}
