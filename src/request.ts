import { z } from 'zod';

/**
 * The request model of Osprey's `PythonExecutionRequest`, as producers send it (snake_case, as in
 * the reference), plus `thread_id` for idempotency. Unknown keys are refused so that a typo is an
 * error rather than a silently ignored field.
 */
export const PythonExecutionRequest = z
  .object({
    /** The user's original request. */
    user_query: z.string().min(1, 'user_query must not be empty').max(20_000),
    /** The step-specific goal. */
    task_objective: z.string().min(1, 'task_objective must not be empty').max(20_000),
    /** Expected results or success criteria; inserted into the prompt. */
    expected_results: z.record(z.string(), z.unknown()).default({}),
    /** Extra prompt sections. */
    capability_prompts: z.array(z.string().max(20_000)).max(100).default([]),
    /** Used in the execution folder's name; letters, digits, `_` and `-` only. */
    execution_folder_name: z
      .string()
      .min(1)
      .max(80)
      .regex(/^[A-Za-z0-9_-]+$/, 'execution_folder_name may hold only letters, digits, _ and -'),
    /** Data the code reads at run time as `context` (written to context.json). */
    capability_context_data: z.record(z.string(), z.unknown()).nullable().default(null),
    /** Idempotency key: the same thread id submitted twice is the same request. */
    thread_id: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9_.:@/-]+$/, 'thread_id may hold only letters, digits and _ . : @ / -')
      .optional(),
    /** Override of `execution.execution_method`, honoured only where the config allows it. */
    execution_method: z.enum(['container', 'local']).optional(),
    /** Approval deadline for this request, within the configured maximum. */
    approval_timeout_seconds: z.number().int().positive().optional(),
    /** Osprey compatibility: accepted, carried, not interpreted. */
    retries: z.number().int().min(0).max(10).optional(),
    planning_mode: z.enum(['generator_driven', 'capability_driven']).optional(),
    structured_plan: z.record(z.string(), z.unknown()).nullable().optional(),
    session_context: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .strict();
export type PythonExecutionRequest = z.output<typeof PythonExecutionRequest>;
export type PythonExecutionRequestInput = z.input<typeof PythonExecutionRequest>;
