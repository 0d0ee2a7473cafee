// The reading side of `replay --to-kafka` (see republish.ts): reads the tape, decodes each
// event and renders its Kafka value (the event's JSON, or the codec's bytes), and posts the
// messages' parts packed in chunks, so that the main thread spends its time in the Kafka
// client. At most IN_FLIGHT chunks ahead of the main thread.

import { parentPort, workerData } from 'node:worker_threads';
import { TapedeckError } from '../engine/errors.js';
import { loadEngine } from '../tape/load-engine.js';
import { TapeReader } from '../tape/reader.js';
import { waitForRoom, workerFailure } from '../tape/threads.js';
import { ByteSink } from '../tape/varint.js';
import { CHUNK_EVENTS, IN_FLIGHT, type OutgoingChunk, type ReaderMessage, type ReaderTask } from './republish.js';

async function run(task: ReaderTask): Promise<void> {
  const port = parentPort!;
  const control = new Int32Array(task.control);
  const engine = await loadEngine(task.engineSpec);
  const codec = engine.codec;
  const reader = TapeReader.open(task.path);
  const encoder = new TextEncoder();
  let sent = 0;
  let chunk = newChunk();
  const bytes = new ByteSink(1 << 16);

  function newChunk(): Omit<OutgoingChunk, 'bytes'> & { count: number } {
    return {
      count: 0,
      seqs: new Float64Array(CHUNK_EVENTS),
      timestamps: new Float64Array(CHUNK_EVENTS),
      partitions: new Int32Array(CHUNK_EVENTS),
      keyLengths: new Int32Array(CHUNK_EVENTS),
      valueLengths: new Int32Array(CHUNK_EVENTS),
      headers: [],
    };
  }
  const send = (): void => {
    if (chunk.count === 0) return;
    const n = chunk.count;
    const message: OutgoingChunk = {
      seqs: chunk.seqs.slice(0, n),
      timestamps: chunk.timestamps.slice(0, n),
      partitions: chunk.partitions.slice(0, n),
      keyLengths: chunk.keyLengths.slice(0, n),
      valueLengths: chunk.valueLengths.slice(0, n),
      headers: chunk.headers,
      bytes: bytes.copy(),
    };
    const transfer = [message.seqs, message.timestamps, message.partitions, message.keyLengths, message.valueLengths, message.bytes].map((a) => a.buffer as ArrayBuffer);
    port.postMessage({ type: 'chunk', chunk: message } satisfies ReaderMessage, transfer);
    sent++;
    chunk.count = 0;
    chunk.headers = [];
    bytes.reset();
    waitForRoom(control, 0, sent, IN_FLIGHT, 1);
  };

  try {
    blocks: for (const cursor of reader.blocks(task.fromSeq)) {
      const data = cursor.bytes;
      while (reader.advance(cursor)) {
        if (cursor.seq < task.fromSeq) continue;
        if (cursor.seq > task.toSeq) break blocks;
        const i = chunk.count;
        chunk.seqs[i] = cursor.seq;
        chunk.timestamps[i] = cursor.timestampUs;
        chunk.partitions[i] = cursor.partition;
        if (cursor.keyOffset < 0) chunk.keyLengths[i] = -1;
        else {
          chunk.keyLengths[i] = cursor.keyLength;
          bytes.raw(data.subarray(cursor.keyOffset, cursor.keyOffset + cursor.keyLength));
        }
        if (task.valueFormat === 'codec') {
          chunk.valueLengths[i] = cursor.payloadLength;
          bytes.raw(cursor.payload());
        } else {
          let json: string;
          try {
            json = JSON.stringify(codec.toJSON(codec.decodeAt !== undefined ? codec.decodeAt(data, cursor.payloadOffset, cursor.payloadLength) : codec.decode(cursor.payload())));
          } catch (cause) {
            throw new TapedeckError('E_REPLAY_DECODE', `${task.path}: event ${cursor.seq} cannot be decoded by ${engine.name}'s codec: ${(cause as Error).message}`, { cause });
          }
          // At most 3 bytes of UTF-8 per UTF-16 unit.
          bytes.ensure(json.length * 3);
          const written = encoder.encodeInto(json, bytes.bytes.subarray(bytes.length)).written;
          bytes.length += written;
          chunk.valueLengths[i] = written;
        }
        if (cursor.headersOffset >= 0) {
          const headers = cursor.headers();
          if (headers.length > 0) chunk.headers.push([i, headers.map((h) => [Buffer.from(h.name).toString('utf8'), Uint8Array.from(h.value)] as [string, Uint8Array])]);
        }
        chunk.count++;
        if (chunk.count === CHUNK_EVENTS) send();
        if (Atomics.load(control, 1) !== 0) break blocks;
      }
    }
    send();
    port.postMessage({ type: 'end' } satisfies ReaderMessage);
  } finally {
    reader.close();
  }
}

run(workerData as ReaderTask).catch((error: unknown) => parentPort!.postMessage(workerFailure(error)));
