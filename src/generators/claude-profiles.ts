import { z } from 'zod';

/** The phases of a claude_code generation, in the order they may run. */
export const ClaudePhase = z.enum(['plan', 'generate', 'review']);
export type ClaudePhase = z.output<typeof ClaudePhase>;

const VALID_ORDERS = ['generate', 'plan,generate', 'generate,review', 'plan,generate,review'];

export const ClaudeProfile = z.strictObject({
  phases: z
    .array(ClaudePhase)
    .refine(
      (p) => VALID_ORDERS.includes(p.join(',')),
      `must be one of: ${VALID_ORDERS.map((o) => `[${o}]`).join(', ')}`,
    ),
  /** Model of this profile; overrides the generator's model_id. */
  model: z.string().min(1).optional(),
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(1).optional(),
});
export type ClaudeProfile = z.output<typeof ClaudeProfile>;

export const BUILTIN_CLAUDE_PROFILES: Readonly<Record<string, ClaudeProfile>> = {
  fast: { phases: ['generate'] },
  balanced: { phases: ['plan', 'generate'] },
  robust: { phases: ['plan', 'generate', 'review'] },
};
