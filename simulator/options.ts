// What the CLI needs to define `simulate`'s options, in a module that does not load fast-check:
// the CLI loads the simulator (simulate.ts, fast-check) only when `simulate` runs, which keeps
// every other command's start quick.

/** Transport faults a simulated stream can suffer (faults.ts). */
export const FAULT_KINDS = ['dup', 'drop', 'reorder', 'delay', 'skew', 'rebalance'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Properties `simulate` checks (properties.ts). */
export const PROPERTY_NAMES = ['determinism', 'snapshot', 'invariants', 'idempotence', 'convergence', 'transient-events', 'latency'] as const;
export type PropertyName = (typeof PROPERTY_NAMES)[number];

export const DEFAULT_RUNS = 500;
export const DEFAULT_MAX_EVENTS = 60;
export const DEFAULT_MAX_FAULTS = 4;
