// `tapedeck export`: a tape's events as NDJSON, in exactly the format `record --source ndjson` reads.

import { closeSync, renameSync, rmSync } from 'node:fs';
import { fileWriteError, openPrivate } from '../../tape/private.js';
import { Command } from 'commander';
import { TapedeckError } from '../../engine/errors.js';
import { formatEventLine } from '../../tape/ndjson.js';
import { TapeReader } from '../../tape/reader.js';
import { EXIT } from '../exit.js';
import { builtInEngineOf, loadEngine } from '../../tape/load-engine.js';
import { nonNegativeInt, oneOf } from '../parse.js';
import { writeAll } from '../output.js';

interface ExportFlags {
  format: 'ndjson';
  from?: number;
  to?: number;
  out?: string;
  engine?: string;
}

export function exportCommand(): Command {
  return new Command('export')
    .summary('write a tape\'s events as NDJSON (the format record --source ndjson reads)')
    .description(
      'Writes the events of the tape, one JSON object per line (docs/recording.md), to stdout or --out. Every block is ' +
        'checked against its checksum before its events are written; a damaged tape stops the export with exit 2. ' +
        'With --out the file appears only when the export is complete.',
    )
    .argument('<tape>', 'the tape to export')
    .option('--format <format>', 'output format: ndjson', oneOf('--format', ['ndjson'] as const), 'ndjson')
    .option('--from <seq>', 'first event to export (sequence number, from 0)', nonNegativeInt('--from'))
    .option('--to <seq>', 'last event to export, included', nonNegativeInt('--to'))
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--engine <name|path>', "engine whose codec decodes the events [default: the tape's engine]")
    .action(async (tape: string, flags: ExportFlags) => {
      const reader = TapeReader.open(tape);
      const partial = flags.out === undefined ? null : `${flags.out}.partial`;
      let fd = 1;
      try {
        const engine = flags.engine !== undefined ? await loadEngine(flags.engine) : builtInEngineOf(tape, reader.meta.engineName);
        const from = flags.from ?? 0;
        const to = flags.to ?? Number.MAX_SAFE_INTEGER;
        if (to < from) throw new TapedeckError('E_USAGE', `--to ${to} is before --from ${from}`);
        const total = reader.summary().events;
        if (from > total) throw new TapedeckError('E_USAGE', `--from ${from} is past the end of the tape (${total} events)`);
        if (partial !== null) {
          try {
            fd = openPrivate(partial);
          } catch (error) {
            throw fileWriteError('create', flags.out!, error);
          }
        }
        for (const cursor of reader.blocks(from)) {
          const lines: string[] = [];
          let done = false;
          while (reader.advance(cursor)) {
            if (cursor.seq < from) continue;
            if (cursor.seq > to) {
              done = true;
              break;
            }
            let event: unknown;
            try {
              event = engine.codec.decode(cursor.payload());
            } catch (cause) {
              throw new TapedeckError('E_EXPORT_DECODE', `${tape}: event ${cursor.seq} cannot be decoded by engine ${engine.name}'s codec (${engine.codec.name}; the tape was written with ${reader.meta.codec}): ${(cause as Error).message}`, { cause });
            }
            lines.push(formatEventLine({ timestampUs: cursor.timestampUs, partition: cursor.partition, key: cursor.key(), headers: cursor.headers() }, event, engine.codec));
          }
          if (lines.length > 0) {
            try {
              writeAll(fd, lines.join('\n') + '\n');
            } catch (error) {
              throw fileWriteError('write', flags.out ?? 'to standard output', error);
            }
          }
          if (done) break;
        }
        if (partial !== null) {
          closeSync(fd);
          fd = 1;
          try {
            renameSync(partial, flags.out!);
          } catch (error) {
            throw fileWriteError('create', flags.out!, error);
          }
        }
      } finally {
        if (fd !== 1) closeSync(fd);
        if (partial !== null) rmSync(partial, { force: true });
        reader.close();
      }
      process.exitCode = EXIT.ok;
    });
}
