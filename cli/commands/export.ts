// `tapedeck export`: a tape's events as NDJSON, in exactly the format `record --source ndjson` reads;
// or, with --rejects, the inputs the recording quarantined, one JSON object each.

import { isUtf8 } from 'node:buffer';
import { closeSync, renameSync, rmSync } from 'node:fs';
import { fileWriteError, openPrivate } from '../../tape/private.js';
import { Command } from 'commander';
import { TapedeckError } from '../../engine/errors.js';
import { EventLineWriter } from '../../tape/ndjson.js';
import { TapeReader } from '../../tape/reader.js';
import type { RejectRecord } from '../../tape/schema.js';
import type { EventHeader } from '../../tape/block.js';
import { EXIT } from '../exit.js';
import { builtInEngine } from '../../engine/registry.js';
import { jsonCodec } from '../../engine/json-codec.js';
import type { EventCodec } from '../../engine/types.js';
import { builtInEngineOf, loadEngine } from '../../tape/load-engine.js';
import { engineFile, refuseOutputsOverInputs } from '../files.js';
import { nonNegativeInt, oneOf } from '../parse.js';
import { count, fmt, GzipOutput, NO_PROGRESS, progress, writeAllBytes } from '../output.js';

interface ExportFlags {
  format: 'ndjson';
  from?: number;
  to?: number;
  out?: string;
  engine?: string;
  rejects?: boolean;
}

const NO_HEADERS: readonly EventHeader[] = [];

/**
 * The codec that decodes a tape's events, and whose it is (for errors): --engine's when given;
 * else the built-in engine the tape names; else, for a tape whose events are stored as JSON
 * text (a user's engine without a codec of its own), the JSON codec, which needs no module.
 */
async function exportCodec(tape: string, meta: { engineName: string; codec: string }, spec: string | undefined): Promise<{ codec: EventCodec<unknown>; owner: string; hint: string }> {
  if (spec !== undefined) {
    const engine = await loadEngine(spec);
    return { codec: engine.codec, owner: `engine ${engine.name}'s codec`, hint: '' };
  }
  const builtIn = builtInEngine(meta.engineName);
  if (builtIn === undefined && meta.codec === jsonCodec.name) {
    return { codec: jsonCodec as EventCodec<unknown>, owner: 'the JSON codec', hint: `; if engine ${meta.engineName} has a codec of its own, pass --engine PATH to its module` };
  }
  const engine = builtIn ?? builtInEngineOf(tape, meta.engineName);
  return { codec: engine.codec, owner: `engine ${engine.name}'s codec`, hint: '' };
}

/** Quarantined inputs written at a time (each may be up to the recording's line limit). */
const REJECT_LINES_PER_WRITE = 256;

/**
 * A quarantined input as one JSON line: where it sat (beforeSeq: the events accepted before it),
 * where it came from, why it was refused, and its raw bytes, as text when they are UTF-8 and as
 * base64 otherwise (null when the recording kept none: --quarantine-raw off); rawTruncated
 * when only the first bytes were kept (a line over the limit).
 */
export function formatRejectLine(reject: RejectRecord & { rejectNo: number }): string {
  const raw = reject.raw;
  const rawField = raw === null ? { raw: null } : isUtf8(raw) ? { raw: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8') } : { rawBase64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') };
  return JSON.stringify({
    reject: reject.rejectNo,
    beforeSeq: reject.nextSeq,
    position: reject.position,
    reasonCode: reject.reasonCode,
    reason: reject.reason,
    rawLength: reject.rawLength,
    ...rawField,
    ...(raw !== null && raw.length < reject.rawLength ? { rawTruncated: true } : {}),
  });
}

/** The events exported, `first` to `last`, and why the range stops short of --to, when it does. */
function exportedRange(first: number, last: number, to: number, total: number): string {
  const range = first === last ? `event ${fmt(first)}` : `events ${fmt(first)} to ${fmt(last)}`;
  return to !== Number.MAX_SAFE_INTEGER && to > last ? `${range}; --to ${fmt(to)} is past the tape's last event, ${fmt(total - 1)}` : range;
}

