import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RunContext } from '../../../engine/context.js';
import { join, spawn, loot } from '../../../engine/world/events.js';
import { worldEngine } from '../../../engine/world/index.js';
import { restoreWorld, snapshotWorld } from '../../../engine/world/snapshot.js';
import { propertyParams } from '../../support/property.js';
import { runWorld, SMALL_WORLD, worldEventArb, worldStreamArb } from '../../support/world.js';

describe('world digest, snapshot and restore', () => {
  it('snapshot, restore and continue reaches the same digest as a straight run', () => {
    fc.assert(
      fc.property(worldStreamArb(), fc.nat(), (stream, cut) => {
        const split = stream.length === 0 ? 0 : cut % (stream.length + 1);
        const straight = runWorld(stream).state;
        const first = runWorld(stream, { to: split });
        const restored = worldEngine.restore(worldEngine.snapshot(first.state));
        expect(restored.digest()).toBe(first.state.digest());
        expect(worldEngine.view!(restored)).toEqual(worldEngine.view!(first.state));
        // A replay resumes with the virtual clock at the snapshot's now.
        const ctx = new RunContext(1, { startUs: first.ctx.nowUs });
        const continued = runWorld(stream, { state: restored, from: split, ctx }).state;
        expect(continued.digest()).toBe(straight.digest());
        expect(worldEngine.view!(continued)).toEqual(worldEngine.view!(straight));
      }),
      propertyParams('snapshot restore continue', 300),
    );
  });

  it('a single changed event changes the digest exactly when it changes the state', () => {
    let differed = 0;
    let same = 0;
    fc.assert(
      fc.property(worldStreamArb(), fc.nat(), worldEventArb, (stream, at, replacement) => {
        fc.pre(stream.length > 0);
        const i = at % stream.length;
        const changed = stream.map((e, j) => (j === i ? { ...e, event: replacement } : e));
        const a = runWorld(stream).state;
        const b = runWorld(changed).state;
        const structurallyEqual = JSON.stringify(worldEngine.view!(a)) === JSON.stringify(worldEngine.view!(b));
        if (structurallyEqual) same++;
        else differed++;
        expect(a.digest() === b.digest()).toBe(structurallyEqual);
      }),
      propertyParams('single changed event digest', 500),
    );
    // Both sides of the equivalence were exercised.
    expect(differed).toBeGreaterThan(0);
    expect(same).toBeGreaterThan(0);
  });

  it('does not depend on the order entities were created in', () => {
    const ctx = new RunContext(1);
    const a = worldEngine.init(SMALL_WORLD);
    const b = worldEngine.init(SMALL_WORLD);
    const forward = [join(1, 0, 1, 1), join(2, 1, 2, 2), spawn(3, 0, 4, 4, 9), spawn(4, 1, 5, 5, 9)];
    for (const [i, e] of forward.entries()) worldEngine.apply(a, e, ctx.prepare(i, 10, 0));
    for (const [i, e] of [...forward].reverse().entries()) worldEngine.apply(b, e, ctx.prepare(i, 10, 0));
    expect(b.digest()).toBe(a.digest());
    worldEngine.apply(a, loot(1, 3), ctx.prepare(9, 10, 0));
    expect(b.digest()).not.toBe(a.digest());
  });

  it('matches a from-scratch recomputation after every event (the incremental sums never drift)', () => {
    fc.assert(
      fc.property(worldStreamArb(80), (stream) => {
        const ctx = new RunContext(5);
        let state = worldEngine.init(SMALL_WORLD);
        stream.forEach(({ event }, i) => {
          state = worldEngine.apply(state, event, ctx.prepare(i, 1000 * i, 0));
          expect(restoreWorld(snapshotWorld(state)).digest()).toBe(state.digest());
        });
      }),
      propertyParams('incremental digest equals recomputed', 100),
    );
  });

  it('matches a from-scratch recomputation when digests are taken only now and then (entities changed many times between two)', () => {
    fc.assert(
      fc.property(worldStreamArb(120), fc.integer({ min: 2, max: 40 }), (stream, every) => {
        const ctx = new RunContext(5);
        let state = worldEngine.init(SMALL_WORLD);
        stream.forEach(({ event }, i) => {
          state = worldEngine.apply(state, event, ctx.prepare(i, 1000 * i, 0));
          if ((i + 1) % every === 0 || i === stream.length - 1) {
            expect(restoreWorld(snapshotWorld(state)).digest()).toBe(state.digest());
          }
        });
      }),
      propertyParams('deferred re-hash equals recomputed', 100),
    );
  });

  it('holds every invariant after every event of random streams', () => {
    fc.assert(
      fc.property(worldStreamArb(), (stream) => {
        const ctx = new RunContext(2);
        let state = worldEngine.init(SMALL_WORLD);
        stream.forEach(({ event }, i) => {
          state = worldEngine.apply(state, event, ctx.prepare(i, 1000 * i, 0));
          expect(worldEngine.checkInvariants(state)).toEqual([]);
        });
      }),
      propertyParams('world invariants hold', 200),
    );
  });
});
