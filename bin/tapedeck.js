#!/usr/bin/env node
// Entry point of the `tapedeck` binary: runs the compiled CLI from dist/ (built by `npm install`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('tapedeck: dist/ is missing; run `npm install` (or `npm run build`) in the repository first\n');
  process.exit(2);
}
// Threads the command will want are started first, so that they start while the commands load
// (dist/cli/early.js).
const { startEarly } = await import(new URL('../dist/cli/early.js', import.meta.url).href);
await startEarly(process.argv);
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
// The command is done and has said so. Whatever still holds the process after that (a Kafka
// client waiting out its request timeouts on a broker that no longer answers) is not waited for.
setTimeout(() => process.exit(), 2000).unref();
