// The background checkpointer's thread (see checkpointer.ts). For each job (a tape being
// written) it opens its own connection to the tape and, each time the writer asks, folds what
// the WAL holds into the database file with a PASSIVE checkpoint: it never waits for the
// writer, and SQLite syncs the WAL and the database file as the tape's synchronous setting
// says. When the writer stops it, it closes its connection (the writer needs to be the only
// connection to leave WAL mode) and says so in the shared control words.

import Database from 'better-sqlite3';
import { parentPort } from 'node:worker_threads';
import { CHECKPOINT_CLOSED, CHECKPOINT_REQUESTS, CHECKPOINT_STOP, type CheckpointJob } from './checkpointer.js';

function runJob(job: CheckpointJob): void {
  const control = job.control;
  let db: Database.Database | null = null;
  try {
    let seen = 0;
    for (;;) {
      if (Atomics.load(control, CHECKPOINT_STOP) !== 0) break;
      const requested = Atomics.load(control, CHECKPOINT_REQUESTS);
      if (requested === seen) {
        Atomics.wait(control, CHECKPOINT_REQUESTS, requested, 1000);
        continue;
      }
      seen = requested;
      if (db === null) {
        db = new Database(job.path, { fileMustExist: true });
        db.pragma(`synchronous = ${job.synchronous}`);
      }
      db.pragma('wal_checkpoint(PASSIVE)');
    }
  } catch {
    // The writer's own checkpoint at close folds in whatever is left; nothing is lost.
  } finally {
    try {
      db?.close();
    } finally {
      Atomics.store(control, CHECKPOINT_CLOSED, 1);
      Atomics.notify(control, CHECKPOINT_CLOSED);
    }
  }
}

parentPort!.on('message', (job: CheckpointJob) => runJob(job));
