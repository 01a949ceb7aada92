import type { z } from 'zod';
import { Envelope } from './envelope.js';

/** Generation: the envelope as it stands; `errorChain` feeds error-aware regeneration. */
export const GenerationJob = Envelope;
export type GenerationJob = z.output<typeof GenerationJob>;
export type GenerationJobInput = z.input<typeof GenerationJob>;
