// `tapedeck inspect`: what a tape holds.

import { statSync } from 'node:fs';
import { Command } from 'commander';
import { TapeReader } from '../../tape/reader.js';
import { readableByOthers } from '../../tape/private.js';
import { EXIT } from '../exit.js';
import { fmt, fmtBytes, line, printJson, count, progress } from '../output.js';

export function inspectCommand(): Command {
  return new Command('inspect')
    .summary('show what a tape holds: metadata, counts, time range, partitions')
    .description('Prints the tape\'s metadata and counts. Reads every block (checking its checksum) to count events per partition, with a progress bar on a terminal.')
    .argument('<tape>', 'the tape to inspect')
    .option('--json', 'print one JSON object as the last line of stdout')
    .action((tape: string, flags: { json?: boolean }) => {
      const reader = TapeReader.open(tape);
      // Reading every block of a long tape takes a while (0.99 s for 5M events here): a bar on a terminal.
      const bar = progress('reading');
      try {
        const summary = reader.summary();
        const partitions = new Map<number, number>();
        let read = 0;
        try {
          for (const cursor of reader.blocks(0)) {
            bar.update(read, summary.events);
            while (reader.advance(cursor)) partitions.set(cursor.partition, (partitions.get(cursor.partition) ?? 0) + 1);
            read += cursor.header.eventCount;
          }
        } finally {
          bar.stop();
        }
        // Quarantined inputs by reason code, in the order the codes first occur (every row checked, as export --rejects reads them).
        const rejectsByReason: Record<string, number> = {};
        if (summary.rejects > 0) for (const reject of reader.eachReject()) rejectsByReason[reject.reasonCode] = (rejectsByReason[reject.reasonCode] ?? 0) + 1;
        const m = reader.meta;
        const perPartition = Object.fromEntries([...partitions.entries()].sort((a, b) => a[0] - b[0]).map(([p, n]) => [String(p), n]));
        const timeRange =
          summary.minTsUs === null || summary.maxTsUs === null
            ? null
            : { firstUs: summary.minTsUs, lastUs: summary.maxTsUs, first: new Date(summary.minTsUs / 1000).toISOString(), last: new Date(summary.maxTsUs / 1000).toISOString() };
        const mode = statSync(tape).mode & 0o777;
        const warnings: string[] = [];
        if (readableByOthers(tape)) {
          warnings.push(`${tape} is readable or writable by others (mode ${mode.toString(8).padStart(4, '0')}); a tape is a copy of its source's data: chmod 600 ${tape}`);
        }
        const report = {
          tape: tape,
          mode: mode.toString(8).padStart(4, '0'),
          warnings,
          bytes: statSync(tape).size,
          formatVersion: m.formatVersion,
          tapedeckVersion: m.tapedeckVersion,
          engine: { name: m.engineName, version: m.engineVersion, options: m.engineOptions, codec: m.codec },
          runSeed: m.runSeed,
          source: m.source,
          createdAt: m.createdAt,
          events: summary.events,
          blocks: summary.blocks,
          checkpoints: summary.checkpoints,
          checkpointEvery: m.checkpointEvery,
          snapshots: summary.snapshots,
          snapshotEvery: m.snapshotEvery,
          rejects: summary.rejects,
          rejectsByReason,
          timeRange,
          partitions: perPartition,
          sourcePositions: reader.sourcePositions(),
          positionIndex: reader.hasPositionIndex(),
        };
        if (flags.json) {
          printJson(report);
        } else {
          line(`${tape} (${fmtBytes(report.bytes)}), tape format ${m.formatVersion}, written by tapedeck ${m.tapedeckVersion} at ${m.createdAt}`);
          line(`  engine       ${m.engineName} ${m.engineVersion}, codec ${m.codec}, run seed ${m.runSeed}`);
          line(`  source       ${JSON.stringify(m.source)}`);
          const redaction = (m.source as { redaction?: { redacted: string[]; hashed: string[] } } | null)?.redaction;
          if (redaction !== undefined) line(`  redaction    removed: ${redaction.redacted.join(', ') || 'none'}; keyed-hashed: ${redaction.hashed.join(', ') || 'none'}`);
          line(`  events       ${fmt(summary.events)} in ${count(summary.blocks, 'block')}`);
          line(`  checkpoints  ${fmt(summary.checkpoints)} (every ${count(m.checkpointEvery, 'event')})`);
          line(`  snapshots    ${fmt(summary.snapshots)} (every ${count(m.snapshotEvery, 'event')})`);
          const reasons = Object.entries(rejectsByReason).map(([code, n]) => `${code} ${fmt(n)}`).join(', ');
          line(`  rejects      ${fmt(summary.rejects)}${summary.rejects > 0 ? ` quarantined inputs: ${reasons} (tapedeck export ${tape} --rejects lists them)` : ''}`);
          if (timeRange !== null) line(`  time         ${timeRange.first} .. ${timeRange.last} (${((timeRange.lastUs - timeRange.firstUs) / 1e6).toFixed(3)} s)`);
          if (partitions.size === 0) line('  partitions   0 (no events)');
          else line(`  partitions   ${partitions.size}: ${[...partitions.entries()].sort((a, b) => a[0] - b[0]).map(([p, n]) => `${p}:${fmt(n)}`).join(' ')}`);
          for (const s of report.sourcePositions) line(`  resume       ${s.source} at event ${fmt(s.nextSeq)}, position ${JSON.stringify(s.position)}`);
          if (!report.positionIndex) line('  index        by source position not built yet: a recording builds it when it finishes (record --resume finishes one that was stopped by a crash); queries of block_sources answer the same without it, more slowly');
          for (const w of warnings) line(`  WARNING      ${w}`);
        }
      } finally {
        reader.close();
      }
      process.exitCode = EXIT.ok;
    });
}
