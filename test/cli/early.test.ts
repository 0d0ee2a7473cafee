// The CLI's early start (cli/early.ts): which command lines start the generator's thread before
// the commands load. A wrong guess costs an idle thread, so the cases that matter are that the
// common recordings of generated traffic get it and that other commands do not pay for one.

import { describe, expect, it } from 'vitest';
import { recordsGeneratedTraffic } from '../../cli/early.js';
import { WORKER_MIN_EVENTS } from '../../recorder/sources/synthetic.js';

const guess = (line: string): boolean => recordsGeneratedTraffic(line.split(' ').filter((a) => a !== ''), WORKER_MIN_EVENTS);

describe('the CLI starts the generator thread early', () => {
  it('for demo and for record of synthetic traffic (the default source)', () => {
    expect(guess('demo')).toBe(true);
    expect(guess('demo --events 2000000 --seed 7')).toBe(true);
    expect(guess('record --out t.tape')).toBe(true);
    expect(guess('record --source synthetic --events 1000000 --out t.tape')).toBe(true);
    expect(guess('record --source=synthetic --out t.tape --force')).toBe(true);
    expect(guess(`record --events ${WORKER_MIN_EVENTS} --out t.tape`)).toBe(true);
  });

  it('not for other sources, small runs on one thread, --pipeline off, help, or other commands', () => {
    expect(guess('record --source ndjson --input e.ndjson --out t.tape')).toBe(false);
    expect(guess('record --source=kafka --topic t --brokers 127.0.0.1:9092 --out t.tape')).toBe(false);
    expect(guess(`record --events ${WORKER_MIN_EVENTS - 1} --out t.tape`)).toBe(false);
    expect(guess('demo --events=1000')).toBe(false);
    expect(guess('record --pipeline off --out t.tape')).toBe(false);
    expect(guess('record --help')).toBe(false);
    expect(guess('demo -h')).toBe(false);
    for (const line of ['', '--version', 'replay t.tape', 'inspect t.tape', 'export t.tape --format ndjson', 'simulate']) expect(guess(line)).toBe(false);
  });
});
