/**
 * Queue names live in one place. No imports: the CLI reads the stage names for its help without
 * loading zod or the job schemas.
 */
export const QueueName = {
  generation: 'generation',
  analysis: 'analysis',
  approval: 'approval-hold',
  execution: 'execution',
  result: 'result',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];
export type Stage = keyof typeof QueueName;
export const STAGES = ['generation', 'analysis', 'approval', 'execution', 'result'] as const satisfies readonly Stage[];
