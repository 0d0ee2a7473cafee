import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockChecksum, BlockBuilder, BlockCursor, BlockFormatError, completeBlock, MAX_BLOCK_VALUE, SourceSpans, type BlockEvent } from '../../tape/block.js';
import { propertyParams } from '../support/property.js';

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const eventArb: fc.Arbitrary<BlockEvent> = fc.record({
  timestampUs: fc.integer({ min: 0, max: MAX_BLOCK_VALUE }),
  partition: fc.nat({ max: 1 << 20 }),
  position: fc.integer({ min: 0, max: MAX_BLOCK_VALUE }),
  stream: fc.nat({ max: 1000 }),
  key: fc.option(bytes(40), { nil: null }),
  headers: fc.array(fc.record({ name: bytes(10), value: bytes(50) }), { maxLength: 3 }),
  payload: bytes(200),
});

function decodeAll(block: ReturnType<BlockBuilder['finish']>): BlockEvent[] {
  const cursor = new BlockCursor().reset(block, block.data);
  const out: BlockEvent[] = [];
  while (cursor.next()) {
    out.push({
      timestampUs: cursor.timestampUs,
      partition: cursor.partition,
      position: cursor.position,
      stream: cursor.stream,
      key: cursor.key() === null ? null : Uint8Array.from(cursor.key()!),
      headers: cursor.headers().map((h) => ({ name: Uint8Array.from(h.name), value: Uint8Array.from(h.value) })),
      payload: Uint8Array.from(cursor.payload()),
    });
  }
  return out;
}

/** A codec whose payloads are the event's bytes: lengths past 127 take a longer varint. */
const writer = {
  encodedLength: (event: Uint8Array) => event.length,
  encodeInto: (event: Uint8Array, out: Uint8Array, offset: number) => {
    out.set(event, offset);
    return offset + event.length;
  },
};

