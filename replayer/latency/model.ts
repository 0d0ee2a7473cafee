// The latency model: one FIFO server behind a bounded queue, in virtual time.
//
// Arrivals. Event i arrives at its recorded timestamp, measured from the first event's, divided
// by the speed factor. Events that share a timestamp (a tape from Kafka has millisecond stamps,
// and at the story's rates thousands of events share each one) are spread evenly over the
// timestamp's resolution, the tick: the k-th of n events stamped t arrives at t + k*tick/n.
// Treating them as one burst at t would put the n-th behind n-1 others and inflate every
// percentile. The consumer delivers in tape order, so an event stamped earlier than the one
// before it (partitions merged) arrives when the one before it did; its latency still counts
// from its own timestamp.
//
// The queue. `capacity` is the number of slots in the channel between the consumer and the
// engine (1024 by default): events waiting, not the one being applied. So the system (queue
// plus server) holds at most K = capacity + 1 events. An arrival that finds it full either
// waits until the oldest event leaves (block: backpressure, the wait counts in its latency,
// and the consumer delivers nothing else meanwhile) or is dropped and counted (drop: load
// shedding; it gets no latency).
//
// The server. Departures: d_i = max(a_i, d_{i-1}) + s_i, with s_i the service time (measured
// around the engine call, or drawn from a model). Latency = d_i - (recorded time of i).
//
// Percentiles come from an HDR histogram (hdr-histogram-js, WebAssembly build) of latencies in
// nanoseconds with 3 significant digits; mean and max are exact.

// The WebAssembly build alone: the package's main entry also loads the pure-JS histograms and
// the log readers and writers, twice the start-up time, which the model's worker thread pays.
// It is loaded when the first histogram is made, not with this module, which the CLI loads for
// every command (the module holds the WebAssembly code as text: 20 ms to load).
import { createRequire } from 'node:module';
import type { WasmHistogram } from 'hdr-histogram-js/dist/wasm/index.js';
import type { EmpiricalServiceTimes, ServiceTimeSampler } from './service-time.js';
import { empiricalPercentiles } from './service-time.js';
import { roundMs } from './units.js';

export type WhenFull = 'block' | 'drop';
export const WHEN_FULL: readonly WhenFull[] = ['block', 'drop'];
export const DEFAULT_QUEUE_CAPACITY = 1024;
export const DEFAULT_TIMELINE_BINS = 400;

export interface QueueModelOptions {
  /** Recorded time is divided by this: 2 replays the tape at twice its recorded rate. */
  readonly speed: number;
  /** Channel slots (events waiting, not counting the one being applied). */
  readonly capacity: number;
  readonly whenFull: WhenFull;
  /** Timestamp resolution of the tape, µs: events sharing a timestamp are spread over it. */
  readonly tickUs: number;
  /** Recorded span the depth timeline covers, µs from the first event's timestamp. */
  readonly spanUs: number;
  readonly timelineBins?: number;
  /** Draws service times; null when the caller passes measured ones. */
  readonly sampler: ServiceTimeSampler | null;
  /** Also keep the distribution of service times (for --save-service-times). */
  readonly keepServiceTimes?: boolean;
}

