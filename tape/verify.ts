// `verify`: a full check of a tape that reports every problem it finds instead of stopping at
// the first: every block's checksum and structure, sequence continuity, the position index,
// the checksums of checkpoints, snapshots, rejects and source positions, and SQLite's own
// integrity check.

import { BlockCursor, SourceSpans } from './block.js';
import { TapeError } from './errors.js';
import {
  checkpointRowProblem,
  inspectBlockRow,
  rejectRowProblem,
  SELECT_REJECTS,
  snapshotRowProblem,
  sourcePositionRowProblem,
  TapeReader,
  type BlockRow,
  type CheckpointRow,
  type RejectRow,
  type SnapshotRow,
  type SourcePositionRow,
} from './reader.js';
import { columnProblem, COLUMNS } from './schema.js';

export interface DamagedBlock {
  readonly blockNo: number;
  /** The block's first and last events; null when its row no longer says which. */
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly problem: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly tape: string;
  readonly events: number;
  readonly blocks: number;
  readonly blocksChecked: number;
  readonly damagedBlocks: readonly DamagedBlock[];
  /** Problems outside event blocks (tables, continuity, SQLite structure). */
  readonly problems: readonly string[];
}


const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export interface VerifyOptions {
  /** Called as the blocks are checked: events of the blocks checked so far, of the blocks there are. */
  readonly onProgress?: (events: number, totalEvents: number) => void;
}

/** Verify a tape. Throws only when the file is missing, may not be read, or is of a newer format; a file that is not a sound tape is a report. */
export function verifyTape(path: string, options: VerifyOptions = {}): VerifyReport {
  let reader: TapeReader;
  try {
    reader = TapeReader.open(path);
  } catch (error) {
    // Not there, not this user's to read, or of a newer format than this tapedeck reads (its
    // meta table sound, checksum and all): nothing is known of the tape, sound or not.
    if (error instanceof TapeError && (error.code === 'E_TAPE_NOT_FOUND' || error.code === 'E_TAPE_PERMISSION' || error.code === 'E_TAPE_VERSION')) throw error;
    return { ok: false, tape: path, events: 0, blocks: 0, blocksChecked: 0, damagedBlocks: [], problems: [message(error)] };
  }
  try {
    return verifyOpen(reader, options);
  } catch (error) {
    // A statement the checks need cannot even be prepared or run (damage to the schema: a
    // flipped byte renamed a column): the tape is not sound, and that is the report.
    return { ok: false, tape: path, events: 0, blocks: 0, blocksChecked: 0, damagedBlocks: [], problems: [`the tape's tables cannot be read as a tape's: ${message(error)}`] };
  } finally {
    reader.close();
  }
}

