import { UnrecoverableError } from 'bullmq';
import { prettifyError, type z } from 'zod';
import type { Stage } from './envelope.js';

/**
 * The deterministic id of a stage's job: `<requestId>-<stage>-<attempt>` (no colons, never all
 * digits). A worker that crashes after adding the next job and runs again adds nothing twice,
 * because BullMQ ignores an add whose id exists.
 */
export function jobId(requestId: string, stage: Stage, attempt: number): string {
  return `${requestId}-${stage}-${attempt}`;
}

const REQUEUED = /-r(\d+)$/;

/**
 * The id of a job the reaper runs again after its worker died: `<id>-r<n>` (n from 1), a new job
 * with fresh attempts. Deterministic, so two processes that requeue the same failed job add one.
 */
export function requeuedJobId(id: string): string {
  return `${baseJobId(id)}-r${requeueCount(id) + 1}`;
}

/** How often the job with this id was requeued (0 for a stage's first job). */
export function requeueCount(id: string): number {
  return Number(REQUEUED.exec(id)?.[1] ?? 0);
}

/** The stage job a requeued job stands for: the id without its `-r<n>`. */
export function baseJobId(id: string): string {
  return id.replace(REQUEUED, '');
}

/** The request id at the start of a stage job's id (`<uuid>-<stage>-<attempt>`), if it has one. */
export function requestIdOfJob(id: string): string | undefined {
  const m = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-/i.exec(id);
  return m?.[1];
}

/** Parses a job's data at the top of a processor; a job that cannot parse can never succeed. */
export function parseJob<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new UnrecoverableError(`invalid job data:\n${prettifyError(parsed.error)}`);
  return parsed.data;
}
