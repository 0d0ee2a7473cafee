// Latency budgets: a limit per percentile, in milliseconds. From a JSON file
//   { "p50": 1.6, "p95": 3.7, "p99": 8.2, "p99.9": 22 }
// (numbers are milliseconds; strings with a unit, "8.2ms", "500us", also work; keys p50, p95,
// p99, p99.9 or p999, max, mean) or from flags such as --p99 8.2ms.

import { readFileSync } from 'node:fs';
import { TapedeckError } from '../../engine/errors.js';
import type { LatencyPercentilesMs } from './model.js';
import { parseDurationUs, roundMs } from './units.js';

export const BUDGET_KEYS = ['p50', 'p95', 'p99', 'p999', 'max', 'mean'] as const;
export type BudgetKey = (typeof BUDGET_KEYS)[number];
export type Budget = Partial<Record<BudgetKey, number>>;

/** How a key is written for people: p999 -> p99.9. */
export function budgetLabel(key: BudgetKey): string {
  return key === 'p999' ? 'p99.9' : key;
}

function limitMs(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  if (typeof value === 'string') return parseDurationUs(value, where) / 1000;
  throw new TapedeckError('E_USAGE', `${where} must be a positive number of milliseconds or a duration such as "8.2ms", got ${JSON.stringify(value)}`);
}

export function parseBudget(json: unknown, where: string): Budget {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new TapedeckError('E_USAGE', `${where}: a budget is a JSON object such as {"p99": 8.2, "p99.9": 22} (milliseconds)`);
  }
  const budget: Budget = {};
  for (const [name, value] of Object.entries(json)) {
    const key = (name === 'p99.9' ? 'p999' : name) as BudgetKey;
    if (!BUDGET_KEYS.includes(key)) {
      throw new TapedeckError('E_USAGE', `${where}: unknown percentile "${name}"; use ${BUDGET_KEYS.map(budgetLabel).join(', ')}`);
    }
    budget[key] = limitMs(value, `${where}: "${name}"`);
  }
  if (Object.keys(budget).length === 0) throw new TapedeckError('E_USAGE', `${where}: the budget sets no limit`);
  return budget;
}

export function readBudgetFile(path: string): Budget {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TapedeckError('E_USAGE', code === 'ENOENT' ? `--budget ${path}: no such file` : `--budget ${path}: cannot read it: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TapedeckError('E_USAGE', `--budget ${path}: not JSON: ${(error as Error).message}`);
  }
  return parseBudget(json, `--budget ${path}`);
}

export interface BudgetCheck {
  readonly percentile: string;
  readonly limitMs: number;
  readonly actualMs: number;
  /** limit - actual: positive is room left, negative is by how much it was exceeded. */
  readonly marginMs: number;
  readonly ok: boolean;
}

export function checkBudget(latency: LatencyPercentilesMs, budget: Budget): BudgetCheck[] {
  const checks: BudgetCheck[] = [];
  for (const key of BUDGET_KEYS) {
    const limit = budget[key];
    if (limit === undefined) continue;
    const actual = latency[key];
    checks.push({ percentile: budgetLabel(key), limitMs: limit, actualMs: actual, marginMs: roundMs((limit - actual) * 1000), ok: actual <= limit });
  }
  return checks;
}

export function withinBudget(checks: readonly BudgetCheck[]): boolean {
  return checks.every((c) => c.ok);
}
