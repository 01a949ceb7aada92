import { spawn } from 'node:child_process';
import { pythonExecutable, scrubbedEnv } from '../python-env.js';

/** A PV's current value as read for an approver, or why it could not be read. */
export type PvReading =
  | { readonly ok: true; readonly value: unknown; readonly text: string | null; readonly at: number }
  | { readonly ok: false; readonly error: string; readonly at: number };

export interface PvReaderOptions {
  /** Channel Access settings of the read-only path (the read_only mode's `environment`). */
  readonly env: Record<string, string>;
  /** Python with pyepics. @defaultValue the project's (.venv) */
  readonly python?: string;
  /** Longest a read may take, start-up included; the child is killed after it. @defaultValue 4000 */
  readonly timeoutMs?: number;
  /** How long a reading is served from memory. @defaultValue 2000 */
  readonly cacheMs?: number;
}

/** What a PV name may look like (EPICS record names and fields); never an option (no leading `-`). */
const PV_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_:.\-[\]<>{}$()#;]{0,199}$/;
/** PVs one read asks for at most. */
export const MAX_PVS = 50;

/**
 * Reads PVs for the approver's page through a Python child (`pyexec_runtime.pv_read`, pyepics) with
 * the read-only path's EPICS environment and nothing else (no credentials), killed at its timeout:
 * a slow or unreachable IOC makes a reading fail, never a page hang. Readings are cached briefly
 * and reads of the same names share one child, so a room full of pages does not multiply them.
 */
export class PvReader {
  private readonly cache = new Map<string, PvReading>();
  private readonly inFlight = new Map<string, Promise<Record<string, PvReading>>>();

  constructor(private readonly options: PvReaderOptions) {}

  /** Current values by name; invalid names get a failed reading without asking anyone. */
  async read(names: readonly string[]): Promise<Record<string, PvReading>> {
    const now = Date.now();
    const out: Record<string, PvReading> = {};
    const wanted: string[] = [];
    for (const name of [...new Set(names)].slice(0, MAX_PVS)) {
      if (!PV_NAME.test(name)) {
        out[name] = { ok: false, error: 'not a PV name', at: now };
        continue;
      }
      const hit = this.cache.get(name);
      if (hit && now - hit.at < (this.options.cacheMs ?? 2000)) out[name] = hit;
      else wanted.push(name);
    }
    if (wanted.length === 0) return out;
    const key = wanted.sort().join('\n');
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.spawnRead(wanted).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    const fresh = await pending;
    for (const [name, reading] of Object.entries(fresh)) {
      this.cache.set(name, reading);
      out[name] = reading;
    }
    if (this.cache.size > 1000) this.cache.clear();
    return out;
  }

  private spawnRead(names: string[]): Promise<Record<string, PvReading>> {
    const timeoutMs = this.options.timeoutMs ?? 4000;
    // pyepics' own timeout leaves room for the interpreter's start-up inside ours.
    const caSeconds = Math.max(0.2, (timeoutMs - 1500) / 1000 / 2);
    return new Promise((resolve) => {
      const failAll = (error: string) => {
        const at = Date.now();
        resolve(Object.fromEntries(names.map((n) => [n, { ok: false, error, at } as PvReading])));
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(
          pythonExecutable(this.options.python),
          ['-m', 'pyexec_runtime.pv_read', '--timeout', caSeconds.toFixed(2), '--', ...names],
          { env: scrubbedEnv(this.options.env), stdio: ['ignore', 'pipe', 'pipe'] },
        );
      } catch (err) {
        failAll(`cannot start the reader: ${(err as Error).message}`);
        return;
      }
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-1_000_000)));
      child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        failAll(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        failAll(`cannot start the reader: ${err.message}`);
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const line = stdout.trim().split('\n').at(-1) ?? '';
        let parsed: Record<string, { ok: boolean; value?: unknown; text?: string | null; error?: string }>;
        try {
          parsed = JSON.parse(line);
        } catch {
          failAll(`the reader failed (exit ${code}): ${stderr.trim().split('\n').at(-1) ?? ''}`.trim());
          return;
        }
        const at = Date.now();
        resolve(
          Object.fromEntries(
            names.map((n) => {
              const r = parsed[n];
              const reading: PvReading = r?.ok
                ? { ok: true, value: r.value ?? null, text: typeof r.text === 'string' ? r.text : null, at }
                : { ok: false, error: r?.error ?? 'no answer', at };
              return [n, reading];
            }),
          ),
        );
      });
    });
  }
}
