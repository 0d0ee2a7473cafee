import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { WORLD_EVENT_KIND_NAMES, WorldEventKind } from '../../../engine/world/events.js';
import { DEFAULT_TRAFFIC_OPTIONS, trafficOptions, WorldTraffic, type TrafficOptions, type TrafficRecord } from '../../../engine/world/traffic.js';
import { REPO } from '../../support/cli.js';

function all(options: Partial<TrafficOptions>): TrafficRecord[] {
  const t = new WorldTraffic(options);
  const out: TrafficRecord[] = [];
  for (let r = t.next(); r !== null; r = t.next()) out.push(r);
  return out;
}

describe('synthetic world traffic', () => {
  it('is a pure function of its options', () => {
    expect(all({ seed: 5, events: 5000 })).toEqual(all({ seed: 5, events: 5000 }));
    expect(all({ seed: 6, events: 5000 })).not.toEqual(all({ seed: 5, events: 5000 }));
  });

  it('resumes exactly: skipTo(n) then next() gives event n of a straight run', () => {
    const straight = all({ seed: 3, events: 3000 });
    const t = new WorldTraffic({ seed: 3, events: 3000 });
    t.skipTo(1234);
    expect(t.next()).toEqual(straight[1234]);
  });

  it('advance() fills the same events in place as next() hands out, for every profile', () => {
    for (const profile of ['steady', 'ramp', 'burst', 'hot'] as const) {
      const options = { seed: 8, events: 20_000, players: 500, profile };
      const records = all(options);
      const t = new WorldTraffic(options);
      const filled: TrafficRecord[] = [];
      while (t.advance()) {
        filled.push({ index: t.position - 1, timestampUs: t.currentTimestampUs, partition: t.currentPartition, key: t.currentKey, event: { ...t.current } });
        // The key's place in keyBytes (what the recorder packs from) holds the same bytes.
        const packed = t.keyBytes.slice(t.currentKeyOffset, t.currentKeyOffset + t.currentKeyLength);
        if (!Buffer.from(packed).equals(Buffer.from(t.currentKey))) expect(packed).toEqual(t.currentKey);
      }
      expect(t.advance()).toBe(false);
      expect(filled).toEqual(records);
    }
  });

  it('keys events by player (or t<id> for spawns), keeps timestamps in order and partitions in range', () => {
    const records = all({ seed: 1, events: 20_000, partitions: 16 });
    let last = 0;
    for (const r of records) {
      const key = new TextDecoder().decode(r.key);
      expect(key).toBe(r.event.kind === WorldEventKind.spawn ? `t${r.event.id}` : String(r.event.id));
      expect(r.partition).toBeGreaterThanOrEqual(0);
      expect(r.partition).toBeLessThan(16);
      expect(r.timestampUs).toBeGreaterThanOrEqual(last);
      last = r.timestampUs;
    }
  });

  it('starts with joins, then follows the documented mix', () => {
    const records = all({ seed: 2, events: 200_000, players: 1000 });
    expect(records.slice(0, 1000).every((r) => r.event.kind === WorldEventKind.join)).toBe(true);
    const counts = new Map<string, number>();
    for (const r of records.slice(1000)) counts.set(WORLD_EVENT_KIND_NAMES[r.event.kind], (counts.get(WORLD_EVENT_KIND_NAMES[r.event.kind]) ?? 0) + 1);
    const share = (k: string) => (counts.get(k) ?? 0) / (records.length - 1000);
    expect(share('move')).toBeGreaterThan(0.45);
    expect(share('rotate')).toBeCloseTo(0.2, 1);
    expect(share('shoot')).toBeGreaterThan(0.1);
    expect(share('loot')).toBeGreaterThan(0.03);
    expect(share('leave')).toBeCloseTo(0.015, 2);
  });

  it('arrives at the given mean rate', () => {
    const records = all({ seed: 4, events: 100_000, ratePerSec: 250_000 });
    const seconds = (records[records.length - 1].timestampUs - records[0].timestampUs) / 1e6;
    expect(records.length / seconds).toBeGreaterThan(250_000 * 0.97);
    expect(records.length / seconds).toBeLessThan(250_000 * 1.03);
  });

  it('shapes the profiles: hot skews partitions, ramp speeds up, burst has 5x bursts', () => {
    const perPartition = (records: TrafficRecord[]) => {
      const c = new Array(64).fill(0);
      for (const r of records) c[r.partition]++;
      return c;
    };
    const hot = perPartition(all({ seed: 1, events: 50_000, profile: 'hot' }));
    const steady = perPartition(all({ seed: 1, events: 50_000, profile: 'steady' }));
    expect(hot[0]).toBeGreaterThan(4 * hot[63]);
    expect(steady[0]).toBeLessThan(2 * steady[63]);

    const ramp = all({ seed: 1, events: 100_000, profile: 'ramp', ratePerSec: 100_000 });
    const span = (rs: TrafficRecord[]) => rs[rs.length - 1].timestampUs - rs[0].timestampUs;
    expect(span(ramp.slice(0, 10_000))).toBeGreaterThan(3 * span(ramp.slice(-10_000)));

    const burst = all({ seed: 1, events: 140_000, profile: 'burst', ratePerSec: 10_000 });
    const inBurst = burst.filter((r) => (r.timestampUs - burst[0].timestampUs) % 1_000_000 < 100_000).length;
    // Each second (10 of them here): 100 ms at 5x and 900 ms at 1x, so 500 / 1400 of the events fall in bursts.
    expect(inBurst / burst.length).toBeCloseTo(500 / 1400, 1);
  });

  it('resolves its options against the defaults, into objects of one hidden class however many it makes', () => {
    expect(trafficOptions()).toEqual(DEFAULT_TRAFFIC_OPTIONS);
    expect(trafficOptions({ seed: 7, profile: 'hot' })).toEqual({ ...DEFAULT_TRAFFIC_OPTIONS, seed: 7, profile: 'hot' });
    // The generator's optimized code is specialised to the options' hidden class: one that
    // changes after some generators (as a spread's did at the ninth) throws that code away.
    // V8's %HaveSameMap, in a process of its own started with the flag that allows it.
    const code = `
      const { trafficOptions } = await import(${JSON.stringify(`${REPO}/dist/engine/world/traffic.js`)});
      const first = trafficOptions({ seed: 1, events: 300000 });
      const changed = [];
      for (let i = 1; i < 40; i++) if (!%HaveSameMap(first, trafficOptions({ seed: i, events: 300000 + i }))) changed.push(i);
      console.log(JSON.stringify(changed));`;
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(JSON.parse(out), 'the calls whose result had another hidden class than the first').toEqual([]);
  });
});
