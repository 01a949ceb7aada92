import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GenerationRequest, GeneratorLogger } from './code-generator.js';

/**
 * Saves what a generator sent and got back in the request's execution folder, one folder per
 * generation attempt (an infrastructure retry of the same attempt overwrites it):
 * ```
 * <execution folder>/prompts/attempt_01/
 *   01_plan.prompt.txt  01_plan.response.txt  02_generate.prompt.txt  …  code.py  metadata.json
 * ```
 * Prompts and replies go to these files only, never to logs. The API key is never in them. Saving is
 * best effort: a full disk must not fail a generation, so errors are logged (path only) and dropped.
 */

/** One message of a conversation, as recorded. */
export interface RecordedMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export class PromptRecorder {
  private calls = 0;
  private readonly dir: string | undefined;

  constructor(
    request: GenerationRequest,
    enabled: boolean,
    private readonly logger?: GeneratorLogger,
  ) {
    this.dir =
      enabled && request.executionFolder
        ? path.join(request.executionFolder, 'prompts', `attempt_${String(request.attempt).padStart(2, '0')}`)
        : undefined;
  }

  /** Records the prompt of the next call before it is sent; returns the call's file stem. */
  async prompt(step: string, messages: readonly RecordedMessage[]): Promise<string> {
    this.calls += 1;
    const stem = `${String(this.calls).padStart(2, '0')}_${step}`;
    const text = messages.map((m) => `=== ${m.role} ===\n${m.content}`).join('\n\n');
    await this.write(`${stem}.prompt.txt`, `${text}\n`);
    return stem;
  }

  /** Records the raw reply of a call. */
  async reply(stem: string, text: string): Promise<void> {
    await this.write(`${stem}.response.txt`, text);
  }

  /** Records the extracted code (if any) and what the generation was (model, usage, timing, outcome). */
  async finish(code: string | undefined, metadata: Record<string, unknown>): Promise<void> {
    if (code !== undefined) await this.write('code.py', `${code}\n`);
    await this.write('metadata.json', `${JSON.stringify(metadata, null, 2)}\n`);
  }

  private async write(file: string, content: string): Promise<void> {
    if (!this.dir) return;
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(path.join(this.dir, file), content, 'utf8');
    } catch (err) {
      this.logger?.warn({ dir: this.dir, file, err: (err as Error).message }, 'could not save generation prompts');
    }
  }
}