export interface LatencyPercentilesMs {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface QueueStats {
  readonly speed: number;
  /** Events that arrived. */
  readonly events: number;
  /** Events that went through the server (events - dropped). */
  readonly served: number;
  readonly dropped: number;
  /** Arrivals that found the queue full and waited for a slot (block). */
  readonly blockedEvents: number;
  /** Total time arrivals waited for a slot. */
  readonly blockedMs: number;
  /** The most events ever waiting in the channel. */
  readonly maxQueueDepth: number;
  /** Arrivals per second of virtual time, and departures per second of virtual time. */
  readonly arrivalRatePerSec: number;
  readonly throughputPerSec: number;
  readonly latencyMs: LatencyPercentilesMs;
  readonly meanServiceMs: number;
  /** Mean time between arrival and the start of service (queueing, including backpressure). */
  readonly meanWaitMs: number;
  /** The latency at a ladder of percentiles, for the distribution chart. */
  readonly distribution: readonly { readonly percentile: number; readonly ms: number }[];
  /** The largest queue depth seen by events recorded in each of `timeline.length` equal slices of virtual time. */
  readonly depthTimeline: { readonly binMs: number; readonly maxDepth: readonly number[] };
}

export const DISTRIBUTION_PERCENTILES = [0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97.5, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100];

let wasm: typeof import('hdr-histogram-js/dist/wasm/index.js') | null = null;
function histogram(): WasmHistogram {
  if (wasm === null) {
    wasm = createRequire(import.meta.url)('hdr-histogram-js/dist/wasm/index.js') as typeof import('hdr-histogram-js/dist/wasm/index.js');
    wasm.initWebAssemblySync();
  }
  return wasm.WasmHistogram.build({ bitBucketSize: 32, lowestDiscernibleValue: 1, highestTrackableValue: 2, autoResize: true, numberOfSignificantValueDigits: 3 });
}

/** Events taken in at a time: push() buffers this many, pushMany() cuts longer runs to it. */
const BATCH = 4096;

export class QueueModel {
  private readonly invSpeed: number;
  private readonly tickUs: number;
  private readonly sampler: ServiceTimeSampler | null;
  private readonly drop: boolean;
  // Events taken in and not yet run: the last timestamp's events wait for the next batch, since
  // more events may share it (ties are spread over the tick, so the group must be whole).
  private workTs = new Float64Array(2 * BATCH);
  private workService = new Float64Array(2 * BATCH);
  private workN = 0;
  private originUs = Number.NaN;
  // Departure times (virtual µs) of the last K admitted events; the oldest still in the system at headSlot.
  private readonly ring: Float64Array;
  private readonly ringSize: number;
  private head = 0;
  private headSlot = 0;
  private admitted = 0;
  private tailSlot = 0;
  private lastArrival = 0;
  private lastDeparture = 0;
  private firstArrival = Number.NaN;
  // Figures.
  private events = 0;
  private dropped = 0;
  private blockedEvents = 0;
  private blockedUs = 0;
  private maxDepth = 0;
  private sumLatencyUs = 0;
  private sumServiceUs = 0;
  private maxLatencyUs = 0;
  private readonly latencies: WasmHistogram;
  private readonly services: WasmHistogram | null;
  private readonly timeline: Int32Array;
  private readonly binsPerUs: number;
  private readonly binUs: number;
  private finished: QueueStats | null = null;

  constructor(readonly options: QueueModelOptions) {
    if (!(options.speed > 0)) throw new RangeError(`speed must be positive, got ${options.speed}`);
    if (!(Number.isSafeInteger(options.capacity) && options.capacity >= 0)) throw new RangeError(`capacity must be a non-negative integer, got ${options.capacity}`);
    this.invSpeed = 1 / options.speed;
    this.tickUs = options.tickUs;
    this.sampler = options.sampler;
    this.drop = options.whenFull === 'drop';
    this.ringSize = options.capacity + 1;
    this.ring = new Float64Array(this.ringSize);
    const bins = options.timelineBins ?? DEFAULT_TIMELINE_BINS;
    this.timeline = new Int32Array(bins);
    this.binUs = Math.max(options.spanUs + options.tickUs, 1) / options.speed / bins;
    this.binsPerUs = 1 / this.binUs;
    this.latencies = histogram();
    this.services = options.keepServiceTimes ? histogram() : null;
  }

  /** One event, in tape order: its recorded timestamp and, for `measured`, its service time (µs). */
  push(timestampUs: number, measuredUs: number): void {
    if (this.workN === this.workTs.length) this.grow(1);
    this.workTs[this.workN] = timestampUs;
    this.workService[this.workN] = this.sampler === null ? measuredUs : this.sampler.next();
    if (++this.workN >= BATCH) this.run(false);
  }

