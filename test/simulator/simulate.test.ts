// `tapedeck simulate` and tapedeck/testing: the incident is found and shrunk to a tape that
// replay reproduces; the engines pass the properties they claim; the same seed gives the same
// counterexample; and each property catches the bug it is for.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../engine/types.js';
import { worldEngine } from '../../engine/world/index.js';
import { assertEngineProperties, engineProperty, fc, SimulationFailedError } from '../../testing.js';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

const BUG = join(REPO, 'fixtures/engines/world-duplicate-spawn-bug.mjs');
const KV = join(REPO, 'fixtures/engines/kv-lww.mjs');
const KV_BUG = join(REPO, 'fixtures/engines/kv-arrival-wins.mjs');
/** The seed CI uses for these runs: fixed, so that CI's outcome does not depend on luck. */
const CI_SEED = '20261128';

interface Report {
  ok: boolean;
  seed: number;
  runsDone: number;
  properties: string[];
  twoProcesses: { compared: number; ok: boolean } | null;
  failure: null | {
    property: string;
    message: string;
    seq: number | null;
    events: number;
    faults: string[];
    path: string | null;
    tape: string | null;
    commands: { rerun: string; replay: string | null };
  };
}

const run = (args: string[], cwd?: string) => tapedeck(['simulate', ...args, '--json'], { cwd });

