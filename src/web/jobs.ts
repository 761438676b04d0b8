/**
 * Long jobs (an atlas, a needle sweep): started by a POST, run in the background through the engine
 * queue, polled with `GET /api/jobs/:id` for progress. One job of a kind at a time; finished jobs are
 * kept (the last few) so a client that polls late still sees the outcome. What a job computes is the
 * runner's business; this file only tracks it.
 */
import { randomUUID } from 'node:crypto';
import { HeadwiseError } from '../errors.js';
import type { JobKind, JobStatus } from './api.js';

/** Reports progress (0..1) and what is being done now. */
export type ProgressReporter = (progress: number, message: string) => void;

const KEEP_FINISHED = 20;

export class JobRegistry {
  private readonly jobs = new Map<string, JobStatus>();

  get(id: string): JobStatus | undefined {
    const job = this.jobs.get(id);
    return job && { ...job };
  }

  running(kind: JobKind): JobStatus | undefined {
    return [...this.jobs.values()].find((j) => j.kind === kind && (j.state === 'queued' || j.state === 'running'));
  }

  /**
   * Starts `run` (which should queue its model work) and returns the job's status at once.
   * `onDone` receives the result when the job succeeds.
   */
  start<T>(kind: JobKind, run: (report: ProgressReporter) => Promise<T>, onDone: (result: T) => void): JobStatus {
    const job: JobStatus = { id: randomUUID(), kind, state: 'queued', progress: 0, message: 'waiting for the engine', startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    this.prune();
    const report: ProgressReporter = (progress, message) => {
      job.state = 'running';
      job.progress = Math.max(0, Math.min(1, progress));
      job.message = message;
    };
    // onDone inside the chain: a result it refuses fails the job instead of escaping as an unhandled rejection.
    run(report)
      .then(onDone)
      .then(
        () => {
          Object.assign(job, { state: 'done', progress: 1, message: 'done', finishedAt: new Date().toISOString() });
        },
        (e: unknown) => {
          const message = e instanceof HeadwiseError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}`;
          if (!(e instanceof HeadwiseError)) console.error(e);
          Object.assign(job, { state: 'failed', message: 'failed', error: message, finishedAt: new Date().toISOString() });
        },
      );
    return { ...job };
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state === 'done' || j.state === 'failed');
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.jobs.delete(j.id);
  }
}
