// The flow control between a worker and the main thread (tape/threads.ts): SendWindow bounds
// the messages and the bytes a worker has sent and the main thread has not taken.

import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/cli.js';

/** Words of the shared control array: messages taken (main), stop, sends that returned and ready (the worker). */
const TAKEN = 0;
const STOP = 1;
const RETURNED = 2;
const READY = 3;
const WORDS = 4;

/** A worker that sends messages of `sizes` bytes through a SendWindow(maxMessages, maxBytes), counting each send that returned; once it has loaded the module. */
async function sender(control: Int32Array, sizes: readonly number[], maxMessages: number, maxBytes: number, port?: MessagePort): Promise<Worker> {
  // With a port: messages posted on it by send(), each handing over a buffer of `size` bytes
  // and counting 7 bytes more (as a reject's, which the post copies); else sentMessage(size).
  const code = `
    const { workerData } = require('node:worker_threads');
    import(${JSON.stringify(`${REPO}/dist/tape/threads.js`)}).then(({ SendWindow }) => {
      const control = workerData.control;
      const window = new SendWindow(control, ${TAKEN}, ${STOP}, workerData.maxMessages, workerData.maxBytes);
      Atomics.store(control, ${READY}, 1);
      for (const size of workerData.sizes) {
        if (workerData.port === undefined) window.sentMessage(size);
        else {
          const buffer = new ArrayBuffer(size);
          window.send(workerData.port, { buffer }, [buffer], 7);
        }
        Atomics.add(control, ${RETURNED}, 1);
        Atomics.notify(control, ${RETURNED});
      }
    });`;
  const worker = new Worker(code, { eval: true, workerData: { control, sizes, maxMessages, maxBytes, port }, transferList: port === undefined ? [] : [port] });
  const deadline = Date.now() + 20_000;
  while (Atomics.load(control, READY) === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(Atomics.load(control, READY), 'the sender thread started').toBe(1);
  return worker;
}

/**
 * Wait until exactly `n` sends have returned, then check that no more return for a while (the
 * worker is held back). Progress is awaited, however slow the machine; only the hold is timed.
 */
async function heldAt(control: Int32Array, n: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Atomics.load(control, RETURNED) < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(Atomics.load(control, RETURNED)).toBe(n);
  await new Promise((resolve) => setTimeout(resolve, 250));
  expect(Atomics.load(control, RETURNED)).toBe(n);
}

function take(control: Int32Array, n = 1): void {
  Atomics.add(control, TAKEN, n);
  Atomics.notify(control, TAKEN);
}

describe('SendWindow', () => {
  it('holds a worker back by bytes: it sends again only as the main thread takes what it sent', async () => {
    const control = new Int32Array(new SharedArrayBuffer(4 * WORDS));
    // 60-byte messages, at most 16 untaken and less than 100 bytes: one untaken at a time.
    const worker = await sender(control, [60, 60, 60, 60], 16, 100);
    try {
      // The first send returns (60 bytes untaken); the second waits (120).
      await heldAt(control, 1);
      take(control);
      await heldAt(control, 2);
      take(control);
      await heldAt(control, 3);
      take(control, 2);
      await heldAt(control, 4);
    } finally {
      await worker.terminate();
    }
  });

  it('sends a message larger than the bound once the others are taken, and bounds the count too', async () => {
    const control = new Int32Array(new SharedArrayBuffer(4 * WORDS));
    const worker = await sender(control, [10, 10, 500, 10, 10, 10, 10], 3, 100);
    try {
      // 10, 10: 20 bytes and 2 untaken; the 500-byte message is sent and waits for all three to be taken.
      await heldAt(control, 2);
      take(control, 2);
      await heldAt(control, 2);
      take(control);
      // Then small ones again, at most 3 untaken (the third send waits on the count, 30 bytes).
      await heldAt(control, 5);
      take(control);
      await heldAt(control, 6);
    } finally {
      await worker.terminate();
    }
  });

  it('send() counts the buffers it hands over, and the bytes it is told the post copies', async () => {
    const control = new Int32Array(new SharedArrayBuffer(4 * WORDS));
    const { port1, port2 } = new MessageChannel();
    const received: number[] = [];
    port1.on('message', (m: { buffer: ArrayBuffer }) => received.push(m.buffer.byteLength));
    // 1000-byte buffers (and 7 bytes copied), at most 16 untaken and less than 2007 bytes: the
    // second message makes 2014 bytes untaken and waits. (Counted after the post, which leaves
    // the buffer empty here, each would count 7 bytes and none would wait.)
    const worker = await sender(control, [1000, 1000, 1000, 1000], 16, 2007, port2);
    try {
      await heldAt(control, 1);
      take(control);
      await heldAt(control, 2);
      take(control, 2);
      await heldAt(control, 4);
      const deadline = Date.now() + 5_000;
      while (received.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      // Each buffer arrived whole: handed over, not copied or emptied before the post.
      expect(received).toEqual([1000, 1000, 1000, 1000]);
    } finally {
      port1.close();
      await worker.terminate();
    }
  });

  it('lets a worker go when asked to stop, whatever is untaken', async () => {
    const control = new Int32Array(new SharedArrayBuffer(4 * WORDS));
    const worker = await sender(control, [500, 500, 500], 16, 100);
    try {
      await heldAt(control, 0);
      Atomics.store(control, STOP, 1);
      Atomics.notify(control, TAKEN);
      await heldAt(control, 3);
    } finally {
      await worker.terminate();
    }
  });
});
