// What the CLI starts before it loads its command. Loading it (commander, the recorder's
// modules, SQLite's native module) takes the main thread a while; a recording of generated
// traffic then starts the generator's thread, whose own start (an isolate and its modules) took
// about 0.1 s more before its first block. Started here, on the other core, that thread is
// ready when the recording asks for it (`prestartSourceWorker`). The command line is only
// glanced at: a guess that is wrong costs an idle thread, never a wrong result, since the
// command parses its options itself.

// Nothing is imported up front: a command line that records no generated traffic (`--version`,
// `inspect`) loads nothing more for this.

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

/** The commands that may record generated traffic. */
const RECORDING_COMMANDS: readonly string[] = ['demo', 'record'];

/**
 * Whether the command line (`process.argv` less node and the script) is likely a recording of
 * generated traffic on the generator's thread: `demo`, or `record` with the synthetic source
 * (the default), at least `minEvents` events (WORKER_MIN_EVENTS) and the pipeline allowed.
 */
export function recordsGeneratedTraffic(args: readonly string[], minEvents: number): boolean {
  const command = args[0];
  if (!RECORDING_COMMANDS.includes(command)) return false;
  const rest = args.slice(1);
  if (rest.includes('--help') || rest.includes('-h')) return false;
  if (command === 'record' && (optionValue(rest, '--source') ?? 'synthetic') !== 'synthetic') return false;
  if (optionValue(rest, '--pipeline') === 'off') return false;
  const events = optionValue(rest, '--events');
  return events === undefined || !(Number(events) < minEvents);
}

/** Start what the command line will need early (see above); `argv` as process.argv. */
export async function startEarly(argv: readonly string[]): Promise<void> {
  const args = argv.slice(2);
  if (!RECORDING_COMMANDS.includes(args[0])) return;
  try {
    // The recording loads these modules anyway.
    const [{ WORKER_MIN_EVENTS }, { prestartSourceWorker }] = await Promise.all([import('../recorder/sources/synthetic.js'), import('../recorder/pipeline.js')]);
    if (recordsGeneratedTraffic(args, WORKER_MIN_EVENTS)) prestartSourceWorker();
  } catch {
    // Nothing is lost: the recording starts its thread itself, and reports what stops it.
  }
}
