import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import type { ClaudePhase, ClaudeProfile } from './claude-profiles.js';

/**
 * Osprey's `claude_config_path` (claude_generator_config.yml), read for its `profiles` so that an
 * Osprey config works as written. Osprey phases map onto ours: `scan` is dropped (there is no codebase
 * to scan), `plan` stays, `generate` and `implement` become `generate`. Osprey's agent settings
 * (max_turns, max_budget_usd, allow_codebase_reading, …) have no Messages API equivalent and are
 * ignored; `model` and `max_tokens` are kept.
 */

const PHASE_MAP: Record<string, ClaudePhase | undefined> = {
  plan: 'plan',
  generate: 'generate',
  implement: 'generate',
};

/**
 * The file is optional, as Osprey documents it: a missing one is a warning (`warn`) and the built-in
 * and inline profiles apply; one that cannot be read or parsed is an error.
 */
export function readClaudeConfigFile(
  file: string,
  configDir: string,
  key: string,
  warn: (message: string) => void = (m) => process.emitWarning(m, { code: 'PYEXEC_CONFIG_FILE_MISSING' }),
): Record<string, ClaudeProfile> {
  const full = path.resolve(configDir, file);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(full, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      warn(`${key}: ${full} does not exist (the file is optional); using the built-in and inline profiles`);
      return {};
    }
    throw new ConfigError(`${key}: cannot read ${full}: ${(err as Error).message}`, { cause: err });
  }
  const profiles = (doc as { profiles?: unknown } | null)?.profiles;
  if (profiles === undefined) return {};
  if (!profiles || typeof profiles !== 'object') throw new ConfigError(`${key}: ${full}: profiles must be a mapping`);
  const out: Record<string, ClaudeProfile> = {};
  for (const [name, raw] of Object.entries(profiles as Record<string, Record<string, unknown> | null>)) {
    const phases = Array.isArray(raw?.['phases']) ? raw['phases'].map(String) : ['generate'];
    const mapped = [...new Set(phases.map((p) => PHASE_MAP[p]).filter((p): p is ClaudePhase => p !== undefined))];
    if (!mapped.includes('generate')) mapped.push('generate');
    const profile: ClaudeProfile = { phases: mapped };
    if (typeof raw?.['model'] === 'string') profile.model = raw['model'];
    if (typeof raw?.['max_tokens'] === 'number') profile.max_tokens = raw['max_tokens'];
    out[name] = profile;
  }
  return out;
}
