// Exit codes, as DESIGN.md fixes them.
export const EXIT = {
  /** Every check held. */
  ok: 0,
  /** A check failed: digest mismatch, invariant violated, budget exceeded, property falsified. */
  checkFailed: 1,
  /** Usage or input error: bad arguments, unreadable or corrupt tape, malformed input. */
  usage: 2,
} as const;
