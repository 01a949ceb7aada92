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

/** Parses a job's data at the top of a processor; a job that cannot parse can never succeed. */
export function parseJob<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new UnrecoverableError(`invalid job data:\n${prettifyError(parsed.error)}`);
  return parsed.data;
}
