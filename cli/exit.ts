// Exit codes, as DESIGN.md fixes them.
export const EXIT = {
  /** Every check held. */
  ok: 0,
  /** A check failed: digest mismatch, invariant violated, budget exceeded, property falsified. */
  checkFailed: 1,
  /** Usage or input error: bad arguments, unreadable or corrupt tape, malformed input. */
  usage: 2,
} as const;

/**
 * SIGINT and SIGTERM abort the returned signal (a clean stop: what was read is committed),
 * and `name` says which arrived. `release()` removes the handlers.
 */
export function stopOnSignals(): { readonly signal: AbortSignal; name(): string | null; release(): void } {
  const controller = new AbortController();
  let received: string | null = null;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const handler = (): void => {
      received = sig;
      controller.abort();
    };
    process.once(sig, handler);
    return [sig, handler] as const;
  });
  return {
    signal: controller.signal,
    name: () => received,
    release: () => {
      for (const [sig, handler] of handlers) process.removeListener(sig, handler);
    },
  };
}
