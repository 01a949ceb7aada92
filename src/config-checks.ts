import type { z } from 'zod';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { EXECUTION_MODES } from './modes.js';

/**
 * What the schema alone cannot say about a config: unknown keys with a did-you-mean, and the
 * combinations pyexec refuses, each with the key and the reason. Both run inside parseConfig, so
 * every `pyexec` verb stops on them before it starts anything.
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

/** The combinations pyexec refuses (each problem names the key and says why). */
export function combinationProblems(config: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const { modes, epics, container } = config.execution;
  if (modes.read_only.allows_writes) {
    out.push({
      path: 'execution.modes.read_only.allows_writes',
      message:
        'must be false: read-only code never writes (its kernel refuses writes at run time); code that writes runs in write_access',
    });
  }
  if (modes.read_only.kernel_name === modes.write_access.kernel_name) {
    out.push({
      path: 'execution.modes.read_only.kernel_name',
      message: `'${modes.read_only.kernel_name}' is also the write_access kernel: read-only code would run in a kernel that may write; give each mode its own kernel`,
    });
  }
  for (const mode of EXECUTION_MODES) {
    const gateway = modes[mode].gateway;
    if (gateway !== undefined && !(gateway in epics.gateways)) {
      const known = Object.keys(epics.gateways);
      out.push({
        path: `execution.modes.${mode}.gateway`,
        message: `no gateway '${gateway}' under execution.epics.gateways (${known.length ? `known: ${known.join(', ')}` : 'none is defined'})`,
      });
    }
  }
  const url = config.pyexec.redis.url;
  const urlProblem = url === undefined ? undefined : redisUrlProblem(url, 'pyexec.redis.url (or PYEXEC_REDIS_URL)');
  if (urlProblem) out.push(urlProblem);
  const cluster = config.pyexec.redis.cluster;
  if (cluster && url !== undefined) {
    out.push({
      path: 'pyexec.redis.cluster',
      message: 'give pyexec.redis.url (one server) or pyexec.redis.cluster, not both',
    });
  }
  cluster?.nodes.forEach((node, i) => {
    const problem = redisUrlProblem(node, `pyexec.redis.cluster.nodes[${i}]`);
    if (problem) out.push(problem);
  });
  const pool = container.pool as { servers?: unknown[] } | undefined;
  const listed = Array.isArray(pool?.servers) && pool.servers.length > 0;
  const containers = Object.keys(config.services?.jupyter?.containers ?? {});
  if (container.jupyter_port !== undefined && container.jupyter_host === undefined) {
    out.push({ path: 'execution.container.jupyter_port', message: 'needs execution.container.jupyter_host' });
  }
  const ways = [
    container.jupyter_host !== undefined && 'execution.container.jupyter_host',
    containers.length > 0 && 'services.jupyter.containers',
    listed && 'execution.container.pool.servers',
  ].filter((w): w is string => Boolean(w));
  if (ways.length > 1) {
    out.push({
      path: ways[0]!,
      message: `the Jupyter servers are given twice (${ways.join(' and ')}); keep one`,
    });
  }
  const names = new Set<string>();
  for (const [i, reg] of (config.registry?.code_generators ?? []).entries()) {
    if (names.has(reg.name)) {
      out.push({ path: `registry.code_generators.${i}.name`, message: `generator '${reg.name}' is registered twice` });
    }
    names.add(reg.name);
    const settings = config.execution.generators[reg.name];
    const own = settings?.['module_path'];
    if (own !== undefined && own !== reg.module_path) {
      out.push({
        path: `execution.generators.${reg.name}.module_path`,
        message: `'${String(own)}' differs from registry.code_generators.${i}.module_path '${reg.module_path}'`,
      });
    }
  }
  return out;
}