export function exportCommand(): Command {
  return new Command('export')
    .summary('write a tape\'s events as NDJSON (the format record --source ndjson reads)')
    .description(
      'Writes the events of the tape, one JSON object per line (docs/recording.md), to stdout or --out. Every block is ' +
        'checked against its checksum before its events are written; a damaged tape stops the export with exit 2. ' +
        'With --out the file appears only when the export is complete. With --rejects it writes instead the inputs ' +
        'the recording quarantined (--quarantine), each with its position, reason code and raw bytes. With --out a ' +
        'summary line (what was written, and where) goes to stdout; without it stdout holds the lines alone.',
    )
    .argument('<tape>', 'the tape to export')
    .option('--format <format>', 'output format: ndjson', oneOf('--format', ['ndjson'] as const), 'ndjson')
    .option('--from <seq>', 'first event to export (sequence number, from 0)', nonNegativeInt('--from'))
    .option('--to <seq>', 'last event to export, included', nonNegativeInt('--to'))
    .option('--out <file>', 'write to this file instead of stdout; a name ending in .gz writes it gzip-compressed (record reads it back)')
    .option('--engine <name|path>', "engine whose codec decodes the events [default: the tape's engine when built in; a tape of JSON events (a user's engine without a codec) needs none]")
    .option('--rejects', 'write the quarantined inputs instead of the events: one JSON object each, with its position, reason and raw bytes')
    .action(async (tape: string, flags: ExportFlags) => {
      if (flags.rejects === true) {
        for (const [given, option] of [[flags.from, '--from'], [flags.to, '--to'], [flags.engine, '--engine']] as const) {
          if (given !== undefined) throw new TapedeckError('E_USAGE', `${option} is for events; --rejects writes every quarantined input`);
        }
      }
      refuseOutputsOverInputs([{ name: '--out', path: flags.out }], [{ name: 'the tape being exported', path: tape }, engineFile(flags.engine)]);
      const reader = TapeReader.open(tape);
      // No bar when the events go to the same terminal: it would cut through them.
      const bar = flags.out === undefined && process.stdout.isTTY === true ? NO_PROGRESS : progress('exporting');
      const partial = flags.out === undefined ? null : `${flags.out}.partial`;
      let fd = 1;
      const writeBytes = (bytes: Uint8Array): void => {
        try {
          writeAllBytes(fd, bytes);
        } catch (error) {
          throw fileWriteError('write', flags.out ?? 'to standard output', error);
        }
      };
      // --out FILE.gz: the lines gzip-compressed, as record reads them back.
      const gzip = flags.out !== undefined && /\.gz$/i.test(flags.out) ? new GzipOutput(writeBytes) : null;
      const emit = async (bytes: Uint8Array): Promise<void> => {
        if (gzip !== null) await gzip.add(bytes);
        else writeBytes(bytes);
      };
      const write = async (lines: string[]): Promise<void> => {
        if (lines.length > 0) await emit(Buffer.from(lines.join('\n') + '\n', 'utf8'));
      };
      /** What was written, for the summary line (--out). */
      let written = '';
      try {
        const decoder = flags.rejects === true ? null : await exportCodec(tape, reader.meta, flags.engine);
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
        if (decoder === null) {
          // The blocks are checked first, as every command checks what it is given: a damaged
          // tape is refused, naming the block, even where only its rejects are asked for.
          for (const cursor of reader.blocks(0)) void cursor;
          let lines: string[] = [];
          let rejects = 0;
          for (const reject of reader.eachReject()) {
            rejects++;
            lines.push(formatRejectLine(reject));
            if (lines.length === REJECT_LINES_PER_WRITE) {
              await write(lines);
              lines = [];
            }
          }
          await write(lines);
          written = `${count(rejects, 'quarantined input')} of ${tape}`;
        } else {
          // A long export shows its progress (on stderr, when it is a terminal: stdout is usually redirected).
          const rangeEvents = Math.max(0, Math.min(to, total - 1) - from + 1);
          const codec = decoder.codec;
          const decodeAt = codec.decodeAt;
          const out = new EventLineWriter(codec);
          let exported = 0;
          for (const cursor of reader.blocks(from)) {
            bar.update(exported, rangeEvents);
            let done = false;
            while (reader.advance(cursor)) {
              if (cursor.seq < from) continue;
              if (cursor.seq > to) {
                done = true;
                break;
              }
              let event: unknown;
              try {
                event = decodeAt !== undefined ? decodeAt(cursor.bytes, cursor.payloadOffset, cursor.payloadLength) : codec.decode(cursor.payload());
              } catch (cause) {
                throw new TapedeckError('E_EXPORT_DECODE', `${tape}: event ${cursor.seq} cannot be decoded by ${decoder.owner} (${codec.name}; the tape was written with ${reader.meta.codec}): ${(cause as Error).message}${decoder.hint}`, { cause });
              }
              out.add(cursor.timestampUs, cursor.partition, cursor.keyOffset < 0 ? null : cursor.bytes, cursor.keyOffset, cursor.keyLength, cursor.headersOffset < 0 ? NO_HEADERS : cursor.headers(), event);
              exported++;
            }
            await emit(out.take());
            if (done) break;
          }
          written = `${count(exported, 'event')} of ${tape}${exported === 0 ? '' : ` (${exportedRange(from, from + exported - 1, to, total)})`}`;
        }
        await gzip?.end();
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
        bar.stop();
        if (fd !== 1) closeSync(fd);
        if (partial !== null) rmSync(partial, { force: true });
        reader.close();
      }
      // After the bar is gone from the terminal (it would clear this line).
      if (flags.out !== undefined) process.stdout.write(`exported ${written} to ${flags.out}${gzip === null ? '' : ' (gzip-compressed)'}\n`);
      process.exitCode = EXIT.ok;
    });
}