describe('event blocks', () => {
  it('round-trip every field of every event, in order, with sequence numbers', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 60 }), fc.nat({ max: 2 ** 40 }), (events, firstSeq) => {
        const builder = new BlockBuilder();
        events.forEach((e, i) => builder.add(firstSeq + i, e));
        const block = builder.finish(3);
        expect(block).toMatchObject({ blockNo: 3, firstSeq, eventCount: events.length });
        expect(block.checksum).toBe(blockChecksum(block, block.data));
        expect(decodeAll(block)).toEqual(events);
        expect(block.minTsUs).toBe(Math.min(...events.map((e) => e.timestampUs)));
        expect(block.maxTsUs).toBe(Math.max(...events.map((e) => e.timestampUs)));
      }),
      propertyParams('block round trip', 200),
    );
  });

  it('the position index (takePacked, and take() as objects) holds each stream and partition once, with its count and least and greatest position, by stream then partition', () => {
    // Stream 0 and partitions below 1,024 alone (the common case, packed without objects), or
    // any streams and partitions.
    const dense = fc.record({ stream: fc.constant(0), partition: fc.nat({ max: 70 }), position: fc.nat({ max: 2 ** 40 }) });
    // (A few partitions each side of 1,024, so that the spans kept apart from the dense ones see
    // several events too.)
    const any = fc.record({ stream: fc.nat({ max: 3 }), partition: fc.oneof(fc.nat({ max: 5 }), fc.integer({ min: 1020, max: 1030 }), fc.nat({ max: 5000 })), position: fc.nat({ max: 2 ** 40 }) });
    fc.assert(
      fc.property(fc.oneof(fc.array(dense, { maxLength: 200 }), fc.array(fc.oneof(dense, any), { maxLength: 200 })), (adds) => {
        // What the index must hold, worked out here from the adds.
        const bySpan = new Map<string, { stream: number; partition: number; eventCount: number; minPosition: number; maxPosition: number }>();
        for (const a of adds) {
          const span = bySpan.get(`${a.stream}/${a.partition}`);
          if (span === undefined) bySpan.set(`${a.stream}/${a.partition}`, { stream: a.stream, partition: a.partition, eventCount: 1, minPosition: a.position, maxPosition: a.position });
          else bySpan.set(`${a.stream}/${a.partition}`, { ...span, eventCount: span.eventCount + 1, minPosition: Math.min(span.minPosition, a.position), maxPosition: Math.max(span.maxPosition, a.position) });
        }
        const expected = [...bySpan.values()].sort((a, b) => a.stream - b.stream || a.partition - b.partition);
        const packed = new SourceSpans();
        const objects = new SourceSpans();
        for (const a of adds) {
          packed.add(a.stream, a.partition, a.position);
          objects.add(a.stream, a.partition, a.position);
        }
        expect([...packed.takePacked()]).toEqual(expected.flatMap((s) => [s.stream, s.partition, s.eventCount, s.minPosition, s.maxPosition]));
        expect(objects.take()).toEqual(expected);
        // Empty afterwards.
        expect(packed.takePacked().length).toBe(0);
        expect(objects.take()).toEqual([]);
      }),
      propertyParams('position index spans', 300),
    );
  });

  it('a packed block completed by the thread that walks its events (completeBlock) is the block finish() gives: the same bytes, checksum and position index', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { minLength: 1, maxLength: 60 }), fc.nat({ max: 2 ** 40 }), (events, firstSeq) => {
        const whole = new BlockBuilder();
        const packed = new BlockBuilder({ packed: true });
        events.forEach((e, i) => {
          whole.add(firstSeq + i, e);
          packed.add(firstSeq + i, e);
        });
        const expected = whole.finish(5);
        const sent = packed.finishPacked(5);
        expect(sent).not.toHaveProperty('checksum');
        expect(sent).not.toHaveProperty('sources');
        // What the recorder's main thread does with a reader thread's block.
        const spans = new SourceSpans();
        const cursor = new BlockCursor().reset(sent, sent.data);
        while (cursor.next()) spans.add(cursor.stream, cursor.partition, cursor.position);
        expect(completeBlock(sent, spans)).toEqual(expected);
        expect(() => packed.finish(6)).toThrow(/finishPacked/);
      }),
      propertyParams('packed block completed', 200),
    );
  });

  it('addEncoded (the payload written by the codec) gives the block add gives with the encoded payload', () => {
    const simple = fc.record({
      timestampUs: fc.integer({ min: 0, max: MAX_BLOCK_VALUE }),
      partition: fc.nat({ max: 1 << 20 }),
      position: fc.integer({ min: 0, max: MAX_BLOCK_VALUE }),
      key: fc.option(bytes(300), { nil: null }),
      payload: bytes(300),
    });
    fc.assert(
      fc.property(fc.array(simple, { minLength: 1, maxLength: 40 }), fc.nat({ max: 2 ** 40 }), (events, firstSeq) => {
        const byAdd = new BlockBuilder();
        const byEncoded = new BlockBuilder();
        events.forEach((e, i) => {
          byAdd.add(firstSeq + i, e);
          byEncoded.addEncoded(firstSeq + i, e.timestampUs, e.partition, e.position, e.key, writer, e.payload);
        });
        expect(byEncoded.finish(5)).toEqual(byAdd.finish(5));
      }),
      propertyParams('addEncoded equals add', 200),
    );
    const liar = { encodedLength: () => 3, encodeInto: (_: unknown, _out: Uint8Array, offset: number) => offset + 2 };
    expect(() => new BlockBuilder().addEncoded(0, 0, 0, 0, null, liar, null)).toThrow(/event 0: the codec wrote 2 bytes but said 3/);
  });

  it('addRun (a source packing a run of events) gives the block addEncoded gives, however the runs are cut', () => {
    const simple = fc.record({
      timestampUs: fc.integer({ min: 0, max: MAX_BLOCK_VALUE }),
      // Past 1,023 the spans go through the map; past 127 a partition takes a longer varint.
      partition: fc.oneof(fc.nat({ max: 70 }), fc.nat({ max: 1 << 20 })),
      position: fc.integer({ min: 0, max: MAX_BLOCK_VALUE }),
      key: fc.option(bytes(300), { nil: null }),
      payload: bytes(300),
    });
    /** The events as PackableEvents, all keys in one array as the generator keeps them. */
    const packable = (events: { timestampUs: number; partition: number; position: number; key: Uint8Array | null; payload: Uint8Array }[]) => {
      const keyBytes = new Uint8Array(events.reduce((n, e) => n + (e.key?.length ?? 0), 0));
      const keyAt: number[] = [];
      let at = 0;
      for (const e of events) {
        keyAt.push(at);
        if (e.key !== null) keyBytes.set(e.key, at);
        at += e.key?.length ?? 0;
      }
      let i = -1;
      return {
        keyBytes,
        advance: () => ++i < events.length,
        get currentTimestampUs() { return events[i].timestampUs; },
        get currentPartition() { return events[i].partition; },
        get currentPosition() { return events[i].position; },
        get currentKeyOffset() { return keyAt[i]; },
        get currentKeyLength() { return events[i].key === null ? -1 : events[i].key!.length; },
        get current() { return events[i].payload; },
      };
    };
    fc.assert(
      fc.property(fc.array(simple, { minLength: 1, maxLength: 40 }), fc.nat({ max: 2 ** 40 }), fc.array(fc.integer({ min: 1, max: 15 }), { minLength: 1 }), (events, firstSeq, cuts) => {
        const byEncoded = new BlockBuilder();
        events.forEach((e, i) => byEncoded.addEncoded(firstSeq + i, e.timestampUs, e.partition, e.position, e.key, writer, e.payload));
        const byRun = new BlockBuilder();
        const source = packable(events);
        let seq = firstSeq;
        for (let c = 0; seq < firstSeq + events.length; c++) {
          const limit = cuts[c % cuts.length];
          const added = byRun.addRun(seq, limit, source, writer);
          expect(added).toBe(Math.min(limit, firstSeq + events.length - seq));
          seq += added;
        }
        expect(byRun.addRun(seq, 10, source, writer)).toBe(0);
        expect(byRun.finish(5)).toEqual(byEncoded.finish(5));
      }),
      propertyParams('addRun equals addEncoded', 200),
    );
    const one = packable([{ timestampUs: 1, partition: 0, position: 0, key: null, payload: new Uint8Array(1) }]);
    const started = new BlockBuilder();
    started.addEncoded(7, 1, 0, 0, null, writer, new Uint8Array(1));
    expect(() => started.addRun(9, 1, one, writer)).toThrow(/expected seq 8, got 9/);
    const late = packable([{ timestampUs: MAX_BLOCK_VALUE + 1, partition: 0, position: 0, key: null, payload: new Uint8Array(1) }]);
    expect(() => new BlockBuilder().addRun(4, 1, late, writer)).toThrow(/event 4: timestamp .* must be integers in \[0, 2\^52 - 1\]/);
    // Past a block's first event too: a timestamp above 2^52 - 1 or below 0 or NaN, or such a
    // position, as the third event of a block, packed by a second run after two good events.
    const event = (timestampUs: number, position = 0) => ({ timestampUs, partition: 0, position, key: null, payload: new Uint8Array(1) });
    for (const [bad, position] of [[MAX_BLOCK_VALUE + 1, 0], [-1, 0], [NaN, 0], [15, MAX_BLOCK_VALUE + 1], [15, -1], [15, NaN]]) {
      const builder = new BlockBuilder();
      const events = packable([event(10), event(20), event(bad, position), event(15)]);
      expect(builder.addRun(0, 2, events, writer)).toBe(2);
      expect(() => builder.addRun(2, 2, events, writer), `${bad} at ${position}`).toThrow(/event 2: timestamp .* must be integers in \[0, 2\^52 - 1\]/);
    }
    // In range, below the minimum and above the maximum: the block's range follows.
    const inRange = new BlockBuilder();
    expect(inRange.addRun(0, 5, packable([event(10), event(20), event(5), event(MAX_BLOCK_VALUE), event(0)]), writer)).toBe(5);
    expect(inRange.finish(0)).toMatchObject({ firstTsUs: 10, minTsUs: 0, maxTsUs: MAX_BLOCK_VALUE });
  });

  it('addRun stops at BLOCK_MAX_BYTES, and the next run starts the next block', () => {
    const big = new Uint8Array(1 << 20);
    let i = -1;
    const source = { keyBytes: new Uint8Array(0), advance: () => ++i < 10, currentTimestampUs: 5, currentPartition: 1, get currentPosition() { return i; }, currentKeyOffset: 0, currentKeyLength: -1, current: big };
    const builder = new BlockBuilder();
    expect(builder.addRun(0, 100, source, writer)).toBe(4);
    expect(builder.full(100)).toBe(true);
    const first = builder.finish(0);
    expect(first).toMatchObject({ firstSeq: 0, eventCount: 4 });
    expect(builder.addRun(4, 100, source, writer)).toBe(4);
    expect(decodeAll(builder.finish(1)).map((e) => e.position)).toEqual([4, 5, 6, 7]);
  });

  it('a checksum changes when any byte of the data or any header field changes', () => {
    const builder = new BlockBuilder();
    for (let i = 0; i < 50; i++) builder.add(i, { timestampUs: 1000 + i, partition: i % 4, position: i, key: null, payload: new Uint8Array([i, 2, 3]) });
    const block = builder.finish(0);
    for (let i = 0; i < block.data.length; i++) {
      const data = block.data.slice();
      data[i] ^= 1 << (i % 8);
      expect(blockChecksum(block, data)).not.toBe(block.checksum);
    }
    expect(blockChecksum({ ...block, firstSeq: 1 }, block.data)).not.toBe(block.checksum);
    expect(blockChecksum({ ...block, maxTsUs: block.maxTsUs + 1 }, block.data)).not.toBe(block.checksum);
  });

  it('round-trips the extremes, and refuses timestamps or positions beyond 2^52 - 1', () => {
    const builder = new BlockBuilder();
    const extremes = [MAX_BLOCK_VALUE, 0, MAX_BLOCK_VALUE, 0].map((v, i) => ({ timestampUs: v, partition: i, position: MAX_BLOCK_VALUE - v, stream: 0, key: null, headers: [], payload: new Uint8Array([i]) }));
    extremes.forEach((e, i) => builder.add(i, e));
    expect(decodeAll(builder.finish(0))).toEqual(extremes);
    expect(() => builder.add(0, { timestampUs: 2 ** 52, partition: 0, position: 0, key: null, payload: new Uint8Array(1) })).toThrow(/must be integers in \[0, 2\^52 - 1\]/);
  });

  it('refuses non-consecutive sequence numbers and reports truncated data', () => {
    const builder = new BlockBuilder();
    builder.add(5, { timestampUs: 1, partition: 0, position: 0, key: null, payload: new Uint8Array(4) });
    expect(() => builder.add(7, { timestampUs: 1, partition: 0, position: 0, key: null, payload: new Uint8Array(4) })).toThrow(/consecutive/);
    const block = builder.finish(0);
    const cursor = new BlockCursor().reset(block, block.data.subarray(0, block.data.length - 2));
    expect(() => cursor.next()).toThrow(BlockFormatError);
  });

  it('the cursor\'s path for the common event reads exactly what its general path reads, from sound and from damaged blocks', () => {
    // Events mostly of the common shape (small steps, small partitions, no stream, no headers),
    // with keys and payloads on both sides of 128 bytes (a varint of two bytes) and some
    // events of any shape; then bytes flipped, cut off or appended, and counts changed.
    const around128 = fc.integer({ min: 120, max: 136 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
    const common = fc.record({
      timestampUs: fc.integer({ min: 0, max: 200 }),
      partition: fc.oneof(fc.nat({ max: 127 }), fc.nat({ max: 300 })),
      position: fc.integer({ min: 0, max: 100 }),
      stream: fc.constant(0),
      key: fc.option(fc.oneof(bytes(8), around128), { nil: null }),
      headers: fc.constant([]),
      payload: fc.oneof(bytes(16), around128),
    });
    const ordered = (events: BlockEvent[]): BlockEvent[] => {
      let ts = 1_767_225_600_000_000;
      let position = 0;
      return events.map((e) => {
        ts = Math.min(MAX_BLOCK_VALUE, Math.max(0, ts + e.timestampUs - 100));
        position = Math.min(MAX_BLOCK_VALUE, Math.max(0, position + e.position - 20));
        return { ...e, timestampUs: ts, position };
      });
    };
    const damage = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat({ max: 7 }) }),
        fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 2, 4, 8, 0x7f, 0x80, 0xff) }),
        fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
        fc.record({ kind: fc.constant('append' as const), extra: bytes(4) }),
        fc.record({ kind: fc.constant('count' as const), by: fc.integer({ min: -2, max: 2 }) }),
      ),
      { maxLength: 3 },
    );
    type Step = { readonly error: string } | readonly number[];
    const walk = (cursor: BlockCursor, header: Parameters<BlockCursor['reset']>[0], data: Uint8Array, general: boolean): Step[] => {
      cursor.reset(header, data);
      const steps: Step[] = [];
      for (;;) {
        try {
          const more = general ? (cursor as unknown as { nextGeneral(): boolean }).nextGeneral() : cursor.next();
          if (!more) return steps;
        } catch (error) {
          if (!(error instanceof BlockFormatError)) throw error;
          steps.push({ error: error.message });
          return steps;
        }
        steps.push([cursor.seq, cursor.timestampUs, cursor.partition, cursor.position, cursor.stream, cursor.keyOffset, cursor.keyLength, cursor.headersOffset, cursor.payloadOffset, cursor.payloadLength, cursor.offset]);
      }
    };
    let damaged = 0;
    let commonEvents = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof({ weight: 6, arbitrary: common }, { weight: 1, arbitrary: eventArb }), { minLength: 1, maxLength: 40 }), damage, (raw, changes) => {
        const events = ordered(raw);
        const builder = new BlockBuilder();
        events.forEach((e, i) => builder.add(7 + i, e));
        const block = builder.finish(0);
        let data = Uint8Array.from(block.data);
        let eventCount = block.eventCount;
        for (const c of changes) {
          if (c.kind === 'flip' && data.length > 0) data[c.at % data.length] ^= 1 << c.bit;
          else if (c.kind === 'set' && data.length > 0) data[c.at % data.length] = c.value;
          else if (c.kind === 'cut') data = data.subarray(0, c.at % (data.length + 1));
          else if (c.kind === 'append') data = Uint8Array.from([...data, ...c.extra]);
          else if (c.kind === 'count') eventCount = Math.max(0, eventCount + c.by);
        }
        if (changes.length > 0) damaged++;
        commonEvents += events.filter((e) => (e.stream ?? 0) === 0 && (e.headers ?? []).length === 0).length;
        const header = { ...block, eventCount };
        const fast = walk(new BlockCursor(), header, data, false);
        const general = walk(new BlockCursor(), header, data, true);
        expect(fast).toEqual(general);
        if (changes.length === 0) expect(fast.length).toBe(events.length);
      }),
      propertyParams('block cursor fast path equals general path', 500),
    );
    expect(damaged).toBeGreaterThan(100);
    expect(commonEvents).toBeGreaterThan(2000);
  });
});
