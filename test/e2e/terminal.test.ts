// What `record` and `export` show at a terminal. With `--input -` and nothing piped in it reads what is
// typed: it says so (otherwise it would seem to hang) and records the lines typed, up to Ctrl-D.
// Recording a file, its progress bar counts the MiB read of the file's size (its events are
// not known before the end); recording a pipe, which has no known end, it counts events and time.
// export shows a bar too, unless the events it writes go to the same terminal; so does verify. The terminal is util-linux's `script` (.ci/run installs it).

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyTape } from '../../tape/verify.js';
import { REPO, tapedeck, tempDir, writeGeneratedNdjson } from '../support/cli.js';
import { committedEvents } from '../support/kill.js';

/** An argument for the shell `script -c` runs. */
const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

const line = (player: number) => `{"timestampUs":${1000 + player},"partition":0,"key":"${player}","type":"join","payload":{"player":${player},"zone":0,"x":1,"y":2}}`;

describe('stdin at a terminal', () => {
  it('record --input - says it reads the terminal, and records the lines typed up to Ctrl-D', async () => {
    const tape = join(tempDir(), 'typed.tape');
    const command = [process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'record', '--source', 'ndjson', '--input', '-', '--out', tape].map(quote).join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    const noted = new Promise<void>((resolve) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('end with Ctrl-D')) resolve();
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await noted;
    child.stdin.write(`${line(1)}\n${line(2)}\n`);
    // Ctrl-D at the start of a line ends the input; a pause first, so that the lines are read as typed.
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.stdin.write('\x04');
    expect(await exited).toBe(0);
    expect(output).toContain('tapedeck: reading NDJSON lines from the terminal (--input -, nothing piped in); end with Ctrl-D, or Ctrl-C to stop and commit what was read');
    expect(output).toContain('recorded 2 events into');
    expect(tapedeck(['export', tape]).stdout.trim().split('\n')).toEqual([line(1), line(2)]);
    // Piped in, it says nothing of the kind.
    const piped = tapedeck(['record', '--source', 'ndjson', '--input', '-', '--out', join(tempDir(), 'piped.tape')], { input: `${line(1)}\n` });
    expect(piped.status).toBe(0);
    expect(piped.stderr).not.toContain('terminal');
  }, 30_000);

  it('record --input /dev/tty records the lines typed, and a signal stops it at once while it waits for more', async () => {
    const tape = join(tempDir(), 'tty.tape');
    // exec: the recorder is script's child, to be sent the signal alone (as a supervisor's kill would).
    const command = `exec ${[process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'record', '--source', 'ndjson', '--input', '/dev/tty', '--out', tape].map(quote).join(' ')}`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      child.stdin.write(`${line(1)}\n${line(2)}\n${line(3)}\n`);
      const deadline = Date.now() + 30_000;
      while (committedEvents(tape) < 3) {
        if (Date.now() > deadline) throw new Error(`the tape never held 3 events:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const recorder = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
      expect(recorder).toMatch(/^\d+$/);
      const signalled = Date.now();
      process.kill(Number(recorder), 'SIGINT');
      const stopped = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 20_000))]);
      expect(stopped, `the recorder did not stop within 20 s of the signal:\n${output}`).toBe(0);
      expect(Date.now() - signalled).toBeLessThan(20_000);
      expect(output).toContain('stopped by SIGINT: everything read is committed; continue with --resume');
      expect(tapedeck(['export', tape]).stdout.trim().split('\n')).toEqual([line(1), line(2), line(3)]);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('recording a file at a terminal shows its progress in MiB read, with the events so far', () => {
    const dir = tempDir();
    const input = join(dir, 'in.ndjson');
    writeGeneratedNdjson(input, 100_000);
    const command = [process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'record', '--source', 'ndjson', '--input', input, '--out', join(dir, 'file.tape')].map(quote).join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const mib = (statSync(input).size / (1 << 20)).toFixed(1);
    expect(r.stdout).toMatch(new RegExp(`recording +\\[[^\\]]*\\] \\d+% \\| [\\d.]+/${mib.replace('.', '\\.')} MiB read, [\\d,]+ events \\| `));
    expect(r.stdout).toContain('recorded 100,000 events into');
    // Piped in, the input has no known end: the events so far and the time, without a bar that
    // would sit at 100% throughout.
    const piped = ['cat', quote(input), '|', ...[process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'record', '--source', 'ndjson', '--input', '-', '--out', join(dir, 'piped.tape')].map(quote)].join(' ');
    const p = spawnSync('script', ['-qec', piped, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/recording +[\d,]+ events \| \d+s/);
    expect(p.stdout).not.toMatch(/recording +\[/);
  }, 60_000);

  it('export shows its progress on the terminal when the events go elsewhere, and not when they go to the terminal', () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '50000']).status).toBe(0);
    const out = join(dir, 'out.ndjson');
    const toFile = spawnSync('script', ['-qec', [process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'export', tape, '--out', out].map(quote).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(toFile.status, toFile.stderr).toBe(0);
    expect(toFile.stdout).toMatch(/exporting +\[[^\]]*\] \d+% \| [\d]+\/50000 events/);
    // The summary comes after the bar has cleared its line, which would otherwise take it too.
    expect(toFile.stdout).toMatch(new RegExp(`\\x1b\\[2Kexported 50,000 events of ${tape} \\(events 0 to 49,999\\) to ${out}\\r?\\n$`));
    expect(readFileSync(out, 'utf8')).toBe(tapedeck(['export', tape]).stdout);
    const toTerminal = spawnSync('script', ['-qec', [process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'export', tape, '--to', '9'].map(quote).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(toTerminal.status, toTerminal.stderr).toBe(0);
    expect(toTerminal.stdout).not.toContain('exporting');
    expect(toTerminal.stdout.trim().split(/\r?\n/)).toHaveLength(10);
  }, 60_000);

  it('verify shows its progress through the blocks on the terminal, and reports as before', () => {
    const dir = tempDir();
    const tape = join(dir, 't.tape');
    expect(tapedeck(['record', '--out', tape, '--events', '300000']).status).toBe(0);
    const r = spawnSync('script', ['-qec', [process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'verify', tape].map(quote).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verifying +\[[^\]]*\] \d+% \| \d+\/300000 events/);
    expect(r.stdout).toContain('OK: the tape is sound');
    // The library's hook: the events of the blocks checked, of all the blocks'.
    const calls: [number, number][] = [];
    expect(verifyTape(tape, { onProgress: (done, total) => calls.push([done, total]) }).ok).toBe(true);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.every(([done, total]) => total === 300_000 && done <= total)).toBe(true);
    expect(calls.map(([done]) => done)).toEqual([...calls.map(([done]) => done)].sort((a, b) => a - b));
    // inspect reads every block too: a bar, cleared before its report, which is as without a terminal.
    const inspected = spawnSync('script', ['-qec', [process.execPath, join(REPO, 'bin', 'tapedeck.js'), 'inspect', tape].map(quote).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(inspected.status, inspected.stderr).toBe(0);
    expect(inspected.stdout).toMatch(/reading +\[[^\]]*\] \d+% \| \d+\/300000 events/);
    const plain = tapedeck(['inspect', tape]).stdout;
    expect(plain).not.toContain('reading');
    expect(inspected.stdout.replace(/\r\n/g, '\n')).toContain(plain.split('\n').slice(1).join('\n'));
  }, 60_000);
});
