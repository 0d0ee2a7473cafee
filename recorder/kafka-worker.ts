// The recorder's Kafka reader thread (see pipeline.ts, KafkaPipeline): runs the consumer in
// raw mode and posts the records packed in the block format, at most KAFKA_IN_FLIGHT chunks
// ahead of the main thread, which parses, applies and writes them.

import { parentPort, workerData } from 'node:worker_threads';
import { jsonCodec } from '../engine/json-codec.js';
import { BlockBuilder } from '../tape/block.js';
import { CONTROL_CONSUMED, CONTROL_STOP, KAFKA_CHUNK_ITEMS, KAFKA_IN_FLIGHT, type KafkaMessage, type KafkaTask } from './pipeline.js';
import { workerFailure } from '../tape/threads.js';
import { isReject, type SourceItem, type SourceReject } from './source.js';

import { KafkaSource, type KafkaSourceOptions } from './sources/kafka.js';
import { fastDecoderStats, installFastRecordDecoder } from './sources/kafka-decode.js';

/** Records taken from the client and not yet packed; past this the reader waits. */
const MAX_PENDING_ITEMS = 65_536;

/** Atomics.waitAsync (Node 16+; not in this project's TypeScript lib). */
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

async function run(task: KafkaTask): Promise<void> {
  const port = parentPort!;
  // Before the consumer's first fetch, which loads kafkajs's fetch decoding.
  const decoder = installFastRecordDecoder();
  const control = new Int32Array(task.control);
  const post = (message: KafkaMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
  const source = new KafkaSource({
    ...(task.options as unknown as KafkaSourceOptions<unknown>),
    codec: jsonCodec,
    rawValues: true,
    onWarning: (message) => post({ type: 'warning', message }),
  });
  port.on('message', (message: { type: string; position?: unknown }) => {
    if (message.type === 'committed') source.committed(message.position);
    else if (message.type === 'close') source.stop();
  });
  const builder = new BlockBuilder();
  let items = 0;
  let rejects: { index: number; reject: SourceReject }[] = [];
  let sent = 0;
  let stopped = false;
  const send = async (): Promise<void> => {
    if (items === 0) return;
    const block = builder.eventCount > 0 ? builder.finish(0) : null;
    post({ type: 'chunk', block, rejects, items }, block === null ? [] : [block.data.buffer as ArrayBuffer]);
    sent++;
    items = 0;
    rejects = [];
    // Wait for room without blocking this thread's event loop: the consumer's heartbeats run on it.
    for (;;) {
      const consumed = Atomics.load(control, CONTROL_CONSUMED);
      if (sent - consumed < KAFKA_IN_FLIGHT || Atomics.load(control, CONTROL_STOP) !== 0) return;
      const wait = waitAsync(control, CONTROL_CONSUMED, consumed, 1000);
      if (wait.async) await wait.value;
    }
  };
  // The client fetches again only when the source has taken the last batch, so batches are
  // taken at once and packed by a second loop while the next fetch is on the wire.
  const pending: (readonly (SourceItem | SourceReject)[])[] = [];
  let pendingItems = 0;
  let readerDone = false;
  const waiting: { packer: (() => void) | null; reader: (() => void) | null } = { packer: null, reader: null };
  const wake = (who: 'packer' | 'reader'): void => {
    const w = waiting[who];
    waiting[who] = null;
    w?.();
  };
  const reader = (async () => {
    try {
      for await (const batch of source.batches()) {
        pending.push(batch);
        pendingItems += batch.length;
        wake('packer');
        while (pendingItems > MAX_PENDING_ITEMS) await new Promise<void>((resolve) => (waiting.reader = resolve));
        if (!stopped && Atomics.load(control, CONTROL_STOP) !== 0) {
          stopped = true;
          source.stop();
        }
      }
    } finally {
      readerDone = true;
      wake('packer');
    }
  })();
  for (;;) {
    const batch = pending.shift();
    if (batch === undefined) {
      if (readerDone) break;
      await new Promise<void>((resolve) => (waiting.packer = resolve));
      continue;
    }
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      if (isReject(item)) rejects.push({ index: items, reject: item });
      else builder.add(builder.eventCount, item);
      items++;
      if (items === KAFKA_CHUNK_ITEMS) await send();
    }
    pendingItems -= batch.length;
    wake('reader');
    // What was fetched goes over when nothing else waits (and the empty batch the source hands
    // out when Kafka is idle sends it too), so that a live capture commits as on one thread.
    if (pending.length === 0) await send();
  }
  await reader;
  await send();
  post({ type: 'end', stopped, decoder: { decoder, fastBatches: fastDecoderStats.fast, otherBatches: fastDecoderStats.fallback } });
  // Nothing more to receive: let the thread end.
  port.close();
}

run(workerData as KafkaTask).catch((error: unknown) => parentPort!.postMessage(workerFailure(error)));
