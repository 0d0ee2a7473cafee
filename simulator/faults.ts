// Simulated streams and the transport faults applied to them. A stream is a list of records in
// delivery order, each with its partition and its offset in that partition (what a Kafka
// re-delivery repeats). Faults are values drawn by fast-check (so they shrink with the stream)
// and applied in order; each is deterministic given its fields:
//
//   dup        a record delivered again, `later` records after the original (same partition, same offset)
//   drop       a record lost
//   reorder    interleave: a segment's partitions re-interleaved at random (each partition's own order kept);
//              window:     a record swapped with the next record of its partition within `span` (bounded
//                          reordering within a partition, which Kafka does not do but retries across
//                          producers can)
//   delay      a record's timestamp moved later by `byUs`; with `burst` > 0 the next `burst` records take
//              that timestamp too (a batch delivered at once)
//   skew       every timestamp of one partition shifted by `byUs` (positive or negative): its producer's clock is off
//   rebalance  at a point, the last `back` records of one partition delivered again (a consumer that took the
//              partition over resumed from an older committed offset)

import fc from 'fast-check';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { SimulatedEvent } from '../engine/types.js';

import { FAULT_KINDS, type FaultKind } from './options.js';

export { FAULT_KINDS, type FaultKind };

export type Fault =
  | { readonly kind: 'dup'; readonly at: number; readonly later: number }
  | { readonly kind: 'drop'; readonly at: number }
  | { readonly kind: 'reorder'; readonly mode: 'interleave' | 'window'; readonly at: number; readonly span: number; readonly seed: number }
  | { readonly kind: 'delay'; readonly at: number; readonly byUs: number; readonly burst: number }
  | { readonly kind: 'skew'; readonly partition: number; readonly byUs: number }
  | { readonly kind: 'rebalance'; readonly at: number; readonly partition: number; readonly back: number };

export interface SimRecord<E = unknown> {
  readonly event: E;
  readonly partition: number;
  readonly key: string | null;
  readonly timestampUs: number;
  /** Position in its partition, from 0, in the stream as generated. */
  readonly offset: number;
}

/** 2026-01-01T00:00:00Z, as the synthetic generator: simulated tapes do not depend on the wall clock. */
export const SIM_START_US = 1_767_225_600_000_000;

/** Generated events to records: timestamps from the gaps, offsets per partition. */
export function toRecords<E>(events: readonly SimulatedEvent<E>[], startUs = SIM_START_US): SimRecord<E>[] {
  let t = startUs;
  return renumber(events.map((g) => ({ event: g.event, partition: g.partition, key: g.key, timestampUs: (t += g.gapUs), offset: 0 })));
}

/** The records with offsets from 0 in each partition, in order (a window of a tape starts mid-partition). */
export function renumber<E>(records: readonly SimRecord<E>[]): SimRecord<E>[] {
  const offsets = new Map<number, number>();
  return records.map((r) => {
    const offset = offsets.get(r.partition) ?? 0;
    offsets.set(r.partition, offset + 1);
    return { ...r, offset };
  });
}

/** Up to `maxFaults` faults of the given kinds. */
export function faultsArbitrary(kinds: readonly FaultKind[], maxFaults: number): fc.Arbitrary<Fault[]> {
  if (kinds.length === 0 || maxFaults === 0) return fc.constant([]);
  const at = fc.nat({ max: 1_000_000 });
  const byKind: Record<FaultKind, fc.Arbitrary<Fault>> = {
    dup: fc.record({ kind: fc.constant('dup' as const), at, later: fc.nat({ max: 16 }) }),
    drop: fc.record({ kind: fc.constant('drop' as const), at }),
    reorder: fc.record({
      kind: fc.constant('reorder' as const),
      mode: fc.constantFrom('interleave' as const, 'window' as const),
      at,
      span: fc.integer({ min: 2, max: 16 }),
      seed: fc.nat(),
    }),
    delay: fc.record({ kind: fc.constant('delay' as const), at, byUs: fc.integer({ min: 1, max: 50_000 }), burst: fc.nat({ max: 8 }) }),
    skew: fc.record({ kind: fc.constant('skew' as const), partition: fc.nat({ max: 1023 }), byUs: fc.integer({ min: -50_000, max: 50_000 }) }),
    rebalance: fc.record({ kind: fc.constant('rebalance' as const), at, partition: fc.nat({ max: 1023 }), back: fc.integer({ min: 1, max: 8 }) }),
  };
  return fc.array(fc.oneof(...kinds.map((k) => byKind[k])), { maxLength: maxFaults });
}

