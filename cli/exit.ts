// Exit codes, as DESIGN.md fixes them.
export const EXIT = {
  /** Every check held. */
  ok: 0,
  /** A check failed: digest mismatch, invariant violated, budget exceeded, property falsified. */
  checkFailed: 1,
  /** Usage or input error: bad arguments, unreadable or corrupt tape, malformed input. */
  usage: 2,
} as const;

/** How long a stop may take before the command says that it is still stopping. */
export const SLOW_STOP_NOTICE_MS = 2_000;

/**
 * SIGINT and SIGTERM abort the returned signal (a clean stop: what was read is committed),
 * and `name` says which arrived. `release()` removes the handlers. The handlers go after the
 * first signal, so a second one ends the process at once; when the stop takes longer than
 * SLOW_STOP_NOTICE_MS, `slowStopNotice` (given the signal's name) says what it waits for, and
 * the command prints it with that advice.
 */
export function stopOnSignals(slowStopNotice?: (signal: string) => string): { readonly signal: AbortSignal; name(): string | null; release(): void } {
  const controller = new AbortController();
  let received: string | null = null;
  let slowStop: NodeJS.Timeout | null = null;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const handler = (): void => {
      received = sig;
      controller.abort();
      if (slowStopNotice !== undefined) {
        slowStop = setTimeout(() => process.stderr.write(`tapedeck: stopping after ${sig}: ${slowStopNotice(sig)}\n`), SLOW_STOP_NOTICE_MS);
        slowStop.unref();
      }
    };
    process.once(sig, handler);
    return [sig, handler] as const;
  });
  return {
    signal: controller.signal,
    name: () => received,
    release: () => {
      for (const [sig, handler] of handlers) process.removeListener(sig, handler);
      if (slowStop !== null) clearTimeout(slowStop);
    },
  };
}