  /** Events in tape order: timestamps and, for `measured`, service times (ignored when the model draws its own). */
  pushMany(ts: Float64Array, service: Float64Array | Float32Array | null, n: number): void {
    if (this.sampler === null && service === null) throw new Error('measured service times are needed: the model has no sampler');
    for (let start = 0; start < n; start += BATCH) {
      const m = Math.min(BATCH, n - start);
      if (this.workN + m > this.workTs.length) this.grow(m);
      this.workTs.set(ts.subarray(start, start + m), this.workN);
      if (this.sampler !== null) this.sampler.fill(this.workService.subarray(this.workN, this.workN + m), m);
      else this.workService.set(service!.subarray(start, start + m), this.workN);
      this.workN += m;
      this.run(false);
    }
  }

  private grow(more: number): void {
    const size = Math.max(this.workTs.length * 2, this.workN + more);
    const ts = new Float64Array(size);
    ts.set(this.workTs.subarray(0, this.workN));
    const service = new Float64Array(size);
    service.set(this.workService.subarray(0, this.workN));
    this.workTs = ts;
    this.workService = service;
  }

  /**
   * The queue's hot loop, on local variables: every event taken in except, unless `all`, those
   * of the last timestamp, which stay for the next batch.
   */
  private run(all: boolean): void {
    const ts = this.workTs;
    const services = this.workService;
    let end = this.workN;
    if (end === 0) return;
    if (!all) {
      const last = ts[end - 1];
      while (end > 0 && ts[end - 1] === last) end--;
      if (end === 0) return;
    }
    if (Number.isNaN(this.originUs)) {
      this.originUs = ts[0];
      this.firstArrival = 0;
    }
    const origin = this.originUs;
    const tick = this.tickUs;
    const invSpeed = this.invSpeed;
    const ring = this.ring;
    const size = this.ringSize;
    const drop = this.drop;
    const latencies = this.latencies;
    const serviceHistogram = this.services;
    const timeline = this.timeline;
    const lastBin = timeline.length - 1;
    const binsPerUs = this.binsPerUs;
    let head = this.head;
    let slot = this.headSlot;
    let admitted = this.admitted;
    let tailSlot = this.tailSlot;
    let lastArrival = this.lastArrival;
    let lastDeparture = this.lastDeparture;
    let maxDepth = this.maxDepth;
    let maxLatency = this.maxLatencyUs;
    let sumLatency = this.sumLatencyUs;
    let sumService = this.sumServiceUs;
    let i = 0;
    while (i < end) {
      // The events sharing this timestamp, spread evenly over one tick.
      const recorded = ts[i];
      let j = i + 1;
      while (j < end && ts[j] === recorded) j++;
      const base = recorded - origin;
      const step = tick / (j - i);
      for (let k = i; k < j; k++) {
        const stamp = (base + (k - i) * step) * invSpeed;
        const service = services[k];
        let t = stamp > lastArrival ? stamp : lastArrival;
        while (head < admitted && ring[slot] <= t) {
          head++;
          if (++slot === size) slot = 0;
        }
        let ahead = admitted - head;
        if (ahead === size) {
          if (drop) {
            this.dropped++;
            lastArrival = t;
            ahead = size - 1;
            if (ahead > maxDepth) maxDepth = ahead;
            let bin = (stamp * binsPerUs) | 0;
            if (bin > lastBin) bin = lastBin;
            if (ahead > timeline[bin]) timeline[bin] = ahead;
            continue;
          }
          // Backpressure: wait for the oldest event to leave (and any that leave at the same instant).
          const free = ring[slot];
          this.blockedEvents++;
          this.blockedUs += free - t;
          t = free;
          while (head < admitted && ring[slot] <= t) {
            head++;
            if (++slot === size) slot = 0;
          }
          ahead = admitted - head;
        }
        lastArrival = t;
        const departure = (t > lastDeparture ? t : lastDeparture) + service;
        ring[tailSlot] = departure;
        if (++tailSlot === size) tailSlot = 0;
        admitted++;
        lastDeparture = departure;
        const latency = departure - stamp;
        latencies.recordValue(Math.round(latency * 1000));
        if (serviceHistogram !== null) serviceHistogram.recordValue(Math.round(service * 1000));
        sumLatency += latency;
        sumService += service;
        if (latency > maxLatency) maxLatency = latency;
        if (ahead > maxDepth) maxDepth = ahead;
        let bin = (stamp * binsPerUs) | 0;
        if (bin > lastBin) bin = lastBin;
        if (ahead > timeline[bin]) timeline[bin] = ahead;
      }
      i = j;
    }
    this.events += end;
    this.head = head;
    this.headSlot = slot;
    this.admitted = admitted;
    this.tailSlot = tailSlot;
    this.lastArrival = lastArrival;
    this.lastDeparture = lastDeparture;
    this.maxDepth = maxDepth;
    this.maxLatencyUs = maxLatency;
    this.sumLatencyUs = sumLatency;
    this.sumServiceUs = sumService;
    // Keep what was not run (the last timestamp's events) at the front.
    ts.copyWithin(0, end, this.workN);
    services.copyWithin(0, end, this.workN);
    this.workN -= end;
  }