function verifyOpen(reader: TapeReader, options: VerifyOptions): VerifyReport {
  const db = reader.db;
  const problems: string[] = [];
  const damaged: DamagedBlock[] = [];
  const attempt = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (error) {
      problems.push(`${what}: ${message(error)}`);
    }
  };

  attempt('SQLite integrity check', () => {
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    const bad = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (bad.length > 0) problems.push(`SQLite integrity check: ${bad.slice(0, 10).join('; ')}`);
  });

  let blockNos: { block_no: number; first_seq: number; event_count: number }[] = [];
  attempt('blocks table', () => {
    blockNos = db.prepare('SELECT block_no, first_seq, event_count FROM blocks ORDER BY block_no').all() as typeof blockNos;
  });
  const getBlock = db.prepare('SELECT block_no, first_seq, event_count, first_ts_us, min_ts_us, max_ts_us, byte_length, checksum, data FROM blocks WHERE block_no = ?');
  const getSources = db.prepare('SELECT stream, partition, event_count, min_position, max_position FROM block_sources WHERE block_no = ? ORDER BY stream, partition');
  const cursor = new BlockCursor();
  const spans = new SourceSpans();
  // Where the next block must start; null after a block whose row does not say where it ends.
  let expectedSeq: number | null = 0;
  let lastEnd = 0;
  let checked = 0;
  const { block_no, first_seq, event_count } = COLUMNS.blocks;
  const spanColumns = { block_no, first_seq, event_count };
  // Progress counts the events the block rows claim (a damaged count only skews the bar).
  const progress = options.onProgress;
  const claimed = (count: unknown): number => (Number.isSafeInteger(count) && (count as number) > 0 ? (count as number) : 0);
  let progressTotal = 0;
  if (progress !== undefined) for (const b of blockNos) progressTotal += claimed(b.event_count);
  let progressDone = 0;
  for (let i = 0; i < blockNos.length; i++) {
    const { block_no: blockNo, first_seq: firstSeq, event_count: count } = blockNos[i];
    if (progress !== undefined) {
      if (i % 16 === 0) progress(progressDone, progressTotal);
      progressDone += claimed(count);
    }
    if (blockNo !== i) problems.push(`block numbers jump from ${i - 1} to ${blockNo}`);
    const unreadable = columnProblem(blockNos[i], spanColumns);
    if (unreadable !== null) {
      damaged.push({ blockNo, firstSeq: null, lastSeq: null, problem: `the block's row is unreadable: ${unreadable}` });
      expectedSeq = null;
      continue;
    }
    const damage = (problem: string) => damaged.push({ blockNo, firstSeq, lastSeq: firstSeq + count - 1, problem });
    if (expectedSeq !== null && firstSeq !== expectedSeq) damage(`sequence gap: the block starts at event ${firstSeq}, the previous one ended before ${expectedSeq}`);
    expectedSeq = firstSeq + count;
    lastEnd = Math.max(lastEnd, expectedSeq);
    try {
      const row = getBlock.get(blockNo) as BlockRow;
      const { header, problem } = inspectBlockRow(row);
      if (problem !== null) {
        damage(problem);
        continue;
      }
      cursor.reset(header, row.data);
      while (cursor.next()) spans.add(cursor.stream, cursor.partition, cursor.position);
      const expected = JSON.stringify(spans.take());
      const stored = JSON.stringify(
        (getSources.all(blockNo) as { stream: number; partition: number; event_count: number; min_position: number; max_position: number }[]).map((s) => ({
          stream: s.stream,
          partition: s.partition,
          eventCount: s.event_count,
          minPosition: s.min_position,
          maxPosition: s.max_position,
        })),
      );
      if (expected !== stored) damage('the position index (block_sources) does not match the events');
      checked++;
    } catch (error) {
      spans.take();
      damage(message(error));
    }
  }
  const events = expectedSeq ?? lastEnd;

  attempt('checkpoints', () => {
    for (const r of db.prepare('SELECT next_seq, digest, now_us, checksum FROM checkpoints ORDER BY next_seq').all() as CheckpointRow[]) {
      const problem = checkpointRowProblem(r);
      if (problem !== null) problems.push(problem);
      else if (r.next_seq > events) problems.push(`checkpoint at event ${r.next_seq} lies beyond the ${events} events in the tape`);
    }
  });
  attempt('snapshots', () => {
    for (const r of db.prepare('SELECT next_seq, digest, now_us, checksum, state FROM snapshots ORDER BY next_seq').all() as SnapshotRow[]) {
      const problem = snapshotRowProblem(r);
      if (problem !== null) problems.push(problem);
      else if (r.next_seq > events) problems.push(`snapshot at event ${r.next_seq} lies beyond the ${events} events in the tape`);
    }
  });
  let rejectRows = 0;
  let rejectedCounted = 0;
  attempt('source positions', () => {
    for (const r of db.prepare('SELECT source, next_seq, position, read, rejected, checksum FROM source_positions').all() as SourcePositionRow[]) {
      const problem = sourcePositionRowProblem(r);
      if (problem !== null) problems.push(problem);
      else if (r.next_seq !== events) problems.push(`source position of "${r.source}" is at event ${r.next_seq}, but the tape holds ${events} events`);
      // The counts below take the row's numbers, even from a row that fails its checksum; not its other types.
      if (columnProblem(r, COLUMNS.source_positions) !== null) continue;
      rejectedCounted += r.rejected;
      if (r.read !== r.next_seq + r.rejected) problems.push(`source "${r.source}" counts ${r.read} read but ${r.next_seq} accepted + ${r.rejected} quarantined`);
    }
  });
  attempt('rejects', () => {
    let count = 0;
    for (const r of db.prepare(SELECT_REJECTS).iterate() as IterableIterator<RejectRow>) {
      count++;
      const problem = rejectRowProblem(r);
      if (problem !== null) problems.push(problem);
    }
    rejectRows = count;
  });
  if (rejectRows !== rejectedCounted) {
    problems.push(`the rejects table holds ${rejectRows} rows, but the source positions count ${rejectedCounted} quarantined inputs`);
  }

  return {
    ok: problems.length === 0 && damaged.length === 0,
    tape: reader.path,
    events,
    blocks: blockNos.length,
    blocksChecked: checked,
    damagedBlocks: damaged,
    problems,
  };
}
