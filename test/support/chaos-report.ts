/**
 * The verdict of a chaos run (test/support/chaos.ts): what each request's end and the IOC's write
 * log say — lost, ended twice, written twice — and a one-line summary.
 */
import { readFileSync } from 'node:fs';
import type { PythonExecutionResponse } from '../../src/queues/result.js';
import { type ChaosTask, WRITE_PV } from './chaos-programs.js';

export interface ChaosReport {
  readonly requests: number;
  readonly writes: number;
  readonly approved: number;
  readonly rejected: number;
  readonly byStatus: Record<string, number>;
  readonly byDetail: Record<string, number>;
  /** Requests without a recorded end when the run stopped waiting. */
  readonly lost: string[];
  /** Requests whose event stream holds more than one `finished` event. */
  readonly endedTwice: string[];
  /** Write requests whose value reached the IOC more than once. */
  readonly writesRunTwice: string[];
  /** Succeeded writes whose value did not reach the IOC exactly once. */
  readonly succeededWritesNotOnce: string[];
  /** Writes rejected or expired whose value reached the IOC. */
  readonly refusedWritesRun: string[];
  /** Read-only requests that ended as needs_review. */
  readonly readOnlyNeedsReview: string[];
  /** Write requests that ended needs_review, and of those how many had written once. */
  readonly needsReview: { total: number; wrote: number };
  readonly kills: Record<string, number>;
  /** Kills that hit a process while it had work (an active job; code running, for execution). */
  readonly killsWhileWorking: Record<string, number>;
  readonly requeuedJobs: number;
  readonly submitRetries: number;
  readonly durationMs: number;
  /** Time from the last submit to the last end. */
  readonly drainMs: number;
}

const inc = (m: Record<string, number>, k: string) => {
  m[k] = (m[k] ?? 0) + 1;
};

/** How often each value was written to WRITE_PV, from the IOC's write log (JSON lines). */
export function writesAtIoc(writeLog: string): Map<number, number> {
  const counts = new Map<number, number>();
  let text = '';
  try {
    text = readFileSync(writeLog, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n').filter(Boolean)) {
    const w = JSON.parse(line) as { pv: string; value: number };
    if (w.pv === WRITE_PV) counts.set(w.value, (counts.get(w.value) ?? 0) + 1);
  }
  return counts;
}

/** Checks every request: ended once, and each write's value at the IOC as often as its end allows. */
export async function judge(run: {
  tasks: readonly ChaosTask[];
  ids: ReadonlyMap<number, string>;
  responses: ReadonlyMap<number, PythonExecutionResponse>;
  writeLog: string;
  finishedEvents: (requestId: string) => Promise<number>;
  statusOf: (requestId: string) => Promise<string>;
}): Promise<
  Pick<
    ChaosReport,
    | 'byStatus'
    | 'byDetail'
    | 'lost'
    | 'endedTwice'
    | 'writesRunTwice'
    | 'succeededWritesNotOnce'
    | 'refusedWritesRun'
    | 'readOnlyNeedsReview'
    | 'needsReview'
  >
> {
  const writesAt = writesAtIoc(run.writeLog);
  const out = {
    byStatus: {} as Record<string, number>,
    byDetail: {} as Record<string, number>,
    lost: [] as string[],
    endedTwice: [] as string[],
    writesRunTwice: [] as string[],
    succeededWritesNotOnce: [] as string[],
    refusedWritesRun: [] as string[],
    readOnlyNeedsReview: [] as string[],
    needsReview: { total: 0, wrote: 0 },
  };
  for (const task of run.tasks) {
    const id = run.ids.get(task.n) ?? `unsubmitted-${task.n}`;
    const r = run.responses.get(task.n);
    if (!r) {
      out.lost.push(`${task.n} ${id} (${await run.statusOf(id)})`);
      continue;
    }
    inc(out.byStatus, r.status);
    if (r.detail) inc(out.byDetail, r.detail);
    const ends = await run.finishedEvents(id);
    if (ends !== 1) out.endedTwice.push(`${task.n} ${id}: ${ends} finished events`);
    if (task.kind !== 'write') {
      if (r.detail === 'needs_review') out.readOnlyNeedsReview.push(`${task.n} ${id}`);
      continue;
    }
    const ran = writesAt.get(task.value!) ?? 0;
    if (ran > 1) out.writesRunTwice.push(`${task.n} ${id}: ${ran} writes of ${task.value}`);
    if (r.status === 'succeeded' && ran !== 1) out.succeededWritesNotOnce.push(`${task.n} ${id}: ${ran}`);
    if ((r.status === 'rejected' || r.status === 'expired') && ran > 0)
      out.refusedWritesRun.push(`${task.n} ${id}: ${r.status}, ${ran} writes`);
    if (r.detail === 'needs_review') {
      out.needsReview.total++;
      if (ran === 1) out.needsReview.wrote++;
    }
  }
  return out;
}

/** A one-line summary for logs. */
export function describeReport(r: ChaosReport): string {
  return JSON.stringify({
    requests: r.requests,
    byStatus: r.byStatus,
    byDetail: r.byDetail,
    kills: r.kills,
    killsWhileWorking: r.killsWhileWorking,
    lost: r.lost.length,
    endedTwice: r.endedTwice.length,
    writesRunTwice: r.writesRunTwice.length,
    needsReview: r.needsReview,
    requeuedJobs: r.requeuedJobs,
    submitRetries: r.submitRetries,
    durationS: Math.round(r.durationMs / 1000),
  });
}
