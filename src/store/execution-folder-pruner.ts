import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';

export interface ExecutionFolderPrunerOptions {
  /** `pyexec.execution_root`: `<root>/YYYY-MM/<folder>/` (see execution-folder.ts). */
  readonly root: string;
  /** A finished request's folder goes this long after it finished (`retention.finished_seconds`,
   * the TTL of the request's records in Redis). */
  readonly finishedMs: number;
  /** A folder with no response.json (its request never finished: a crash) goes this long after its
   * last change: longer than any request can stay in flight (hold deadline, run time, retention). */
  readonly abandonedMs: number;
  /** Time between two passes. */
  readonly intervalMs: number;
  readonly logger: Logger;
}

/**
 * Retention on disk, as in Redis: removes the execution folders of requests that finished longer
 * ago than `finishedMs` (the result stage writes response.json when a request ends; its mtime is the
 * end), and folders without one once `abandonedMs` has passed since their last change; then empty
 * month folders. Processes sharing the execution root may prune at the same time: a folder removed
 * by another is not an error.
 */
export class ExecutionFolderPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly options: ExecutionFolderPrunerOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.pruneOnce()
        .catch((err) => this.options.logger.warn({ err: (err as Error).message }, 'pruning execution folders failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; resolves with the folders removed. */
  async pruneOnce(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const month of await entries(this.options.root)) {
      const monthDir = path.join(this.options.root, month);
      for (const name of await entries(monthDir)) {
        const folder = path.join(monthDir, name);
        if (await this.expired(folder, now)) {
          await rm(folder, { recursive: true, force: true });
          removed.push(folder);
        }
      }
      if ((await entries(monthDir)).length === 0) await rmdir(monthDir).catch(() => {});
    }
    if (removed.length > 0) this.options.logger.info({ removed: removed.length }, 'pruned execution folders');
    return removed;
  }

  private async expired(folder: string, now: number): Promise<boolean> {
    const finished = await mtime(path.join(folder, 'response.json'));
    if (finished !== undefined) return now - finished > this.options.finishedMs;
    const changed = await mtime(folder);
    return changed !== undefined && now - changed > this.options.abandonedMs;
  }
}

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
}

async function mtime(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return undefined;
  }
}
