// A file renamed into place is on disk only once its folder is: the file's own sync covers its
// bytes, not the folder's entry naming it, which a power loss could take back. A power loss
// cannot be made here, so the tests watch the system calls (strace) and check their order: the
// new tape (or merged tape) renamed, then its folder synced, and for a new tape that before
// the first commit reaches its WAL. (SQLite syncs the folder too, when it first syncs a WAL file
// it created: for a durable source within the first commit, but after its writes, and for a
// relaxed one not before its first checkpoint; a merged tape, renamed after its last commit,
// had no sync after the rename at all.) A republish's position file is replaced the same way
// (written to FILE.writing, synced, renamed). .ci/run installs strace; in CI a missing strace
// fails these tests, locally they skip saying so (and the position file's without a broker).

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir, writeGeneratedNdjson } from '../support/cli.js';
import { createTopic, KAFKA_BROKERS, kafkaAvailable } from '../support/kafka.js';

const BIN = join(REPO, 'bin', 'tapedeck.js');

/** Why strace cannot watch the runs here, or null; in CI, strace not installed is an error. */
function straceMissing(): string | null {
  const r = spawnSync('strace', ['-qq', '-e', 'trace=none', 'true']);
  if (r.error !== undefined) {
    const why = `strace is not installed (apt-get install strace): ${r.error.message}`;
    if (process.env.CI) throw new Error(`the folder sync tests must run in CI: ${why}`);
    return why;
  }
  // A machine whose kernel refuses tracing (a container without ptrace) cannot run them at all.
  if (r.status !== 0) return `this machine refuses tracing: ${r.stderr.toString().trim()}`;
  return null;
}
const missing = straceMissing();
if (missing !== null) console.warn(`\n*** SKIPPING the folder sync tests: ${missing} ***\n`);
const run = missing === null ? describe : describe.skip;
/** Checked only where strace can watch: without a broker, the Kafka case skips saying so (in CI it fails). */
const withBroker = missing === null && (await kafkaAvailable());

/** The system calls of `tapedeck args` that rename, sync or write, with the paths of their descriptors (strace -y), in order. */
function traced(dir: string, args: readonly string[], input?: string): string[] {
  const log = join(dir, 'strace.log');
  const r = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=rename,renameat,renameat2,fsync,fdatasync,pwrite64,write', '-o', log, process.execPath, BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    input,
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(log, 'utf8').split('\n');
}

/** Index of the first line after `from` that matches `test`, or -1. */
function after(lines: readonly string[], from: number, test: (line: string) => boolean): number {
  for (let i = from + 1; i < lines.length; i++) if (test(lines[i])) return i;
  return -1;
}

run('a file put in place is followed by a sync of its folder', () => {
  it('a new tape: renamed from FILE.creating, then the folder synced, before the first commit of a durable source (stdin)', () => {
    const dir = tempDir();
    const ndjson = join(dir, 'events.ndjson');
    writeGeneratedNdjson(ndjson, 3000);
    const out = join(dir, 'stdin.tape');
    const lines = traced(dir, ['record', '--source', 'ndjson', '--input', '-', '--out', out], readFileSync(ndjson, 'utf8'));
    const renamed = lines.findIndex((l) => /rename/.test(l) && l.includes(`${out}.creating"`) && l.includes(`"${out}"`));
    expect(renamed, 'the rename of the new tape into place').toBeGreaterThanOrEqual(0);
    const folderSynced = after(lines, renamed, (l) => /\bfsync\(\d+<[^>]*>\)/.test(l) && l.includes(`fsync(`) && l.includes(`<${dir}>`));
    expect(folderSynced, 'a sync of the folder after the rename').toBeGreaterThan(renamed);
    const firstCommit = after(lines, renamed, (l) => /pwrite64\(\d+</.test(l) && l.includes(`<${out}-wal>`));
    expect(firstCommit, 'a commit to the tape').toBeGreaterThan(renamed);
    expect(folderSynced).toBeLessThan(firstCommit);
    expect(tapedeck(['verify', out]).status).toBe(0);
  });

  it('a merged tape: renamed from FILE.merging to --out, then the folder synced', () => {
    const dir = tempDir();
    const a = join(dir, 'a.tape');
    const b = join(dir, 'b.tape');
    expect(tapedeck(['record', '--events', '2000', '--seed', '1', '--out', a]).status).toBe(0);
    expect(tapedeck(['record', '--events', '2000', '--seed', '2', '--out', b]).status).toBe(0);
    const out = join(dir, 'merged.tape');
    const lines = traced(dir, ['merge', a, b, '--out', out]);
    const renamed = lines.findIndex((l) => /rename/.test(l) && l.includes(`"${out}.merging"`) && l.includes(`"${out}"`));
    expect(renamed, 'the rename of the merged tape into place').toBeGreaterThanOrEqual(0);
    const folderSynced = after(lines, renamed, (l) => l.includes('fsync(') && l.includes(`<${dir}>`));
    expect(folderSynced, 'a sync of the folder after the rename').toBeGreaterThan(renamed);
    expect(tapedeck(['verify', out]).status).toBe(0);
  });

  it.runIf(withBroker)('a republish position file: each version renamed from FILE.writing into place, then the folder synced', async () => {
    const dir = tempDir();
    const tape = join(dir, 'republish.tape');
    expect(tapedeck(['record', '--events', '20000', '--partitions', '4', '--seed', '5', '--out', tape]).status).toBe(0);
    const topic = await createTopic('folder-sync', 4);
    const positionFile = join(dir, 'republish.position.json');
    const lines = traced(dir, ['replay', tape, '--to-kafka', '--brokers', KAFKA_BROKERS.join(','), '--topic', topic, '--position-file', positionFile]);
    const isRename = (l: string): boolean => /rename/.test(l) && l.includes(`"${positionFile}.writing"`) && l.includes(`"${positionFile}"`);
    const renames = lines.flatMap((l, i) => (isRename(l) ? [i] : []));
    // At least the final one (the run's last acknowledged event); a short run may write only it.
    expect(renames.length, 'renames of the position file into place').toBeGreaterThanOrEqual(1);
    for (const [k, renamed] of renames.entries()) {
      const folderSynced = after(lines, renamed, (l) => l.includes('fsync(') && l.includes(`<${dir}>`));
      expect(folderSynced, `a sync of the folder after rename ${k + 1} of ${renames.length}`).toBeGreaterThan(renamed);
      if (k + 1 < renames.length) expect(folderSynced, `the folder synced before the next version replaces it`).toBeLessThan(renames[k + 1]);
    }
    const saved = JSON.parse(readFileSync(positionFile, 'utf8')) as { lastAckedSeq: number | null };
    expect(saved.lastAckedSeq).toBe(19_999);
  }, 180_000);
});
