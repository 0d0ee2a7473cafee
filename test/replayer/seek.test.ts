import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replayTape } from '../../replayer/replay.js';
import { TapeReader } from '../../tape/reader.js';
import { tapedeck, tempDir } from '../support/cli.js';

function tape(): string {
  const path = join(tempDir(), 't.tape');
  expect(tapedeck(['record', '--out', path, '--events', '30000', '--checkpoint-every', '1000', '--snapshot-every', '4000', '--block-events', '900']).status).toBe(0);
  return path;
}

describe('seek', () => {
  it('--from starts at the last snapshot before it, checks its digest, fast-forwards, and reaches the same final digest', () => {
    const path = tape();
    const full = replayTape(path);
    const part = replayTape(path, { fromSeq: 13_500 });
    expect(part).toMatchObject({ ok: true, fromSeq: 13_500, toSeq: 29_999, startedAtSeq: 12_000, fastForwarded: 1_500, events: 16_500 });
    expect(part.finalDigest).toBe(full.finalDigest);
    // The snapshot's digest and every checkpoint after it: 1 + 18.
    expect(part.checkpointsVerified).toBe(19);
    // Updates are counted for the range's events only, not for the fast-forward before it.
    const head = replayTape(path, { toSeq: 13_499 });
    expect(head.updatesEmitted + part.updatesEmitted).toBe(full.updatesEmitted);
    expect(replayTape(path, { fromSeq: 30_000 })).toMatchObject({ events: 0, updatesEmitted: 0 });
  });

  it('--to stops after that event; time bounds pick the events by timestamp', () => {
    const path = tape();
    const r = replayTape(path, { fromSeq: 5_000, toSeq: 6_999 });
    expect(r).toMatchObject({ ok: true, events: 2_000, toSeq: 6_999 });
    const reader = TapeReader.open(path);
    const times: number[] = [];
    for (const cursor of reader.blocks(0)) while (reader.advance(cursor)) times.push(cursor.timestampUs);
    reader.close();
    const t = times[20_000];
    const first = times.findIndex((x) => x >= t);
    const byTime = replayTape(path, { fromTimeUs: t, toTimeUs: times[25_000] });
    expect(byTime.fromSeq).toBe(first);
    expect(byTime.toSeq).toBe(times.length - 1 - [...times].reverse().findIndex((x) => x <= times[25_000]));
  });

  it('the CLI takes --from, --to and ISO times, and refuses a range past the end', () => {
    const path = tape();
    const r = tapedeck(['replay', path, '--from', '10000', '--to', '10999', '--json']);
    expect(r.status).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, events: 1000, startedAtSeq: 8000 });
    expect(tapedeck(['replay', path, '--from-time', '2026-01-01T00:00:00.02Z', '--json']).json()).toMatchObject({ ok: true });
    const past = tapedeck(['replay', path, '--from', '40000']);
    expect(past.status).toBe(2);
    expect(past.stderr).toMatch(/--from 40000 is past the end of the tape \(30000 events\)/);
    const bad = tapedeck(['replay', path, '--from-time', 'yesterday']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--from-time must be microseconds since the epoch or an ISO date-time/);
  });
});
