// Synthetic sources: `world` traffic from the seeded generator, or, for a user's engine, the
// engine's own generate() hook with Poisson arrivals. Both resume by regenerating up to the
// stored index, which is exact because generation is deterministic.

import type { Engine } from '../../engine/types.js';
import { generatedPartition } from '../../engine/registry.js';
import { SeededRandom } from '../../engine/random.js';
import { worldCodec } from '../../engine/world/codec.js';
import type { WorldEvent } from '../../engine/world/events.js';
import { DEFAULT_START_US, trafficOptions, WorldTraffic, type TrafficOptions } from '../../engine/world/traffic.js';
import type { Source, SourceItem, SourceRecord, SourceSpec } from '../source.js';
import { BlockBuilder, type PackedBlock, type PayloadWriter } from '../../tape/block.js';
import { packerSupports, WorldTrafficPacker, type WorldEventRing } from './world-traffic-packer.js';

const BATCH_EVENTS = 512;
/** The world codec's writer for BlockBuilder.addRun. */
const worldCodecWriter: PayloadWriter<WorldEvent> = { encodedLength: worldCodec.encodedLength!, encodeInto: worldCodec.encodeInto! };
/** Fewer events than this are generated faster on the main thread than a worker starts. */
export const WORKER_MIN_EVENTS = 200_000;

export class WorldTrafficSource implements Source<WorldEvent> {
  readonly name = 'synthetic';
  readonly live = false;
  readonly description: unknown;
  private readonly options: TrafficOptions;
  private made: WorldTraffic | null = null;
  /** packBlock()'s generator, when the options are in the WebAssembly generator's ranges. */
  private packer: WorldTrafficPacker | null = null;
  /** packBlock()'s builder otherwise. */
  private builder: BlockBuilder | null = null;
  private stopped = false;

  constructor(
    options: Partial<TrafficOptions>,
    private readonly startIndex = 0,
  ) {
    this.options = trafficOptions(options);
    this.description = { kind: 'synthetic', generator: 'world-traffic/1', ...this.options };
  }

  /**
   * The generator, made and brought to the resume point (by generating every event before it)
   * on first use: a recording on the source worker makes its own from workerSpec(), and
   * skipping here too cost a resume the same time again on the main thread, before the worker
   * started (1.5 to 2.3 s of a 30M-event recording resumed at 11.6M).
   */
  private get traffic(): WorldTraffic {
    if (this.made === null) {
      this.made = new WorldTraffic(this.options);
      this.made.skipTo(this.startIndex);
    }
    return this.made;
  }

  workerSpec(): { spec: SourceSpec; large: boolean } {
    return {
      spec: { kind: 'world-traffic', options: this.options, startIndex: this.startIndex },
      large: this.options.events - this.startIndex >= WORKER_MIN_EVENTS,
    };
  }

  async *batches(): AsyncIterable<readonly SourceRecord<WorldEvent>[]> {
    while (!this.stopped && !this.traffic.done) {
      const batch: SourceRecord<WorldEvent>[] = [];
      for (let i = 0; i < BATCH_EVENTS; i++) {
        const r = this.traffic.next();
        if (r === null) break;
        batch.push({
          timestampUs: r.timestampUs,
          partition: r.partition,
          position: r.index,
          key: r.key,
          payload: worldCodec.encode(r.event),
          event: r.event,
        });
      }
      yield batch;
    }
  }

  /**
   * The next block (see Source.packBlock): the source worker's path. Made by the WebAssembly
   * generator (world-traffic-packer.ts) when it handles the options, else by WorldTraffic and
   * BlockBuilder.addRun; the blocks are the same.
   */
  packBlock(seq: number, limit: number, blockNo: number): PackedBlock | null {
    // stop() comes between calls (the source worker asks between blocks), never during one.
    if (this.stopped) return null;
    if (this.packer === null && this.builder === null) {
      if (packerSupports(this.options)) this.packer = new WorldTrafficPacker(this.options, limit, this.startIndex);
      else this.builder = new BlockBuilder({ packed: true });
    }
    if (this.packer !== null) return this.packer.packBlock(seq, limit, blockNo);
    const builder = this.builder!;
    return builder.addRun(seq, limit, this.traffic, worldCodecWriter) === 0 ? null : builder.finishPacked(blockNo);
  }

  packedEvents(ring: WorldEventRing, slot: number): number {
    return this.packer === null ? -1 : this.packer.eventsInto(ring, slot);
  }

  resumeAfter(record: SourceItem<WorldEvent>): unknown {
    return { nextIndex: (record as SourceRecord<WorldEvent>).position + 1 };
  }

  resumePosition(): unknown {
    return { nextIndex: this.packer !== null ? this.packer.position : this.made === null ? this.startIndex : this.made.position };
  }

  stop(): void {
    this.stopped = true;
  }
}

export interface GeneratedSourceOptions {
  readonly seed: number;
  readonly events: number;
  readonly ratePerSec: number;
  readonly startUs?: number;
}

/** Traffic for any engine that has a generate() hook. */
export class EngineGeneratedSource<E> implements Source<E> {
  readonly name = 'synthetic';
  readonly live = false;
  readonly description: unknown;
  private readonly random: SeededRandom;
  private readonly encoder = new TextEncoder();
  private index = 0;
  private elapsedUs = 0;
  private stopped = false;

  constructor(
    private readonly engine: Engine<unknown, E>,
    private readonly options: GeneratedSourceOptions,
    private readonly startIndex = 0,
  ) {
    if (engine.generate === undefined) {
      throw new Error(`engine ${engine.name} has no generate() hook, so it cannot make synthetic traffic`);
    }
    this.random = new SeededRandom(options.seed);
    this.description = { kind: 'synthetic', generator: `${engine.name}.generate`, ...options, startUs: options.startUs ?? DEFAULT_START_US };
  }

  /**
   * Regenerate up to the resume point (the arrival times and the generator's draws depend on
   * everything before it), on first use: as WorldTrafficSource, not on the main thread when the
   * source worker generates.
   */
  private skipToStart(): void {
    while (this.index < this.startIndex) this.nextRecord();
  }

  private nextRecord(): SourceRecord<E> {
    const index = this.index++;
    this.elapsedUs += (-Math.log(1 - this.random.float()) * 1e6) / this.options.ratePerSec;
    const g = this.engine.generate!(this.random, index);
    return {
      timestampUs: (this.options.startUs ?? DEFAULT_START_US) + Math.floor(this.elapsedUs),
      partition: generatedPartition(g.partition, index, `engine "${this.engine.name}"`),
      position: index,
      key: g.key === null ? null : this.encoder.encode(g.key),
      payload: this.engine.codec.encode(g.event),
      event: g.event,
    };
  }

  workerSpec(): { spec: SourceSpec; large: boolean } {
    return {
      spec: { kind: 'engine-generated', options: this.options, startIndex: this.startIndex },
      large: this.options.events - this.startIndex >= WORKER_MIN_EVENTS,
    };
  }

  async *batches(): AsyncIterable<readonly SourceRecord<E>[]> {
    this.skipToStart();
    while (!this.stopped && this.index < this.options.events) {
      const batch: SourceRecord<E>[] = [];
      for (let i = 0; i < BATCH_EVENTS && this.index < this.options.events; i++) batch.push(this.nextRecord());
      yield batch;
    }
  }

  resumeAfter(record: SourceItem<E>): unknown {
    return { nextIndex: (record as SourceRecord<E>).position + 1 };
  }

  stop(): void {
    this.stopped = true;
  }
}
