import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** nbformat v4 types, the subset pyexec writes. */
type Source = string[];
type Output =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: Source }
  | { output_type: 'display_data'; data: Record<string, string | Source>; metadata: Record<string, unknown> }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };
type Cell =
  | { cell_type: 'markdown'; id: string; metadata: Record<string, unknown>; source: Source }
  | {
      cell_type: 'code';
      id: string;
      metadata: Record<string, unknown>;
      source: Source;
      execution_count: number | null;
      outputs: Output[];
    };
export interface Notebook {
  nbformat: 4;
  nbformat_minor: 5;
  metadata: Record<string, unknown>;
  cells: Cell[];
}

const lines = (text: string): Source => {
  const parts = text.split('\n');
  return parts.map((p, i) => (i < parts.length - 1 ? `${p}\n` : p)).filter((p, i) => p !== '' || i < parts.length - 1);
};

export interface NotebookInput {
  title: string;
  status: string;
  summary: string[];
  code: string | null;
  stdout?: string;
  stderr?: string;
  error?: { name: string; message: string; traceback: string } | undefined;
  figures?: readonly string[];
  results?: unknown;
  kernelName?: string;
  /** The cell's own nbformat outputs as a kernel produced them (rich MIME bundles, in order);
   * used instead of stdout/stderr when present. Figures saved by the run are added after them. */
  kernelOutputs?: readonly unknown[];
}

/**
 * Builds the request's notebook: a header, a cell that loads context.json, the code cell with the
 * outputs it produced (stdout, stderr, figures as image/png, the error), and the results.
 */
export async function buildNotebook(folder: string, input: NotebookInput): Promise<Notebook> {
  let n = 0;
  const id = () => `cell-${++n}`;
  const cells: Cell[] = [
    {
      cell_type: 'markdown',
      id: id(),
      metadata: {},
      source: lines([`# ${input.title}`, '', `**Status:** ${input.status}`, '', ...input.summary].join('\n')),
    },
    {
      cell_type: 'code',
      id: id(),
      metadata: { tags: ['pyexec-context'] },
      source: lines("import json\nwith open('context.json') as fh:\n    context = json.load(fh)"),
      execution_count: null,
      outputs: [],
    },
  ];
  if (input.code !== null) {
    const outputs: Output[] = [];
    if (input.kernelOutputs) outputs.push(...(input.kernelOutputs as Output[]));
    else {
      if (input.stdout) outputs.push({ output_type: 'stream', name: 'stdout', text: lines(input.stdout) });
      if (input.stderr) outputs.push({ output_type: 'stream', name: 'stderr', text: lines(input.stderr) });
    }
    for (const fig of input.figures ?? []) {
      try {
        const png = await readFile(path.isAbsolute(fig) ? fig : path.join(folder, fig));
        outputs.push({
          output_type: 'display_data',
          data: { 'image/png': png.toString('base64'), 'text/plain': [`<Figure ${path.basename(fig)}>`] },
          metadata: {},
        });
      } catch {
        // A figure that vanished is not worth losing the notebook over.
      }
    }
    if (input.error) {
      outputs.push({
        output_type: 'error',
        ename: input.error.name,
        evalue: input.error.message,
        traceback: input.error.traceback.split('\n'),
      });
    }
    cells.push({
      cell_type: 'code',
      id: id(),
      metadata: { tags: ['pyexec-code'] },
      source: lines(input.code),
      execution_count: 1,
      outputs,
    });
  }
  if (input.results !== undefined && input.results !== null) {
    cells.push({
      cell_type: 'markdown',
      id: id(),
      metadata: {},
      source: lines(
        [
          '## Execution results',
          '',
          'Saved to `results.json`:',
          '',
          '```json',
          JSON.stringify(input.results, null, 2).slice(0, 20_000),
          '```',
        ].join('\n'),
      ),
    });
  }
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: input.kernelName ?? 'python3', display_name: 'Python 3', language: 'python' },
      language_info: { name: 'python' },
      pyexec: { status: input.status },
    },
    cells,
  };
}