  /** The figures; the model takes no more events after this. */
  finish(): QueueStats {
    if (this.finished !== null) return this.finished;
    this.run(true);
    const served = this.admitted;
    const h = this.latencies;
    const at = (p: number): number => (served === 0 ? 0 : roundMs(h.getValueAtPercentile(p) / 1000));
    const virtualUs = this.lastDeparture - this.firstArrival;
    const arrivalUs = this.lastArrival - this.firstArrival;
    const meanLatencyUs = served === 0 ? 0 : this.sumLatencyUs / served;
    const meanServiceUs = served === 0 ? 0 : this.sumServiceUs / served;
    this.finished = {
      speed: this.options.speed,
      events: this.events,
      served,
      dropped: this.dropped,
      blockedEvents: this.blockedEvents,
      blockedMs: roundMs(this.blockedUs),
      maxQueueDepth: this.maxDepth,
      arrivalRatePerSec: arrivalUs > 0 ? Math.round(((this.events - 1) * 1e6) / arrivalUs) : 0,
      throughputPerSec: virtualUs > 0 ? Math.round((served * 1e6) / virtualUs) : 0,
      latencyMs: { p50: at(50), p95: at(95), p99: at(99), p999: at(99.9), max: roundMs(this.maxLatencyUs), mean: roundMs(meanLatencyUs) },
      meanServiceMs: roundMs(meanServiceUs),
      meanWaitMs: roundMs(meanLatencyUs - meanServiceUs),
      distribution: DISTRIBUTION_PERCENTILES.map((percentile) => ({ percentile, ms: percentile === 100 ? roundMs(this.maxLatencyUs) : at(percentile) })),
      depthTimeline: { binMs: roundMs(this.binUs), maxDepth: Array.from(this.timeline) },
    };
    h.destroy();
    return this.finished;
  }

  /** The distribution of service times, as --save-service-times writes it (keepServiceTimes). */
  serviceTimes(source: string): EmpiricalServiceTimes {
    const h = this.services;
    if (h === null) throw new Error('serviceTimes() needs keepServiceTimes');
    const quantilesUs: [number, number][] = [];
    for (const p of empiricalPercentiles()) {
      const us = (p === 0 ? h.minNonZeroValue : p === 100 ? h.maxValue : h.getValueAtPercentile(p)) / 1000;
      const prev = quantilesUs.length > 0 ? quantilesUs[quantilesUs.length - 1][1] : 0;
      quantilesUs.push([p, Math.max(us, prev)]);
    }
    const table: EmpiricalServiceTimes = { format: 'tapedeck-service-times', version: 1, events: h.totalCount, meanUs: h.mean / 1000, quantilesUs, source };
    h.destroy();
    return table;
  }
}
