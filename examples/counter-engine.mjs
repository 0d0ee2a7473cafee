// A minimal tapedeck engine, to copy and adapt. It counts events per type and sums their
// amounts. Load it with `--engine ./examples/counter-engine.mjs`.
//
// Rules an engine must keep (they are what makes replay deterministic):
// - apply() uses only the state, the event and ctx: no Date, no Math.random, no I/O.
//   Time is ctx.nowUs (virtual, microseconds); randomness is ctx.random.
// - digest() is equal for equal states, whatever order they were built in: here the
//   counts are listed in sorted key order.

export default {
  name: 'counter',
  version: '1.0.0',

  // No `codec`: events are JSON ({ type, payload }) and tapedeck stores them as JSON text.

  init(options) {
    return { counts: {}, total: 0 };
  },

  apply(state, event, ctx) {
    state.counts[event.type] = (state.counts[event.type] ?? 0) + 1;
    state.total += event.payload.amount;
    return state;
  },

  digest(state) {
    const counts = Object.keys(state.counts)
      .sort()
      .map((type) => `${type}=${state.counts[type]}`)
      .join(',');
    return `${state.total};${counts}`;
  },

  snapshot(state) {
    return new TextEncoder().encode(JSON.stringify(state));
  },

  restore(bytes) {
    return JSON.parse(new TextDecoder().decode(bytes));
  },

  checkInvariants(state) {
    return state.total < 0 ? [{ code: 'negative-total', message: `total is ${state.total}, below 0` }] : [];
  },

  // Optional: a JSON view of the state, used to show differences.
  view(state) {
    return state;
  },

  // Optional: synthetic traffic for `tapedeck demo --engine` and `record --source synthetic`.
  generate(random, index) {
    const type = ['deposit', 'withdraw', 'audit'][random.int(0, 2)];
    return { event: { type, payload: { amount: random.int(1, 100) } }, partition: index % 4, key: `account-${index % 16}` };
  },
};
