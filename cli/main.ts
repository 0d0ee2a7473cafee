// The `tapedeck` command line. Each command lives in cli/commands/; this file wires them up
// and turns errors into the exit codes DESIGN.md fixes (0 ok, 1 a check failed, 2 usage or
// input error).

import { Command, CommanderError } from 'commander';
import { TapedeckError } from '../engine/errors.js';
import { tapedeckVersion } from '../tape/version.js';
import { EXIT } from './exit.js';
import { visible } from './output.js';
import { explainKafkaFailure, scrubSecrets } from './kafka-security.js';

/**
 * The commands, in the order `--help` lists them, each loaded when it is the one to run: a
 * command's modules (the recorder, the replayer, SQLite's native module...) are most of the
 * CLI's start, and `tapedeck inspect` need not load `replay`'s. Help and an unknown command
 * load them all, `--version` none.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  demo: async () => (await import('./commands/demo.js')).demoCommand(),
  record: async () => (await import('./commands/record.js')).recordCommand(),
  replay: async () => (await import('./commands/replay.js')).replayCommand(),
  inspect: async () => (await import('./commands/inspect.js')).inspectCommand(),
  verify: async () => (await import('./commands/verify.js')).verifyCommand(),
  export: async () => (await import('./commands/export.js')).exportCommand(),
  bisect: async () => (await import('./commands/bisect.js')).bisectCommand(),
  rehearse: async () => (await import('./commands/rehearse.js')).rehearseCommand(),
  simulate: async () => (await import('./commands/simulate.js')).simulateCommand(),
  merge: async () => (await import('./commands/merge.js')).mergeCommand(),
  ingest: async () => (await import('./commands/ingest.js')).ingestCommand(),
};

/** The commands that `args` (the command line less node and the script) needs: see COMMANDS. */
export function commandsFor(args: readonly string[]): string[] {
  const first = args[0];
  if (first === '-V' || first === '--version') return [];
  if (first !== undefined && Object.hasOwn(COMMANDS, first)) return [first];
  return Object.keys(COMMANDS);
}

/** The program with the commands named (all by default). */
export async function buildProgram(names: readonly string[] = Object.keys(COMMANDS)): Promise<Command> {
  const program = new Command('tapedeck')
    .description(
      'Record event streams into SQLite tapes and replay them deterministically, at full speed, through your engine on a virtual clock.\n' +
        'Exit codes: 0 every check held; 1 a check failed (digest mismatch, invariant violated, latency budget exceeded, property falsified); 2 usage or input error.',
    )
    .version(tapedeckVersion(), '-V, --version', 'print the tapedeck version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const command of await Promise.all(names.map((name) => COMMANDS[name]()))) {
    program.addCommand(command.exitOverride().showHelpAfterError('(run with --help for usage)'));
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  // Output piped into a reader that stops early (`tapedeck inspect t.tape | head`): the
  // reader has what it wanted, so stop quietly, as Unix tools do.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
    throw error;
  });
  try {
    const program = await buildProgram(commandsFor(argv.slice(2)));
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit through here with code 0; usage errors were already printed.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof TapedeckError) {
      const shown = explainKafkaFailure(error) ?? error;
      process.stderr.write(`tapedeck: error [${shown.code}]: ${scrubSecrets(visible(shown.message))}\n`);
      return EXIT.usage;
    }
    const system = error as NodeJS.ErrnoException;
    if (typeof system?.code === 'string' && /^E[A-Z0-9]+$/.test(system.code) && typeof system.syscall === 'string') {
      // A system call failed (a file that cannot be read or written, a full disk): an
      // operating condition whose message names the call and the file, not a bug.
      process.stderr.write(`tapedeck: error [${system.code}]: ${scrubSecrets(visible(system.message))}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`tapedeck: internal error (this is a bug in tapedeck; please report it):\n${scrubSecrets((error as Error).stack ?? String(error))}\n`);
    return EXIT.usage;
  }
}
