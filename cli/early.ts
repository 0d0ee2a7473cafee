// What the CLI starts before it loads its commands. Loading them (commander, every command's
// modules) takes the main thread about 0.2 s; a recording of generated traffic then starts the
// generator's thread, whose own start (an isolate and its modules) took about 0.1 s more before
// its first block. Started here, on the other core, that thread is ready when the recording
// asks for it (`prestartSourceWorker`). The command line is only glanced at: a guess that is
// wrong costs an idle thread, never a wrong result, since the command parses its options itself.

import { prestartSourceWorker } from '../recorder/pipeline.js';
import { WORKER_MIN_EVENTS } from '../recorder/sources/synthetic.js';

/** The value of option `name` in `args` (`--name value` or `--name=value`), the last one given; undefined when absent. */
function optionValue(args: readonly string[], name: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') break;
    if (arg === name) value = args[i + 1];
    else if (arg.startsWith(`${name}=`)) value = arg.slice(name.length + 1);
  }
  return value;
}

/**
 * Whether the command line (`process.argv` less node and the script) is likely a recording of
 * generated traffic on the generator's thread: `demo`, or `record` with the synthetic source
 * (the default), enough events for the thread (WORKER_MIN_EVENTS) and the pipeline allowed.
 */
export function recordsGeneratedTraffic(args: readonly string[]): boolean {
  const command = args[0];
  if (command !== 'demo' && command !== 'record') return false;
  const rest = args.slice(1);
  if (rest.includes('--help') || rest.includes('-h')) return false;
  if (command === 'record' && (optionValue(rest, '--source') ?? 'synthetic') !== 'synthetic') return false;
  if (optionValue(rest, '--pipeline') === 'off') return false;
  const events = optionValue(rest, '--events');
  return events === undefined || !(Number(events) < WORKER_MIN_EVENTS);
}

/** Start what the command line will need early (see above); `argv` as process.argv. */
export function startEarly(argv: readonly string[]): void {
  try {
    if (recordsGeneratedTraffic(argv.slice(2))) prestartSourceWorker();
  } catch {
    // Nothing is lost: the recording starts its thread itself, and reports what stops it.
  }
}