describe('tapedeck simulate', () => {
  it('finds the incident engine with duplicate faults, shrinks it to a short tape, and replay exits 1 naming the invariant', () => {
    const out = join(tempDir(), 'out');
    const r = run(['--engine', BUG, '--faults', 'dup', '--seed', CI_SEED, '--out', out]);
    expect(r.status, r.stderr).toBe(1);
    const report = r.json<Report>();
    expect(report.runsDone).toBeLessThanOrEqual(500); // the default number of runs
    const f = report.failure!;
    expect(f.property).toBe('invariants');
    expect(f.message).toMatch(/treasure-owner-mismatch|treasure-double-owner|treasure-not-conserved/);
    expect(f.events).toBeLessThanOrEqual(30);
    expect(f.tape).not.toBeNull();
    expect(existsSync(f.tape!)).toBe(true);
    const replay = tapedeck(['replay', f.tape!, '--engine', BUG, '--paranoid']);
    expect(replay.status).toBe(1);
    expect(replay.stdout).toMatch(/VIOLATION after event \d+: treasure-/);
    // The printed commands run as printed.
    expect(f.commands.replay).toBe(`npx tapedeck replay ${f.tape} --engine ${BUG} --paranoid`);
    const rerun = f.commands.rerun.replace(/^npx tapedeck /, '').split(' ');
    const again = tapedeck([...rerun, '--json']);
    expect(again.status).toBe(1);
    expect(again.json<Report>().failure).toMatchObject({ property: f.property, message: f.message, events: f.events, faults: f.faults });
    // Human output: the seed, the path and both commands.
    const human = tapedeck(['simulate', '--engine', BUG, '--faults', 'dup', '--seed', CI_SEED, '--out', out]).stdout;
    expect(human).toContain(`seed ${CI_SEED}, path ${f.path}`);
    expect(human).toContain('re-run this exact case:');
    expect(human).toContain(f.commands.replay!);
  });

  it('gives the same outcome and the same counterexample for the same seed', () => {
    const a = run(['--engine', BUG, '--faults', 'dup,reorder', '--seed', '99', '--out', join(tempDir(), 'a')]).json<Report>();
    const b = run(['--engine', BUG, '--faults', 'dup,reorder', '--seed', '99', '--out', join(tempDir(), 'b')]).json<Report>();
    expect(a.ok).toBe(b.ok);
    const strip = (f: Report['failure']) => f && { ...f, tape: null, commands: null };
    expect(strip(a.failure)).toEqual(strip(b.failure));
    expect(a.runsDone).toBe(b.runsDone);
  });

  it('the reference world engine holds every property it claims, under every fault, for the CI seed (two processes agree)', () => {
    const r = run(['--engine', 'world', '--faults', 'dup,drop,reorder,delay,skew,rebalance', '--seed', CI_SEED]);
    expect(r.status, r.stdout).toBe(0);
    const report = r.json<Report>();
    expect(report).toMatchObject({ ok: true, runsDone: 500, properties: ['determinism', 'snapshot', 'invariants', 'transient-events'], failure: null });
    expect(report.twoProcesses).toEqual({ compared: 50, ok: true, firstDifference: null });
  });

  it('an engine that claims idempotence and convergence is held to them: kv-lww passes, the arrival-wins build fails each', () => {
    const ok = run(['--engine', KV, '--faults', 'dup,drop,reorder,delay,skew,rebalance', '--seed', CI_SEED]);
    expect(ok.status, ok.stdout).toBe(0);
    expect(ok.json<Report>().properties).toEqual(['determinism', 'snapshot', 'invariants', 'idempotence', 'convergence']);
    for (const property of ['idempotence', 'convergence']) {
      const bad = run(['--engine', KV_BUG, '--properties', property, '--seed', CI_SEED, '--out', join(tempDir(), property)]);
      expect(bad.status).toBe(1);
      const f = bad.json<Report>().failure!;
      expect(f.property).toBe(property);
      expect(f.events).toBeLessThanOrEqual(10);
    }
  });

  it('catches an engine that reads the wall clock (determinism) and one whose snapshot loses state (snapshot)', () => {
    const dir = tempDir();
    const clock = join(dir, 'clock.mjs');
    writeFileSync(clock, `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/index.js')).href)};
export default { ...worldEngine, version: 'clock', apply(s, e, ctx) { if (e.kind === 3) Date.now(); return worldEngine.apply(s, e, ctx); } };\n`);
    const d = run(['--engine', clock, '--seed', '5', '--properties', 'determinism', '--out', dir]).json<Report>();
    expect(d.failure).toMatchObject({ property: 'determinism' });
    expect(d.failure!.message).toMatch(/Date\.now\(\)/);
    const forgetful = join(dir, 'forgetful.mjs');
    writeFileSync(forgetful, `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/index.js')).href)};
export default { ...worldEngine, version: 'forgetful', restore(bytes) { const s = worldEngine.restore(bytes); s.playerX.fill(0); return s; } };\n`);
    const s = run(['--engine', forgetful, '--seed', '5', '--properties', 'snapshot', '--out', dir]).json<Report>();
    expect(s.failure).toMatchObject({ property: 'snapshot' });
  });

  it('catches an engine that declares transientEvents but keeps the events it is given (transient-events)', () => {
    const dir = tempDir();
    const keeper = join(dir, 'keeper.mjs');
    // Keeps the first event object it sees, and its digest reads it: with every event decoded into one object, that object is the last event.
    writeFileSync(keeper, `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/index.js')).href)};
const first = new WeakMap();
export default { ...worldEngine, version: 'keeper', apply(s, e, ctx) { if (!first.has(s)) first.set(s, e); return worldEngine.apply(s, e, ctx); },
  digest(s) { return worldEngine.digest(s) + ':' + (first.get(s)?.kind ?? '-'); } };\n`);
    const report = run(['--engine', keeper, '--seed', '5', '--out', dir]).json<Report>();
    expect(report.properties).toContain('transient-events');
    expect(report.failure).toMatchObject({ property: 'transient-events' });
    expect(report.failure!.message).toMatch(/apply keeps events it is given, so the engine must not declare transientEvents/);
    expect(report.failure!.events).toBeLessThanOrEqual(3);
    // Asked of an engine whose codec cannot decode into an object: a usage error, not a pass.
    const usage = tapedeck(['simulate', '--engine', KV, '--properties', 'transient-events']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/the transient-events property needs a codec with decodeInto; engine kv-lww's codec json has none/);
  });

  it('checks a latency budget under a service-time model, and mutates a recorded tape with --from-tape', () => {
    const latency = run(['--engine', 'world', '--seed', '4', '--service-time', 'fixed:300us', '--p99', '1ms', '--runs', '200', '--out', tempDir()]).json<Report>();
    expect(latency.failure).toMatchObject({ property: 'latency' });
    expect(latency.failure!.commands.rerun).toContain('--service-time fixed:300us --p99 1ms');
    const fromTape = run(['--engine', BUG, '--from-tape', join(REPO, 'fixtures/incident.tape'), '--faults', 'dup', '--seed', CI_SEED, '--out', tempDir()]).json<Report>();
    expect(fromTape.failure).toMatchObject({ property: 'invariants' });
    expect(fromTape.failure!.events).toBeLessThanOrEqual(30);
    expect(run(['--engine', 'world', '--from-tape', join(REPO, 'fixtures/incident.tape'), '--faults', 'dup,reorder', '--seed', CI_SEED, '--runs', '100']).json<Report>().ok).toBe(true);
  });

  it('a counterexample given back as --from-tape, with its seed and --out, is kept: the one found in it is written beside it', () => {
    const out = join(tempDir(), 'out');
    const first = run(['--engine', BUG, '--faults', 'dup', '--seed', CI_SEED, '--out', out]).json<Report>().failure!;
    const before = readFileSync(first.tape!);
    const again = run(['--engine', BUG, '--faults', 'dup', '--seed', CI_SEED, '--out', out, '--from-tape', first.tape!]);
    expect(again.status, again.stderr).toBe(1);
    const second = again.json<Report>().failure!;
    expect(second.tape).toBe(first.tape!.replace(/\.tape$/, '-2.tape'));
    expect(readFileSync(first.tape!)).toEqual(before);
    expect(tapedeck(['replay', second.tape!, '--engine', BUG, '--paranoid']).status).toBe(1);
  });

  it('rejects unknown faults and properties, and engines without simulation support, with exit 2', () => {
    expect(tapedeck(['simulate', '--faults', 'dup,teleport']).stderr).toMatch(/--faults: unknown "teleport"; choose from dup, drop, reorder/);
    expect(tapedeck(['simulate', '--properties', 'speed']).status).toBe(2);
    const dir = tempDir();
    const plain = join(dir, 'plain.mjs');
    writeFileSync(plain, `import { worldEngine } from ${JSON.stringify(pathToFileURL(join(REPO, 'dist/index.js')).href)};\nexport default { ...worldEngine, name: 'plain' };\n`);
    const r = tapedeck(['simulate', '--engine', plain]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/has no simulation support: export a `simulation` object/);
  });
});

describe('tapedeck/testing', () => {
  it('assertEngineProperties throws with the report for a falsified property, and passes for a sound engine', async () => {
    const bug = (await import(pathToFileURL(BUG).href)).default as Engine;
    const out = tempDir();
    const error = await assertEngineProperties(bug, { seed: Number(CI_SEED), faults: ['dup'], outDir: out }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SimulationFailedError);
    expect((error as Error).message).toMatch(/invariants falsified for world 1\.0\.0-duplicate-spawn-bug: after event \d+/);
    expect((error as Error).message).toMatch(new RegExp(`seed ${CI_SEED}, path [\\d:]+`));
    const ok = await assertEngineProperties(worldEngine as unknown as Engine, { seed: Number(CI_SEED), faults: ['dup', 'reorder'], runs: 100 });
    expect(ok.ok).toBe(true);
  });

  it('engineProperty plugs into fast-check, whose report carries the seed and path', async () => {
    const kv = (await import(pathToFileURL(KV).href)).default as Engine;
    fc.assert(engineProperty(kv, { faults: ['dup', 'reorder', 'rebalance'] }), { seed: 7, numRuns: 100 });
    const kvBug = (await import(pathToFileURL(KV_BUG).href)).default as Engine;
    let thrown: Error | null = null;
    try {
      fc.assert(engineProperty(kvBug, { properties: ['convergence'] }), { seed: 7, numRuns: 100 });
    } catch (error) {
      thrown = error as Error;
    }
    expect(thrown?.message).toMatch(/seed: 7, path: "[\d:]+"/);
    expect(String(thrown?.cause)).toMatch(/convergence: another interleaving of the partitions/);
  });
});
