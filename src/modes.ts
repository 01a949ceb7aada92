import { z } from 'zod';

/** The kernel a request's code runs in: read_only unless it writes to the control system. */
export const ExecutionMode = z.enum(['read_only', 'write_access']);
export type ExecutionMode = z.output<typeof ExecutionMode>;
export const EXECUTION_MODES = ExecutionMode.options;

/** Where the code runs: a forked local Python (`local`) or a Jupyter kernel (`container`). */
export const ExecutionMethod = z.enum(['local', 'container']);
export type ExecutionMethod = z.output<typeof ExecutionMethod>;
export const EXECUTION_METHODS = ExecutionMethod.options;
