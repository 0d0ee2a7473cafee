// The transport faults do what docs/simulate.md says, on any stream: what each may and may not
// change about order, offsets and timestamps.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyFaults, faultsArbitrary, firstDeliveries, interleave, toRecords, type SimRecord } from '../../simulator/faults.js';
import { propertyParams } from '../support/property.js';

const streamArb = fc
  .array(fc.record({ event: fc.nat({ max: 99 }), partition: fc.nat({ max: 3 }), key: fc.constant(null), gapUs: fc.nat({ max: 50 }) }), { minLength: 1, maxLength: 40 })
  .map((events) => toRecords(events));

const byPartition = (records: readonly SimRecord[]) => {
  const m = new Map<number, number[]>();
  for (const r of records) m.set(r.partition, [...(m.get(r.partition) ?? []), r.offset]);
  return m;
};

describe('faults', () => {
  it('toRecords numbers each partition from 0 and accumulates the gaps', () => {
    const r = toRecords([
      { event: 'a', partition: 1, key: null, gapUs: 5 },
      { event: 'b', partition: 0, key: 'k', gapUs: 0 },
      { event: 'c', partition: 1, key: null, gapUs: 7 },
    ]);
    expect(r.map((x) => [x.partition, x.offset, x.timestampUs - r[0].timestampUs])).toEqual([
      [1, 0, 0],
      [0, 0, 0],
      [1, 1, 7],
    ]);
  });

  it('interleave keeps every record and each partition\'s order, and can change the cross-partition order', () => {
    let changed = 0;
    fc.assert(
      fc.property(streamArb, fc.nat(), (records, seed) => {
        const out = interleave(records, seed);
        expect(out).toHaveLength(records.length);
        expect(byPartition(out)).toEqual(byPartition(records));
        if (out.some((r, i) => r !== records[i])) changed++;
      }),
      propertyParams('interleave keeps partition order', 200),
    );
    expect(changed).toBeGreaterThan(0);
  });

  it('re-deliveries and timestamp faults never reorder first deliveries within a partition, nor invent records', () => {
    fc.assert(
      fc.property(streamArb, faultsArbitrary(['dup', 'delay', 'skew', 'rebalance'], 6), (records, faults) => {
        const out = applyFaults(records, faults);
        const once = firstDeliveries(out);
        // Every delivered record is one of the stream's (same partition and offset).
        const known = new Set(records.map((r) => `${r.partition}:${r.offset}`));
        for (const r of out) expect(known.has(`${r.partition}:${r.offset}`)).toBe(true);
        // First deliveries come in offset order within each partition.
        for (const offsets of byPartition(once).values()) expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
        // Without drops, every record is delivered at least once.
        expect(once).toHaveLength(records.length);
      }),
      propertyParams('faults keep partition order', 200),
    );
  });

  it('each fault kind does its one thing', () => {
    const records = toRecords(
      [0, 1, 0, 1, 0, 1].map((partition, i) => ({ event: i, partition, key: null, gapUs: 10 })),
    );
    const events = (rs: readonly SimRecord[]) => rs.map((r) => r.event);
    expect(events(applyFaults(records, [{ kind: 'dup', at: 1, later: 2 }]))).toEqual([0, 1, 2, 3, 1, 4, 5]);
    expect(events(applyFaults(records, [{ kind: 'drop', at: 2 }]))).toEqual([0, 1, 3, 4, 5]);
    expect(events(applyFaults(records, [{ kind: 'reorder', mode: 'window', at: 0, span: 4, seed: 0 }]))).toEqual([2, 1, 0, 3, 4, 5]);
    // Rebalance at 4: partition #1 (of those seen before, [0, 1]) re-delivers its last 2 records.
    expect(events(applyFaults(records, [{ kind: 'rebalance', at: 4, partition: 1, back: 2 }]))).toEqual([0, 1, 2, 3, 1, 3, 4, 5]);
    const skewed = applyFaults(records, [{ kind: 'skew', partition: 1, byUs: -500 }]);
    expect(skewed.map((r, i) => r.timestampUs - records[i].timestampUs)).toEqual([0, -500, 0, -500, 0, -500]);
    const burst = applyFaults(records, [{ kind: 'delay', at: 1, byUs: 100, burst: 2 }]);
    expect(burst.map((r) => r.timestampUs - records[0].timestampUs)).toEqual([0, 110, 110, 110, 40, 50]);
    expect(firstDeliveries(applyFaults(records, [{ kind: 'dup', at: 1, later: 2 }]))).toEqual(records);
  });
});
