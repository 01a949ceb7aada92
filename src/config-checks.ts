import type { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * What the schema alone cannot say about a config: unknown keys with a did-you-mean, and the problems
 * with their key and reason (the combinations pyexec refuses are config.ts's combinationProblems, which
 * needs the Config type). All run inside parseConfig, so every `pyexec` verb stops on them before it
 * starts anything.
 */

/** A problem at a key. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

export function configError(problems: readonly ConfigProblem[]): ConfigError {
  const lines = problems.map((p) => `  ✖ ${p.message}\n    → at ${p.path || '(top level)'}`);
  return new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

// biome-ignore lint/suspicious/noExplicitAny: zod's internal definitions are walked structurally
type Def = Record<string, any>;
const defOf = (schema: unknown): Def | undefined => (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;

/** The schema under wrappers (default, prefault, optional, nullable, a transform's input). */
function unwrap(schema: unknown): unknown {
  let s = schema;
  for (let def = defOf(s); def; def = defOf(s)) {
    if (['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(def['type']))
      s = def['innerType'];
    else if (def['type'] === 'pipe') s = def['in'];
    else return s;
  }
  return s;
}

/** The keys an object schema knows at `path` (record keys and array indexes are walked through). */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s = unwrap(schema);
  for (const seg of path) {
    const def = defOf(s);
    if (!def) return [];
    if (def['type'] === 'object') s = unwrap(def['shape'][seg as string]);
    else if (def['type'] === 'record') s = unwrap(def['valueType']);
    else if (def['type'] === 'array') s = unwrap(def['element']);
    else return [];
  }
  const def = defOf(s);
  return def?.['type'] === 'object' ? Object.keys(def['shape']) : [];
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest known key, when it is close enough to be a typo (or the same word in another case). */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = k.toLowerCase() === key.toLowerCase() ? 0 : distance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

const joinPath = (path: readonly PropertyKey[]) => path.map(String).join('.');

/**
 * The problems of a failed parse: each unknown key on its own, with the closest known key where
 * one is close (at the top level, also a key of `pyexec` or `execution` written one level too high).
 */
export function schemaProblems(schema: z.ZodType, error: z.ZodError): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code !== 'unrecognized_keys') {
      out.push({ path: joinPath(issue.path), message: issue.message });
      continue;
    }
    const known = knownKeysAt(schema, issue.path);
    for (const key of issue.keys) {
      const where = joinPath([...issue.path, key]);
      let hint = didYouMean(key, known);
      if (!hint && issue.path.length === 0) {
        for (const section of ['pyexec', 'execution']) {
          if (knownKeysAt(schema, [section]).includes(key)) hint = `${section}.${key}`;
        }
      }
      out.push({
        path: where,
        message: `unknown key '${key}'${hint ? `: did you mean '${hint}'?` : ''} (known here: ${known.join(', ')})`,
      });
    }
  }
  return out;
}

/** Checks a Redis URL; `setting` names where it came from. */
export function redisUrlProblem(url: string, setting: string): ConfigProblem | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return {
      path: setting,
      message: `${JSON.stringify(url)} is not a URL; expected redis://[user:password@]host:port[/db] (rediss:// for TLS)`,
    };
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    return {
      path: setting,
      message: `${JSON.stringify(url)} is a ${parsed.protocol.replace(/:$/, '')} URL, not a Redis one; expected redis://host:port (rediss:// for TLS)`,
    };
  }
  if (!parsed.hostname)
    return { path: setting, message: `${JSON.stringify(url)} names no host; expected redis://host:port` };
  return undefined;
}
