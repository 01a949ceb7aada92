import { Worker } from 'node:worker_threads';

/**
 * Runs configured regex patterns off the main thread. A pattern with catastrophic backtracking
 * (`(a+)+b` on a long run of `a`) would otherwise block the worker's event loop: no heartbeats, a
 * lost BullMQ lock, a /healthz that stops answering. Here each pattern gets `timeoutMs`; past it the
 * thread is terminated (V8 interrupts the regex) and a fresh one serves the next pattern.
 *
 * One thread per process, shared by every analyzer, started on first use and not holding the event
 * loop while idle. Patterns run one at a time, in the order asked.
 */
export class PatternRunner {
  private worker: Worker | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private nextId = 0;

  /** The index of the first match of `source` in `text`, -1 for none, or 'timeout'. */
  search(source: string, text: string, timeoutMs: number): Promise<number | 'timeout'> {
    const run = this.chain.then(() => this.searchNow(source, text, timeoutMs));
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private thread(): Worker {
    if (!this.worker) {
      const w = new Worker(`(${patternThread.toString()})()`, { eval: true });
      w.unref();
      w.on('error', () => {
        if (this.worker === w) this.worker = undefined;
      });
      this.worker = w;
    }
    return this.worker;
  }

  private searchNow(source: string, text: string, timeoutMs: number): Promise<number | 'timeout'> {
    const w = this.thread();
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        w.off('message', onMessage);
        w.off('exit', onExit);
        w.unref();
      };
      const onMessage = (m: { id: number; index?: number; error?: string }) => {
        if (m.id !== id) return;
        done();
        if (m.error !== undefined) reject(new Error(m.error));
        else resolve(m.index ?? -1);
      };
      const onExit = () => {
        done();
        if (this.worker === w) this.worker = undefined;
        reject(new Error('the pattern thread exited'));
      };
      const timer = setTimeout(() => {
        done();
        if (this.worker === w) this.worker = undefined;
        void w.terminate();
        resolve('timeout');
      }, timeoutMs);
      w.ref();
      w.on('message', onMessage);
      w.on('exit', onExit);
      w.postMessage({ id, source, text });
    });
  }
}

/** The thread's code (its source is evaluated in the thread: no imports, no closure). */
function patternThread(): void {
  // An eval'd worker is a CommonJS script: require, not import.
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const compiled = new Map<string, RegExp>();
  parentPort!.on('message', (m: { id: number; source: string; text: string }) => {
    try {
      let re = compiled.get(m.source);
      if (!re) {
        re = new RegExp(m.source);
        compiled.set(m.source, re);
      }
      const found = re.exec(m.text);
      parentPort!.postMessage({ id: m.id, index: found ? found.index : -1 });
    } catch (err) {
      parentPort!.postMessage({ id: m.id, error: String(err) });
    }
  });
}

/** The process's pattern runner. */
export const patternRunner = new PatternRunner();
