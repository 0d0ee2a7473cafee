// Output conventions: human summaries on stdout; with --json, one JSON object as the last
// line of stdout; progress bars on stderr, and only when stderr is a terminal.

import cliProgress from 'cli-progress';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function line(text = ''): void {
  process.stdout.write(text + '\n');
}

const numberFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const fmt = (n: number): string => numberFormat.format(n);
export const fmtSeconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export function fmtBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/** A progress bar on stderr when it is a TTY; otherwise nothing. */
export function progress(label: string): Progress {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label.padEnd(9)} [{bar}] {percentage}% | {value}/{total} events | {eta_formatted} left`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
