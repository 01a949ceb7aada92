import type { PythonExecutionRequest } from '../request.js';
import type { ErrorFeedback } from './code-generator.js';

/**
 * Prompt building shared by the LLM generators, after Osprey's basic generator: the system role and
 * core requirements, then the request's fields, the shape (never the values) of the context data,
 * and on retry the last errors of the chain rendered like Osprey's `ExecutionError.to_prompt_text()`.
 */

export const DEFAULT_SYSTEM_ROLE = 'You are an expert Python code generator.';

/** How the reply should carry the code: bare (the basic prompt) or in one fenced block (Claude). */
export type CodeFormat = 'bare' | 'fenced';

function coreRequirements(format: CodeFormat): string {
  const first =
    format === 'bare'
      ? 'Generate ONLY executable Python code: no markdown, no explanations.'
      : 'Reply with the complete, executable Python program in one ```python fenced block.';
  return [
    'CRITICAL REQUIREMENTS:',
    `1. ${first}`,
    '2. Store the computed results in a dictionary variable named `results` (JSON-serialisable values).',
    '3. Put all imports at the top.',
    '4. Use the actual values from the provided `context` object (context["key"] or context.key); never simulate or fabricate data.',
    '5. Prefer direct, simple solutions.',
  ].join('\n');
}

const FALLBACK_GUIDANCE = [
  'GUIDANCE:',
  '- Write clean, working code.',
  '- Use clear variable names and comments.',
  '- Handle edge cases (missing data, empty inputs).',
].join('\n');

const ERROR_HEADER =
  '=== PREVIOUS ATTEMPT(S) FAILED - LEARN FROM THESE ERRORS ===\nAnalyze what went wrong and fix the root cause, not just symptoms.';
const ERROR_FOOTER = 'Generate IMPROVED code that fixes these issues.';
const RULE = '='.repeat(60);

export interface PromptOptions {
  /** Replaces DEFAULT_SYSTEM_ROLE (Osprey `system_role`). */
  systemRole?: string | undefined;
  /** Appended to the system prompt (Osprey `system_prompt_extensions`). */
  systemPromptExtensions?: string | undefined;
  /** How many of the latest errors go into the prompt (Osprey `error_feedback.max_errors`). @defaultValue 2 */
  maxErrors?: number | undefined;
}

export interface Prompt {
  readonly system: string;
  readonly user: string;
}

/** Keeps the first and last `keep` characters of a long text (Osprey trims tracebacks at 1000 → 500 + 500). */
export function trimMiddle(text: string, keep = 500): string {
  if (text.length <= keep * 2) return text;
  return `${text.slice(0, keep)}\n... (truncated) ...\n${text.slice(-keep)}`;
}

/** One error of the chain as the model reads it: Osprey's `ExecutionError.to_prompt_text()`. */
export function renderErrorFeedback(error: ErrorFeedback): string {
  const parts = [`**Attempt ${error.attempt} - ${error.stage.toUpperCase()} FAILED**`];
  if (error.failedCode) parts.push(`**Failed Code:**\n\`\`\`python\n${trimMiddle(error.failedCode, 10_000)}\n\`\`\``);
  parts.push(`**Error Type:** ${error.errorType}`);
  parts.push(`**Error:** ${trimMiddle(error.message, 2_000)}`);
  if (error.issues.length > 0) parts.push(`**Issues Found:**\n${error.issues.map((i) => `- ${i}`).join('\n')}`);
  if (error.traceback) parts.push(`**Traceback:**\n\`\`\`\n${trimMiddle(error.traceback)}\n\`\`\``);
  return parts.join('\n\n');
}

/** The last `maxErrors` errors between Osprey's header and footer; empty when the chain is. */
export function renderErrorChain(chain: readonly ErrorFeedback[], maxErrors = 2): string {
  if (chain.length === 0 || maxErrors <= 0) return '';
  const blocks = chain.slice(-maxErrors).map((e) => `${RULE}\n${renderErrorFeedback(e)}`);
  return [ERROR_HEADER, ...blocks, RULE, ERROR_FOOTER].join('\n');
}

/** A type description of a JSON value, without its values: the model learns keys, not data. */
export function describeShape(value: unknown, depth = 0): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) {
    if (value.length === 0) return 'array (empty)';
    return depth >= 3 ? `array[${value.length}]` : `array[${value.length}] of ${describeShape(value[0], depth + 1)}`;
  }
  if (typeof value === 'object') {
    const keys = Object.keys(value);
    if (depth >= 3) return `object (${keys.length} keys)`;
    const shown = keys
      .slice(0, 30)
      .map((k) => `${k}: ${describeShape((value as Record<string, unknown>)[k], depth + 1)}`);
    if (keys.length > 30) shown.push(`… ${keys.length - 30} more keys`);
    return `{${shown.join(', ')}}`;
  }
  return typeof value === 'string' ? 'string' : typeof value;
}

function contextSection(data: Record<string, unknown> | null): string | undefined {
  if (!data || Object.keys(data).length === 0) return undefined;
  const lines = Object.entries(data).map(([k, v]) => `- ${k}: ${describeShape(v, 1)}`);
  return [
    '**Context Data:** available at run time as `context` (context["key"] or context.key). Its shape (values not shown):',
    ...lines,
  ].join('\n');
}

/** The system prompt: role, core requirements for the given code format, extensions. */
export function buildSystemPrompt(format: CodeFormat, options: PromptOptions = {}): string {
  const parts = [options.systemRole ?? DEFAULT_SYSTEM_ROLE, coreRequirements(format)];
  if (options.systemPromptExtensions) parts.push(options.systemPromptExtensions);
  return parts.join('\n\n');
}

/** The request's fields, in Osprey's order: query, task, expected results, context shape, capability prompts. */
export function buildTaskSection(request: PythonExecutionRequest): string {
  const parts = [`**User Query:** ${request.user_query}`, `**Your Task:** ${request.task_objective}`];
  if (Object.keys(request.expected_results).length > 0) {
    parts.push(`**Expected Results:**\n${JSON.stringify(request.expected_results, null, 2)}`);
  }
  const context = contextSection(request.capability_context_data);
  if (context) parts.push(context);
  const extra = request.capability_prompts.filter((p) => p.trim() !== '');
  parts.push(extra.length > 0 ? extra.join('\n\n') : FALLBACK_GUIDANCE);
  return parts.join('\n\n');
}

/** The one-shot prompt of the basic generator: task, errors of earlier attempts, the closing ask. */
export function buildCodePrompt(
  request: PythonExecutionRequest,
  errorChain: readonly ErrorFeedback[],
  format: CodeFormat,
  options: PromptOptions = {},
): Prompt {
  const parts = [buildTaskSection(request)];
  const errors = renderErrorChain(errorChain, options.maxErrors ?? 2);
  if (errors) parts.push(errors);
  parts.push(
    format === 'bare'
      ? 'Generate ONLY the Python code.'
      : 'Reply with the complete Python program in one ```python fenced block.',
  );
  return { system: buildSystemPrompt(format, options), user: parts.join('\n\n') };
}
