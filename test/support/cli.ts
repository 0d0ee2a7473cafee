// Run the built `tapedeck` binary in a child process, as a user would.

import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns, type StdioOptions } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(REPO, 'bin', 'tapedeck.js');

export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The last stdout line parsed as JSON (for --json runs). */
  json<T = Record<string, unknown>>(): T;
}

export interface TapedeckRunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  readonly umask?: string;
  /**
   * The largest file the process may write, in `ulimit -f` blocks (512 bytes in /bin/sh); a
   * write past it fails with EFBIG (SIGXFSZ is ignored), as a write to a full disk would.
   */
  readonly fileSizeLimitBlocks?: number;
  /** Kill the process after this long (spawnSync's timeout; status is then -1). */
  readonly timeoutMs?: number;
  /** What the process reads on stdin (default: nothing, stdin closed at once). */
  readonly input?: string | Buffer;
  /** A file the process reads as its stdin, redirected (`< FILE`), instead of `input`. */
  readonly stdinFile?: string;
  /**
   * File modes bind the process as they bind any user: run as root (CI, these machines), it is
   * started through setpriv without the capabilities that let root read and enter anything.
   */
  readonly permissionsApply?: boolean;
}

export function tapedeck(args: readonly string[], options: TapedeckRunOptions = {}): CliResult {
  if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` (npm test does it first)');
  const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
  // With a umask or a file size limit: through sh, which sets them and then becomes node.
  const shell = [
    ...(options.umask === undefined ? [] : [`umask ${options.umask}`]),
    ...(options.fileSizeLimitBlocks === undefined ? [] : ["trap '' XFSZ", `ulimit -f ${options.fileSizeLimitBlocks}`]),
  ];
  let [command, argv] =
    shell.length === 0 ? [process.execPath, [BIN, ...args]] : ['/bin/sh', ['-c', `${shell.join('; ')}; exec "$0" "$@"`, process.execPath, BIN, ...args]];
  if (options.permissionsApply === true && process.getuid?.() === 0) [command, argv] = ['setpriv', ['--bounding-set', '-dac_override,-dac_read_search', command, ...argv]];
  const stdinFd = options.stdinFile === undefined ? undefined : openSync(options.stdinFile, 'r');
  let r: SpawnSyncReturns<string>;
  try {
    const stdio: StdioOptions | undefined = stdinFd === undefined ? undefined : [stdinFd, 'pipe', 'pipe'];
    r = spawnSync(command, argv, { cwd: options.cwd ?? REPO, encoding: 'utf8', maxBuffer: 64 << 20, env, timeout: options.timeoutMs, input: options.input, stdio });
  } finally {
    if (stdinFd !== undefined) closeSync(stdinFd);
  }
  // Output beyond maxBuffer would be cut silently; make it an error (write to --out instead).
  // (A process that stops before reading all of `input` gives EPIPE: not an error here.)
  if (r.error !== undefined && !(options.input !== undefined && (r.error as NodeJS.ErrnoException).code === 'EPIPE')) throw r.error;
  return {
    status: r.status ?? -1,
    stdout: r.stdout,
    stderr: r.stderr,
    json<T>() {
      const lines = r.stdout.trim().split('\n');
      return JSON.parse(lines[lines.length - 1]) as T;
    },
  };
}

/** The binary running in the background (startTapedeck), for tests that signal or kill it. */
export interface RunningTapedeck {
  readonly child: ChildProcess;
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
  /** Its exit code, or the signal that ended it; once its output is all read. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
}

/** Ctrl-C (SIGINT) to `run`; its exit code, and how long it took to end after the signal. */
export async function interrupt(run: RunningTapedeck): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  run.child.kill('SIGINT');
  const { code } = await run.exited;
  return { code, ms: Date.now() - t0 };
}

/** Binaries startTapedeck started that have not ended yet. */
const running = new Set<RunningTapedeck>();

export function startTapedeck(args: readonly string[], options: { readonly env?: Record<string, string> } = {}): RunningTapedeck {
  const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const run: RunningTapedeck = { child, stdout: () => stdout, stderr: () => stderr, exited };
  running.add(run);
  void exited.then(() => running.delete(run));
  return run;
}

/**
 * Kill (SIGKILL) what startTapedeck started and is still running, and wait for it to end:
 * test/support/setup.ts calls it after each test, so that a test that failed before stopping
 * its recorder does not leave it running (a live Kafka capture never ends by itself).
 */
export async function killLeftovers(): Promise<void> {
  const left = [...running];
  for (const run of left) run.child.kill('SIGKILL');
  await Promise.all(left.map((run) => run.exited));
}

/** Folders tempDir() made in this test file; test/support/setup.ts removes them after it. */
const tempDirs: string[] = [];

/**
 * A new folder under the system's temporary folder, removed when the test file ends (set
 * TAPEDECK_KEEP_TEST_FILES=1 to keep them, for a look at a failing test's tapes).
 */
export function tempDir(prefix = 'tapedeck-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Remove the folders tempDir() made (unless TAPEDECK_KEEP_TEST_FILES is set). */
export function removeTempDirs(): void {
  if (process.env.TAPEDECK_KEEP_TEST_FILES) return;
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * Write `path`: the NDJSON lines of `events` generated `world` events (`--seed`, when given), as
 * `export` writes them, from a tape recorded beside it (`path`.tape).
 */
export function writeGeneratedNdjson(path: string, events: number, seed?: number): void {
  const tape = `${path}.tape`;
  expect(tapedeck(['record', '--out', tape, '--events', String(events), ...(seed === undefined ? [] : ['--seed', String(seed)])]).status).toBe(0);
  expect(tapedeck(['export', tape, '--out', path]).status).toBe(0);
}
