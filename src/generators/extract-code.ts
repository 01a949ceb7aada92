/**
 * Getting Python out of an LLM reply. Models answer in three shapes, all of which must give the code:
 * - fenced: the whole reply is one ```python block;
 * - prose-wrapped: explanations around one or more fenced blocks;
 * - bare: the reply is the code itself, as the basic prompt asks.
 * A reply with no code (empty, a refusal, prose only) gives `undefined`; the generator turns that
 * into a CodeGenerationError, which counts against the generation budget.
 */

/** A fence line, its language tag, the body, then the closing fence (or the end of an unterminated reply). */
const FENCE = /^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n([\s\S]*?)(?:^[ \t]*\1[ \t]*$|(?![\s\S]))/gm;
const THINK = /<think(?:ing)?>[\s\S]*?<\/think(?:ing)?>/gi;
/** Lines only Python starts with; prose rarely does. */
const PYTHON_LINE =
  /^[ \t]*(?:import\s+[\w.]+|from\s+[\w.]+\s+import\s|def\s+\w+\s*\(|async\s+def\s|class\s+\w+\s*[(:]|results\s*(?:\[[^\]]*\])?\s*[+]?=|results\.update\(|for\s+\w[\w, ]*\s+in\s.+:\s*$|with\s.+:\s*$|try:\s*$|print\()/m;
const PYTHON_LANGS = new Set(['python', 'py', 'python3', 'ipython', 'py3']);

interface Fenced {
  lang: string;
  body: string;
}

function fencedBlocks(text: string): Fenced[] {
  const blocks: Fenced[] = [];
  for (const m of text.matchAll(FENCE)) blocks.push({ lang: (m[2] ?? '').toLowerCase(), body: m[3] ?? '' });
  return blocks;
}

/** Whether a text reads as Python (at least one line that only Python starts with). */
export function looksLikePython(text: string): boolean {
  return PYTHON_LINE.test(text);
}

export interface ExtractOptions {
  /** Accept a reply without fences as bare code when it reads as Python. @defaultValue true */
  allowBare?: boolean;
}

/**
 * The code in a reply, or `undefined` when there is none. Rules, in order:
 * 1. reasoning blocks (`<think>…</think>`) of self-hosted reasoning models are dropped;
 * 2. fenced blocks: the last one tagged python, else the last untagged one that reads as Python
 *    (the last, because a model that revises itself writes the final version last);
 *    an unterminated fence (reply cut at max_tokens) runs to the end of the reply;
 * 3. no fences: the whole reply, stripped of wrapping backticks, if it reads as Python.
 */
export function extractCode(reply: string, options: ExtractOptions = {}): string | undefined {
  const text = reply.replace(THINK, '').replace(/\r\n/g, '\n').trim();
  if (text === '') return undefined;
  const blocks = fencedBlocks(text);
  if (blocks.length > 0) {
    const tagged = blocks.filter((b) => PYTHON_LANGS.has(b.lang) && b.body.trim() !== '');
    const untagged = blocks.filter((b) => b.lang === '' && looksLikePython(b.body));
    const pick = tagged.at(-1) ?? untagged.at(-1);
    return pick ? nonEmpty(pick.body) : undefined;
  }
  if (options.allowBare === false) return undefined;
  const bare = text.replace(/^`+|`+$/g, '');
  return looksLikePython(bare) ? nonEmpty(bare) : undefined;
}

function nonEmpty(code: string): string | undefined {
  const trimmed = code.replace(/^\n+/, '').trimEnd();
  return trimmed.trim() === '' ? undefined : trimmed;
}
