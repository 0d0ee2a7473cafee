// The README's capacity-rehearsal example, run as printed: its table must stay what the
// README shows (the service times are drawn from the seeded generator, so every figure but
// the full-speed replay's two is reproducible), and it must keep telling the story: p99
// within 8.2 ms at the recorded rate, past it as load nears capacity.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, tapedeck, tempDir } from '../support/cli.js';

describe('the README story', () => {
  it('prints the table the README shows, within budget at 1x and over it at 1.1x', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const commands = /```sh\n(npx tapedeck record --events 3000000[^\n]*)\n(npx tapedeck rehearse story\.tape[^`]*?)```/.exec(readme);
    expect(commands, 'the README shows the story commands').not.toBeNull();
    const argv = (command: string) => command.replace(/\\\n\s*/g, '').trim().split(/\s+/).slice(2).map((a) => a.replace(/^fixtures\//, `${REPO}/fixtures/`));
    const printed = /```\n(rehearsed story\.tape:[\s\S]*?\nOK)\n```/.exec(readme);
    expect(printed, 'the README shows what rehearse printed').not.toBeNull();

    const cwd = tempDir();
    expect(tapedeck(argv(commands![1]), { cwd }).status).toBe(0);
    const run = tapedeck(argv(commands![2]), { cwd });
    expect(run.status, run.stderr).toBe(0);
    // The wall-clock figures: the full-speed replay's line, and its capacity at the end of the capacity line.
    const wallClock = (text: string) => text.replace(/^ {2}full-speed replay: .*$/gm, '  full-speed replay: ...').replace(/(the whole full-speed replay )\S+/g, '$1...');
    expect(wallClock(run.stdout.trim())).toBe(wallClock(printed![1]));

    const json = tapedeck([...argv(commands![2]), '--json'], { cwd }).json<{ report: { rows: { speed: number; latencyMs: { p99: number } }[] } }>();
    const p99 = new Map(json.report.rows.map((r) => [r.speed, r.latencyMs.p99]));
    expect(p99.get(1)).toBeLessThanOrEqual(8.2);
    expect(p99.get(1.1)).toBeGreaterThan(8.2);
    expect(p99.get(3)).toBeGreaterThan(5 * 8.2);
    expect(readFileSync(join(cwd, 'rehearsal.html'), 'utf8')).toMatch(/<canvas id="chart-depth">/);
  });
});
