// Which command modules the CLI loads for a command line (cli/main.ts, commandsFor): only the
// command given, so that a quick command does not wait for every other command's modules.

import { describe, expect, it } from 'vitest';
import { commandsFor } from '../../cli/main.js';

const ALL = ['demo', 'record', 'replay', 'inspect', 'verify', 'export', 'bisect', 'rehearse', 'simulate', 'merge', 'ingest'];

describe('the CLI loads the command it runs', () => {
  it('one command when it is named first; none for --version; all for help, nothing, or an unknown command', () => {
    expect(commandsFor(['inspect', 'a.tape', '--json'])).toEqual(['inspect']);
    expect(commandsFor(['record', '--help'])).toEqual(['record']);
    for (const command of ALL) expect(commandsFor([command])).toEqual([command]);
    expect(commandsFor(['--version'])).toEqual([]);
    expect(commandsFor(['-V'])).toEqual([]);
    for (const args of [[], ['--help'], ['-h'], ['help', 'record'], ['recrod'], ['constructor'], ['--events', '5']]) expect(commandsFor(args)).toEqual(ALL);
  });
});