/** The stream as delivered with the faults, in order. Never changes its input. */
export function applyFaults<E>(records: readonly SimRecord<E>[], faults: readonly Fault[]): SimRecord<E>[] {
  let out = records.slice();
  for (const f of faults) {
    const n = out.length;
    if (n === 0) break;
    switch (f.kind) {
      case 'dup': {
        const i = f.at % n;
        out.splice(Math.min(n, i + 1 + f.later), 0, out[i]);
        break;
      }
      case 'drop':
        out.splice(f.at % n, 1);
        break;
      case 'reorder':
        out = f.mode === 'interleave' ? interleaveSegment(out, f.at % n, f.span, f.seed) : swapWithinPartition(out, f.at % n, f.span);
        break;
      case 'delay': {
        const i = f.at % n;
        const t = out[i].timestampUs + f.byUs;
        for (let k = i; k < Math.min(n, i + 1 + f.burst); k++) out[k] = { ...out[k], timestampUs: t };
        break;
      }
      case 'skew': {
        const partitions = partitionsOf(out);
        const p = partitions[f.partition % partitions.length];
        out = out.map((r) => (r.partition === p ? { ...r, timestampUs: r.timestampUs + f.byUs } : r));
        break;
      }
      case 'rebalance': {
        const i = f.at % (n + 1);
        const before = partitionsOf(out.slice(0, i));
        if (before.length === 0) break;
        const p = before[f.partition % before.length];
        const seen = out.slice(0, i).filter((r) => r.partition === p);
        out.splice(i, 0, ...seen.slice(Math.max(0, seen.length - f.back)));
        break;
      }
    }
  }
  return out;
}

function partitionsOf(records: readonly SimRecord<unknown>[]): number[] {
  return [...new Set(records.map((r) => r.partition))].sort((a, b) => a - b);
}

/** Records [at, at+span) with their partitions merged in a random order that keeps each partition's order. */
function interleaveSegment<E>(records: SimRecord<E>[], at: number, span: number, seed: number): SimRecord<E>[] {
  const end = Math.min(records.length, at + span);
  return [...records.slice(0, at), ...interleave(records.slice(at, end), seed), ...records.slice(end)];
}

/** A random merge of the records' partitions: every cross-partition order can come out, each partition's order is kept. */
export function interleave<E>(records: readonly SimRecord<E>[], seed: number): SimRecord<E>[] {
  const queues = new Map<number, SimRecord<E>[]>();
  for (const r of records) {
    const q = queues.get(r.partition);
    if (q === undefined) queues.set(r.partition, [r]);
    else q.push(r);
  }
  const g = xoroshiro128plus(seed | 0);
  const lists = [...queues.values()];
  const heads = lists.map(() => 0);
  const out: SimRecord<E>[] = [];
  let left = records.length;
  while (left > 0) {
    // Pick a partition with weight = records it has left, so that every merge is possible.
    let pick = (g.next() >>> 0) % left;
    let k = 0;
    while (pick >= lists[k].length - heads[k]) {
      pick -= lists[k].length - heads[k];
      k++;
    }
    out.push(lists[k][heads[k]++]);
    left--;
  }
  return out;
}

function swapWithinPartition<E>(records: SimRecord<E>[], at: number, span: number): SimRecord<E>[] {
  const p = records[at].partition;
  for (let j = at + 1; j < Math.min(records.length, at + span + 1); j++) {
    if (records[j].partition === p) {
      const out = records.slice();
      out[at] = records[j];
      out[j] = records[at];
      return out;
    }
  }
  return records;
}

/** Without re-deliveries: the first delivery of each (partition, offset). */
export function firstDeliveries<E>(records: readonly SimRecord<E>[]): SimRecord<E>[] {
  const seen = new Set<string>();
  return records.filter((r) => {
    const id = `${r.partition}:${r.offset}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Each fault described with the positions it took effect at (`at` modulo the stream's length then). */
export function describeFaults(records: readonly SimRecord<unknown>[], faults: readonly Fault[]): string[] {
  const out: string[] = [];
  let stream: readonly SimRecord<unknown>[] = records;
  for (const f of faults) {
    const n = stream.length;
    if (n === 0) break;
    const at = 'at' in f ? f.at % (f.kind === 'rebalance' ? n + 1 : n) : 0;
    out.push(describeFault('at' in f ? ({ ...f, at } as Fault) : f));
    stream = applyFaults(stream, [f]);
  }
  return out;
}

/** A short description of a fault, for reports. */
export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'dup':
      return `dup: record ${f.at} delivered again ${f.later} later`;
    case 'drop':
      return `drop: record ${f.at}`;
    case 'reorder':
      return `reorder (${f.mode}): ${f.span} records from ${f.at}`;
    case 'delay':
      return `delay: record ${f.at} +${f.byUs} us${f.burst > 0 ? `, the next ${f.burst} with it` : ''}`;
    case 'skew':
      return `skew: partition #${f.partition} ${f.byUs >= 0 ? '+' : ''}${f.byUs} us`;
    case 'rebalance':
      return `rebalance at ${f.at}: partition #${f.partition}'s last ${f.back} records again`;
  }
}
