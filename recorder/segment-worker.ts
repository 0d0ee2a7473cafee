// One of the workers that parse an NDJSON file in parallel (see pipeline.ts, SegmentPipeline).
// The file, from the recording's start offset, is cut into segments of S bytes (SEGMENT_BYTES):
// segment k holds the lines that start in [start + k * S, start + (k + 1) * S).
// Worker j of K parses segments j, j + K, j + 2K, ... and sends each as chunks of at most
// CHUNK_ITEMS inputs: the accepted events packed in the block format (relative sequence
// numbers, positions = line numbers within the segment), the rejects with their index among
// the chunk's inputs, and the byte offset after every input. The main thread puts the
// segments back in order, numbers lines and events, applies, and builds the tape's blocks.

import { fstatSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockBuilder } from '../tape/block.js';
import { loadEngine } from '../tape/load-engine.js';
import { CONTROL_STOP_SEGMENTS, SEGMENT_CHUNK_ITEMS, SEGMENT_IN_FLIGHT, type SegmentMessage, type SegmentReject, type SegmentTask } from './pipeline.js';
import { waitForRoom, workerFailure } from '../tape/threads.js';
import { Redactor } from './redact.js';
import { isReject } from './source.js';
import { lineStartAtOrAfter, NdjsonSource, nextByteOffsetOf } from './sources/ndjson.js';

async function run(task: SegmentTask): Promise<void> {
  const port = parentPort!;
  const control = new Int32Array(task.control);
  const stopAt = CONTROL_STOP_SEGMENTS(task.workers);
  const engine = await loadEngine(task.engineSpec);
  const r = task.redaction;
  const redactor = r === null ? null : Redactor.fromParts(r);
  const size = fstatSync(task.fd).size;
  const base = task.from.byteOffset;
  let sent = 0;
  const post = (message: SegmentMessage, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

  for (let segment = task.worker; ; segment += task.workers) {
    if (Atomics.load(control, stopAt) !== 0) break;
    const rawStart = base + segment * task.segmentBytes;
    const start = segment === 0 ? base : lineStartAtOrAfter(task.fd, rawStart);
    if (start >= size && (segment > 0 || size === base)) {
      post({ type: 'end', worker: task.worker, segment });
      return;
    }
    const source = new NdjsonSource({
      input: task.input,
      fd: task.fd,
      codec: engine.codec,
      maxLineBytes: task.maxLineBytes,
      from: { byteOffset: start, line: 0 },
      until: base + (segment + 1) * task.segmentBytes,
      allowBom: segment === 0 && task.from.line === 0,
      keepRaw: task.keepRaw,
      blockingReads: true,
      redaction: redactor === null ? undefined : { transform: redactor, record: redactor.record },
    });
    const builder = new BlockBuilder();
    let items = 0;
    let nextOffsets = new Float64Array(SEGMENT_CHUNK_ITEMS);
    let rejects: SegmentReject[] = [];
    const send = (last: boolean): void => {
      const block = builder.eventCount > 0 ? builder.finish(0) : null;
      const offsets = nextOffsets.slice(0, items);
      post(
        { type: 'chunk', worker: task.worker, segment, block, nextOffsets: offsets, rejects, items, last },
        block === null ? [offsets.buffer] : [block.data.buffer as ArrayBuffer, offsets.buffer],
      );
      sent++;
      items = 0;
      nextOffsets = new Float64Array(SEGMENT_CHUNK_ITEMS);
      rejects = [];
      waitForRoom(control, task.worker, sent, SEGMENT_IN_FLIGHT, stopAt);
    };
    for await (const batch of source.batches()) {
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i];
        nextOffsets[items] = nextByteOffsetOf(item);
        if (isReject(item)) {
          const position = item.position as { line: number; byteOffset: number };
          rejects.push({ index: items, line: position.line, byteOffset: position.byteOffset, reasonCode: item.reasonCode, reason: item.reason, raw: item.raw, rawLength: item.rawLength });
        } else {
          builder.add(builder.eventCount, item);
        }
        items++;
        if (items === SEGMENT_CHUNK_ITEMS) send(false);
      }
    }
    send(true);
  }
}

run(workerData as SegmentTask).catch((error: unknown) => parentPort!.postMessage(workerFailure(error)));
