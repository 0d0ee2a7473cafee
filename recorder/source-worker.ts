// The recorder's source worker (see pipeline.ts): reads the source, encodes its events into
// blocks exactly as the main thread's builder would (less the position index and checksum,
// which the main thread adds as it applies them: completeBlock), and posts each block with the
// rejects and the source position that go into the same commit. The main thread applies the
// events (live checkpoints) and writes; this thread stays a bounded number of batches and bytes
// ahead (MAX_IN_FLIGHT, MAX_BYTES_IN_FLIGHT).
// The thread is kept for the process's next recording (pipeline.ts): each job comes as a
// message with its own port, and engines are loaded once.

import { parentPort, type MessagePort } from 'node:worker_threads';
import { BlockBuilder, isEncoded, type PackedBlock } from '../tape/block.js';
import type { RejectRecord } from '../tape/schema.js';
import { loadEngineOnce } from '../tape/load-engine.js';
import { CONTROL_CONSUMED, CONTROL_STOP, MAX_BYTES_IN_FLIGHT, MAX_IN_FLIGHT, rejectsFull, RING_MAX_SLOT_EVENTS, type PackedEventsRef, type PipelineMessage, type PipelineTask } from './pipeline.js';
import { SendWindow, workerFailure } from '../tape/threads.js';
import { isReject, type SourceItem } from './source.js';
import { sourceFromSpec } from './source-spec.js';
import { WorldEventRing } from './sources/world-traffic-packer.js';

/** A recording for this thread: the task, and the port its messages go to. */
export interface SourceJob {
  readonly task: PipelineTask;
  readonly port: MessagePort;
}

async function run(task: PipelineTask, port: MessagePort): Promise<void> {
  const control = new Int32Array(task.control);
  const engine = await loadEngineOnce(task.engineSpec);
  const source = sourceFromSpec(task.spec, engine);
  const builder = new BlockBuilder({ packed: true });
  let seq = task.startSeq;
  let blockNo = task.firstBlockNo;
  let read = task.read;
  let quarantined = task.quarantined;
  let rejects: RejectRecord[] = [];
  /** Bytes of raw input the rejects to send hold. */
  let rejectBytes = 0;
  let lastItem: SourceItem | null = null;
  const fast = source.packBlock !== undefined && source.resumePosition !== undefined;
  // At most MAX_IN_FLIGHT batches, or MAX_BYTES_IN_FLIGHT of their blocks and rejects, ahead of
  // the main thread (or until told to stop).
  const window = new SendWindow(control, CONTROL_CONSUMED, CONTROL_STOP, MAX_IN_FLIGHT, MAX_BYTES_IN_FLIGHT);
  let stopped = false;

  const post = (message: PipelineMessage): void => port.postMessage(message);
  const send = (packed: PackedBlock | null = null, events: PackedEventsRef | null = null): void => {
    const block = packed ?? (builder.eventCount > 0 ? builder.finishPacked(blockNo++) : null);
    if (block === null && rejects.length === 0) return;
    const message: PipelineMessage = {
      type: 'batch',
      block,
      rejects,
      read,
      quarantined,
      position: fast ? source.resumePosition!() : lastItem === null ? undefined : source.resumeAfter(lastItem),
      events,
    };
    const sentRejectBytes = rejectBytes;
    rejects = [];
    rejectBytes = 0;
    const transfer = block === null ? [] : [block.data.buffer as ArrayBuffer];
    if (block !== null && isEncoded(block)) transfer.push(block.sources.buffer as ArrayBuffer);
    window.send(port, message, transfer, sentRejectBytes);
  };

  /** Asked to stop (signal, stop condition): the source ends after what it is reading now. */
  const stopIfAsked = (): void => {
    if (!stopped && Atomics.load(control, CONTROL_STOP) !== 0) {
      stopped = true;
      source.stop();
    }
  };

  /** The ring the source's blocks' events go into as numbers, made on first use (see WorldEventRing). */
  let ring: WorldEventRing | null = null;
  let ringSent = false;
  const packedEvents = (block: PackedBlock): PackedEventsRef | null => {
    if (!task.eventsAsNumbers || source.packedEvents === undefined || task.blockEvents > RING_MAX_SLOT_EVENTS) return null;
    ring ??= WorldEventRing.create(task.blockEvents, MAX_IN_FLIGHT);
    const slot = block.blockNo % ring.slots;
    const count = source.packedEvents(ring, slot);
    if (count < 0) return null;
    const first = !ringSent;
    ringSent = true;
    return { ring: first ? ring.buffer : undefined, slotEvents: ring.slotEvents, slot, count };
  };

  if (fast) {
    // A source that packs its events itself (the generator): a block at a time.
    for (;;) {
      const block = source.packBlock!(seq, task.blockEvents, blockNo);
      if (block === null) break;
      blockNo++;
      seq += block.eventCount;
      read += block.eventCount;
      send(block, packedEvents(block));
      stopIfAsked();
    }
  } else {
    for await (const batch of source.batches()) {
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i];
        if (isReject(item)) {
          if (!task.quarantine) {
            // What came before the bad input is committed; then the recorder stops on it.
            send();
            post({ type: 'strict-reject', reject: item });
            return;
          }
          read++;
          quarantined++;
          rejects.push({ nextSeq: seq, position: item.position, reasonCode: item.reasonCode, reason: item.reason, rawLength: item.rawLength, raw: item.raw });
          rejectBytes += item.raw?.length ?? 0;
          lastItem = item;
          if (rejectsFull(rejects.length, rejectBytes)) send();
          continue;
        }
        builder.add(seq, item);
        seq++;
        read++;
        lastItem = item;
        if (builder.full(task.blockEvents)) send();
      }
      stopIfAsked();
    }
  }
  send();
  post({ type: 'end', stopped });
}

parentPort!.on('message', (job: SourceJob) => {
  run(job.task, job.port).catch((error: unknown) => job.port.postMessage(workerFailure(error)));
});
