import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root folder (where package.json, python/ and .venv/ are). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The folder holding the `pyexec_runtime` Python package. */
export const pythonPackageDir = path.join(projectRoot, 'python');

/** The project's Python: a configured path (relative to the project root), else .venv, else python3. */
export function pythonExecutable(configured?: string): string {
  const candidates = [configured, process.env['PYEXEC_PYTHON'], '.venv/bin/python'].filter(Boolean) as string[];
  for (const c of candidates) {
    const p = path.isAbsolute(c) ? c : path.join(projectRoot, c);
    if (existsSync(p)) return p;
  }
  return 'python3';
}

/** Variables that must never reach generated code: credentials of the fleet and of LLM providers. */
const SECRET =
  /(API_KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|REDIS|JUPYTER|ANTHROPIC|OPENAI|PYEXEC_APPROVER|AWS_|AZURE_|GOOGLE_)/i;
const KEEP = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'LOGNAME'];

/**
 * A scrubbed environment for code we run: only a few basics, EPICS settings, and what the mode's
 * config grants. No LLM keys, no Redis or Jupyter credentials, no approver tokens.
 */
export function scrubbedEnv(
  extra: Record<string, string> = {},
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (KEEP.includes(k) || (k.startsWith('EPICS_') && !SECRET.test(k))) env[k] = v;
  }
  Object.assign(env, extra);
  env['PYTHONPATH'] = pythonPackageDir;
  env['PYTHONDONTWRITEBYTECODE'] = '1';
  env['MPLBACKEND'] = 'Agg';
  return env;
}
