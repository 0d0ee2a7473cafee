// The `tapedeck` command line. Each command lives in cli/commands/; this file wires them up
// and turns errors into the exit codes DESIGN.md fixes (0 ok, 1 a check failed, 2 usage or
// input error).

import { Command, CommanderError } from 'commander';
import { TapedeckError } from '../engine/errors.js';
import { tapedeckVersion } from '../tape/version.js';
import { bisectCommand } from './commands/bisect.js';
import { demoCommand } from './commands/demo.js';
import { exportCommand } from './commands/export.js';
import { inspectCommand } from './commands/inspect.js';
import { mergeCommand } from './commands/merge.js';
import { ingestCommand } from './commands/ingest.js';
import { recordCommand } from './commands/record.js';
import { rehearseCommand } from './commands/rehearse.js';
import { simulateCommand } from './commands/simulate.js';
import { replayCommand } from './commands/replay.js';
import { verifyCommand } from './commands/verify.js';
import { EXIT } from './exit.js';
import { visible } from './output.js';
import { explainKafkaFailure, scrubSecrets } from './kafka-security.js';

export function buildProgram(): Command {
  const program = new Command('tapedeck')
    .description(
      'Record event streams into SQLite tapes and replay them deterministically, at full speed, through your engine on a virtual clock.\n' +
        'Exit codes: 0 every check held; 1 a check failed (digest mismatch, invariant violated, latency budget exceeded, property falsified); 2 usage or input error.',
    )
    .version(tapedeckVersion(), '-V, --version', 'print the tapedeck version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const command of [demoCommand(), recordCommand(), replayCommand(), inspectCommand(), verifyCommand(), exportCommand(), bisectCommand(), rehearseCommand(), simulateCommand(), mergeCommand(), ingestCommand()]) {
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
  const program = buildProgram();
  try {
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
