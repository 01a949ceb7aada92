import type { z } from 'zod';
import { Envelope } from './envelope.js';

/**
 * Generation: the envelope as it stands; `errorChain` feeds error-aware regeneration. A producer
 * that does not know the fleet's config (the client package, the HTTP API on another host) leaves
 * the execution method and folder out; the generation stage fills them in from its config
 * (src/workers/generation-worker.ts), so every later stage sees them.
 */
export const GenerationJob = Envelope.extend({
  executionMethod: Envelope.shape.executionMethod.optional(),
  executionFolder: Envelope.shape.executionFolder.optional(),
});
export type GenerationJob = z.output<typeof GenerationJob>;
export type GenerationJobInput = z.input<typeof GenerationJob>;
