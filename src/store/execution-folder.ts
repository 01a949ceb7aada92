import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The execution folder of a request: `<root>/YYYY-MM/<YYYYMMDD-HHMMSS>_<folder name>_<request id 8>/`.
 * It holds the code, context.json, results.json, figures/, prompts/, the analysis, the approval
 * record and notebook.ipynb. The name is fixed at submission, so every stage finds the same folder.
 */
export function executionFolderFor(root: string, folderName: string, requestId: string, at: Date = new Date()): string {
  const iso = at.toISOString();
  const month = iso.slice(0, 7);
  const stamp = `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
  return path.join(root, month, `${stamp}_${folderName}_${requestId.slice(0, 8)}`);
}

export async function ensureFolder(folder: string): Promise<void> {
  await mkdir(path.join(folder, 'figures'), { recursive: true });
}

/** Writes what the code needs at run time: code.py, context.json, approval_payload.json. */
export async function prepareRun(
  folder: string,
  code: string,
  context: Record<string, unknown> | null,
  approvalPayload?: Record<string, unknown>,
): Promise<void> {
  await ensureFolder(folder);
  await writeFile(path.join(folder, 'code.py'), code, 'utf8');
  await writeFile(path.join(folder, 'context.json'), JSON.stringify(context ?? {}, null, 2), 'utf8');
  if (approvalPayload)
    await writeFile(path.join(folder, 'approval_payload.json'), JSON.stringify(approvalPayload), 'utf8');
}

export async function writeJson(folder: string, name: string, value: unknown): Promise<string> {
  const file = path.join(folder, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, 'utf8');
  return file;
}

/**
 * The kernel's cell outputs (nbformat) of a container run, kept in the request's folder for the
 * notebook. They stay on disk rather than in the envelope on purpose: displayed figures are base64
 * PNGs (megabytes), and job data is copied into Redis at every hand-off and retry.
 */
const KERNEL_OUTPUTS = 'kernel_outputs.json';

export async function writeKernelOutputs(
  folder: string,
  executionCount: number | null,
  outputs: unknown[],
): Promise<void> {
  await writeFile(
    path.join(folder, KERNEL_OUTPUTS),
    JSON.stringify({ execution_count: executionCount, outputs }),
    'utf8',
  );
}

/** The outputs writeKernelOutputs kept; none when the run left none (local method, or it never ran). */
export async function readKernelOutputs(folder: string): Promise<unknown[] | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path.join(folder, KERNEL_OUTPUTS), 'utf8')) as { outputs?: unknown };
    return Array.isArray(parsed.outputs) ? parsed.outputs : undefined;
  } catch {
    return undefined;
  }
}
