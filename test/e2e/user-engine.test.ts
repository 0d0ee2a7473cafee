// A user's engine, loaded by path from outside the package's sources, runs through the same
// record and replay as the built-in engine.

import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

function userEngineDir(): string {
  const dir = tempDir('tapedeck-user-engine-');
  copyFileSync(join(REPO, 'examples', 'counter-engine.mjs'), join(dir, 'counter-engine.mjs'));
  return dir;
}

describe('a user engine loaded by path', () => {
  it('runs through demo: record with live checkpoints, replay, every checkpoint verified', () => {
    const dir = userEngineDir();
    const r = tapedeck(['demo', '--engine', join(dir, 'counter-engine.mjs'), '--events', '20000', '--checkpoint-every', '1000', '--json', '--out', join(dir, 'c.tape')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ok: true, events: 20000, checkpointsVerified: 20, mismatches: 0, engine: { name: 'counter' } });
  });

  it('records and replays through the CLI; a tape of an engine that is not built in needs --engine', () => {
    const dir = userEngineDir();
    const engine = join(dir, 'counter-engine.mjs');
    const tape = join(dir, 'c.tape');
    expect(tapedeck(['record', '--engine', engine, '--out', tape, '--events', '5000']).status).toBe(0);
    const ok = tapedeck(['replay', tape, '--engine', engine, '--json']);
    expect(ok.status).toBe(0);
    expect(ok.json()).toMatchObject({ ok: true, events: 5000, mismatches: 0 });
    const without = tapedeck(['replay', tape]);
    expect(without.status).toBe(2);
    expect(without.stderr).toMatch(/recorded with engine "counter", which is not built in; pass --engine/);
    // Given an engine of another codec, replay refuses at the first event (exit 2), naming both
    // codecs and the engine the tape wants, both ways round.
    const world = tapedeck(['replay', tape, '--engine', 'world']);
    expect(world.status).toBe(2);
    expect(world.stderr).toMatch(/E_REPLAY_DECODE.*event 0 \(block 0\) cannot be decoded by engine world's codec \(world-binary\/1; the tape was written with json\).*The tape was recorded with engine "counter": to replay it with that engine, pass --engine PATH to its module/);
    const worldTape = join(dir, 'w.tape');
    expect(tapedeck(['record', '--out', worldTape, '--events', '2000']).status).toBe(0);
    const counter = tapedeck(['replay', worldTape, '--engine', engine]);
    expect(counter.status).toBe(2);
    expect(counter.stderr).toMatch(/E_REPLAY_DECODE.*cannot be decoded by engine counter's codec \(json; the tape was written with world-binary\/1\).*recorded with engine "world": to replay it with that engine, leave out --engine \(it is built in\)/);
  });

  it('exports a tape of JSON events without its engine module, as with it; a tape of a codec of its own needs --engine', () => {
    const dir = userEngineDir();
    const engine = join(dir, 'counter-engine.mjs');
    const tape = join(dir, 'c.tape');
    expect(tapedeck(['record', '--engine', engine, '--out', tape, '--events', '3000']).status).toBe(0);
    const withEngine = tapedeck(['export', tape, '--engine', engine]);
    expect(withEngine.status, withEngine.stderr).toBe(0);
    const without = tapedeck(['export', tape]);
    expect(without.status, without.stderr).toBe(0);
    expect(without.stdout).toBe(withEngine.stdout);
    expect(without.stdout.split('\n').filter((line) => line !== '')).toHaveLength(3000);
    // The lines record back under the engine into the same events.
    writeFileSync(join(dir, 'c.ndjson'), without.stdout);
    expect(tapedeck(['record', '--engine', engine, '--source', 'ndjson', '--input', join(dir, 'c.ndjson'), '--out', join(dir, 'back.tape')]).status).toBe(0);
    expect(tapedeck(['export', join(dir, 'back.tape')]).stdout).toBe(without.stdout);

    // The same engine with a binary codec of its own: its events are not JSON, and only its module can decode them.
    const binary = readFileSync(engine, 'utf8').replace(
      '  init(options) {',
      [
        '  codec: {',
        "    name: 'counter-binary/1',",
        "    encode: (e) => new TextEncoder().encode(`${e.type}:${e.payload.amount}`),",
        "    decode: (b) => { const [type, amount] = new TextDecoder().decode(b).split(':'); return { type, payload: { amount: Number(amount) } }; },",
        '    toJSON: (e) => e,',
        '    fromJSON: (j) => j,',
        '  },',
        '',
        '  init(options) {',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'counter-binary.mjs'), binary);
    const binaryTape = join(dir, 'b.tape');
    expect(tapedeck(['record', '--engine', join(dir, 'counter-binary.mjs'), '--out', binaryTape, '--events', '3000']).status).toBe(0);
    const refused = tapedeck(['export', binaryTape]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/recorded with engine "counter", which is not built in; pass --engine PATH/);
    const decoded = tapedeck(['export', binaryTape, '--engine', join(dir, 'counter-binary.mjs')]);
    expect(decoded.status, decoded.stderr).toBe(0);
    expect(decoded.stdout).toBe(without.stdout);
  });

  it('replay exits 1 and reports the mismatching checkpoints when the engine behaves differently', () => {
    const dir = userEngineDir();
    const tape = join(dir, 'c.tape');
    expect(tapedeck(['record', '--engine', join(dir, 'counter-engine.mjs'), '--out', tape, '--events', '5000', '--checkpoint-every', '1000']).status).toBe(0);
    // A "new build" that counts audits twice from event 2500 on.
    const source = readFileSync(join(dir, 'counter-engine.mjs'), 'utf8').replace(
      'state.total += event.payload.amount;',
      'state.total += event.payload.amount;\n    if (ctx.seq >= 2500 && event.type === "audit") state.counts.audit += 1;',
    );
    writeFileSync(join(dir, 'counter-v2.mjs'), source);
    const r = tapedeck(['replay', tape, '--engine', join(dir, 'counter-v2.mjs'), '--json']);
    expect(r.status).toBe(1);
    const report = r.json<{ ok: boolean; mismatches: number; mismatchList: { nextSeq: number }[] }>();
    expect(report.ok).toBe(false);
    expect(report.mismatchList.map((m) => m.nextSeq)).toEqual([3000, 4000, 5000]);
  });

  it('runs an engine written as a class (methods on its prototype) as the same engine written as an object', () => {
    const dir = userEngineDir();
    const object = join(dir, 'counter-engine.mjs');
    // The example's methods moved into a class, and an instance exported: its methods and the
    // field they read are found through the prototype (a copy of the object's own properties
    // had none of them: `generate` read as missing).
    const source = readFileSync(object, 'utf8');
    const body = source.slice(source.indexOf('export default {') + 'export default {'.length, source.lastIndexOf('};'));
    const methods = body
      .replace(/^  name: 'counter',\n  version: '1.0.0',\n/m, '')
      .replace(/^  \},$/gm, '  }')
      .replace('return state.total < 0', 'return state.total < this.floor');
    writeFileSync(join(dir, 'counter-class.mjs'), `class Counter {\n  name = 'counter';\n  version = '1.0.0';\n  floor = 0;\n${methods}}\nexport default new Counter();\n`);
    const tapes = { object: join(dir, 'object.tape'), klass: join(dir, 'class.tape') };
    expect(tapedeck(['record', '--engine', object, '--out', tapes.object, '--events', '3000', '--json']).status).toBe(0);
    const recorded = tapedeck(['record', '--engine', join(dir, 'counter-class.mjs'), '--out', tapes.klass, '--events', '3000', '--json']);
    expect(recorded.status, recorded.stderr).toBe(0);
    const replayed = tapedeck(['replay', tapes.klass, '--engine', join(dir, 'counter-class.mjs'), '--paranoid', '--json']);
    expect(replayed.status, replayed.stderr).toBe(0);
    expect(replayed.json()).toMatchObject({ ok: true, events: 3000, mismatches: 0 });
    // The same events and digests as the object's.
    expect(tapedeck(['export', tapes.klass]).stdout).toBe(tapedeck(['export', tapes.object]).stdout);
    expect(recorded.json<{ finalDigest: string }>().finalDigest).toBe(tapedeck(['replay', tapes.object, '--engine', object, '--json']).json<{ finalDigest: string }>().finalDigest);
  });

  it('refuses an engine whose digest() returns something else than a string, naming what it returned', () => {
    const dir = userEngineDir();
    const source = readFileSync(join(dir, 'counter-engine.mjs'), 'utf8');
    for (const [name, returned, shown] of [
      ['number', 'return state.total;', /digest\(\) returned a number \(\d+\); it must return a string/],
      ['missing', 'return undefined;', /digest\(\) returned undefined; it must return a string/],
    ] as const) {
      const module = join(dir, `counter-${name}.mjs`);
      writeFileSync(module, source.replace('return `${state.total};${counts}`;', returned));
      // Before: a number was stored as its digits but checksummed as a number, so the tape
      // recorded (exit 0) and every command then refused it as damaged; undefined failed the
      // first commit as if another recording had written the tape.
      const r = tapedeck(['record', '--engine', module, '--out', join(dir, `${name}.tape`), '--events', '3000', '--checkpoint-every', '1000']);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/E_ENGINE_SHAPE/);
      expect(r.stderr).toMatch(shown);
      expect(r.stderr).not.toMatch(/another recording/);
    }
  });

  it('refuses an engine whose snapshot() or codec.encode() returns something else than bytes, naming it', () => {
    const dir = userEngineDir();
    const source = readFileSync(join(dir, 'counter-engine.mjs'), 'utf8');
    const snapshotText = join(dir, 'counter-snapshot-text.mjs');
    writeFileSync(snapshotText, source.replace('return new TextEncoder().encode(JSON.stringify(state));', 'return JSON.stringify(state);'));
    const encodeText = join(dir, 'counter-encode-text.mjs');
    writeFileSync(
      encodeText,
      source.replace(
        '  init(options) {',
        "  codec: { name: 'counter-text', encode: (e) => JSON.stringify(e), decode: (b) => JSON.parse(new TextDecoder().decode(b)), toJSON: (e) => e, fromJSON: (j) => j },\n\n  init(options) {",
      ),
    );
    // Before: a snapshot given as text was stored as text, and verify and replay then refused
    // the tape as damaged; events encoded as text were stored as bytes of zero, unreadable. Both
    // recordings exited 0. Recorded on this thread (3,000 events) and on the source worker's.
    for (const events of ['3000', '300000']) {
      const snap = tapedeck(['record', '--engine', snapshotText, '--out', join(dir, `s${events}.tape`), '--events', events, '--snapshot-every', '1000']);
      expect(snap.status, snap.stderr).toBe(2);
      expect(snap.stderr).toMatch(/E_ENGINE_SHAPE.*counter-snapshot-text\.mjs: snapshot\(\) returned a string \(\{"counts".*\); it must return a Uint8Array/);
      const enc = tapedeck(['record', '--engine', encodeText, '--out', join(dir, `e${events}.tape`), '--events', events]);
      expect(enc.status, enc.stderr).toBe(2);
      expect(enc.stderr).toMatch(/E_ENGINE_SHAPE.*counter-encode-text\.mjs: codec\.encode\(\) returned a string \(\{"type".*\); it must return a Uint8Array/);
    }
  });

  it('refuses an engine whose generate() gives a partition that is not an integer in [0, 2^31 - 1], naming the event', () => {
    const dir = userEngineDir();
    const source = readFileSync(join(dir, 'counter-engine.mjs'), 'utf8');
    // Before: -1 and 1.5 were packed into blocks that verify and replay then called damaged
    // (exit 0 from the recording); an omitted partition failed the first commit with SQLite's
    // NOT NULL; 2^40 recorded a tape whose export the NDJSON recorder refuses.
    for (const [name, partition, shown] of [
      ['negative', '-1', /a number \(-1\)/],
      ['fraction', 'index === 7 ? 1.5 : index % 4', /event 7 the partition a number \(1\.5\)/],
      ['missing', 'undefined', /the partition undefined/],
      ['too-large', '2 ** 40', /a number \(1099511627776\)/],
    ] as const) {
      const module = join(dir, `counter-${name}.mjs`);
      writeFileSync(module, source.replace('partition: index % 4,', `partition: ${partition},`));
      for (const events of ['3000', '300000']) {
        const r = tapedeck(['record', '--engine', module, '--out', join(dir, `${name}-${events}.tape`), '--events', events]);
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/E_ENGINE_SHAPE.*engine "counter": generate\(\) gave event \d+ the partition .*; it must be an integer in \[0, 2147483647\]/);
        expect(r.stderr).toMatch(shown);
      }
    }
  });

  it('explains what is missing from a module that is not an engine', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'half.mjs'), 'export default { name: "half", version: "1", init() { return 0; } };\n');
    const r = tapedeck(['demo', '--engine', join(dir, 'half.mjs'), '--events', '10']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/is not a valid engine: `apply` must be a function; `digest` must be a function/);
  });
});
