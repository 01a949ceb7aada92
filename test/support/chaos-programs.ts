/**
 * The programs of the chaos runs (test/support/chaos.ts): real Python that runs in real kernels
 * against the soft IOC, written by a generator behind the plug-in interface from the request's
 * task_objective, so that every request's effect is countable at the IOC:
 *
 *   `chaos read <n> sleep=<s>`                reads BEAM:CURRENT, sleeps s seconds (read-only)
 *   `chaos write <n> value=<v> before=<s> after=<s>`
 *                                             sleeps, writes v to MAG:QF1:CURRENT:SP once, sleeps:
 *                                             write-capable, held for approval; v is unique per
 *                                             request, so the IOC's write log says how often it ran
 *   `chaos error <n>`                         attempt 1 raises (a code error: regenerated), then reads
 *
 * Generation takes `GENERATION_MS` (an LLM is not instant), so a generation worker is killed while
 * it works.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CodeGenerator, GeneratedCode, GenerationRequest } from '../../src/generators/code-generator.js';

export const GENERATION_MS = 150;
export const WRITE_PV = 'MAG:QF1:CURRENT:SP';

export type ChaosKind = 'read' | 'write' | 'error';

export interface ChaosTask {
  readonly kind: ChaosKind;
  readonly n: number;
  readonly value?: number;
  readonly sleep?: number;
  readonly before?: number;
  readonly after?: number;
}

export function chaosObjective(t: ChaosTask): string {
  const extra = Object.entries({ value: t.value, sleep: t.sleep, before: t.before, after: t.after })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return ['chaos', t.kind, String(t.n), ...extra].join(' ');
}

export function parseObjective(objective: string): ChaosTask | null {
  const [word, kind, n, ...rest] = objective.split(' ');
  if (word !== 'chaos' || !kind || !['read', 'write', 'error'].includes(kind)) return null;
  const kv = Object.fromEntries(rest.map((p) => p.split('=') as [string, string]));
  const num = (k: string) => (kv[k] !== undefined ? Number(kv[k]) : undefined);
  return {
    kind: kind as ChaosKind,
    n: Number(n),
    ...(num('value') !== undefined ? { value: num('value')! } : {}),
    ...(num('sleep') !== undefined ? { sleep: num('sleep')! } : {}),
    ...(num('before') !== undefined ? { before: num('before')! } : {}),
    ...(num('after') !== undefined ? { after: num('after')! } : {}),
  };
}

function program(t: ChaosTask, attempt: number): string {
  const tag = `chaos-${t.kind}-${t.n}`;
  if (t.kind === 'write') {
    return [
      'import time',
      'from epics import caput',
      `time.sleep(${t.before ?? 0.5})`,
      `ok = caput('${WRITE_PV}', ${t.value}, wait=True, timeout=5)`,
      `time.sleep(${t.after ?? 0.5})`,
      `results = {'tag': '${tag}', 'written': ${t.value}, 'ok': ok}`,
    ].join('\n');
  }
  const lines = ['import time', 'from epics import caget'];
  if (t.kind === 'error' && attempt === 1) lines.push(`raise ValueError('${tag}: first attempt fails')`);
  lines.push(
    "beam = caget('BEAM:CURRENT', timeout=5)",
    `time.sleep(${t.sleep ?? 0.5})`,
    `results = {'tag': '${tag}', 'beam': beam, 'attempt': ${attempt}}`,
  );
  return lines.join('\n');
}

export class ChaosGenerator implements CodeGenerator {
  readonly name = 'chaos';

  async generate(req: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode> {
    await sleep(GENERATION_MS, undefined, { signal });
    const task = parseObjective(req.request.task_objective);
    const code = task
      ? program(task, req.attempt)
      : `results = {'echo': ${JSON.stringify(req.request.task_objective)}}`;
    return { code, generator: this.name };
  }
}
