import type { KernelConnection, KernelMessage } from '@jupyterlab/services';
import type { OutputChunk } from './executor.js';

/** An nbformat v4 output of a code cell. */
export type NotebookOutput =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: string }
  | { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | {
      output_type: 'execute_result';
      data: Record<string, unknown>;
      metadata: Record<string, unknown>;
      execution_count: number | null;
    }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

/**
 * How a cell ended. `died`: the kernel went away under it (restarting, dead, websocket closed);
 * `timeout`: it ran past its time and was interrupted (`interrupted` false if it did not come back
 * idle within the grace period); `aborted`: the caller's signal fired and the kernel was interrupted.
 */
export type CellStatus = 'ok' | 'error' | 'timeout' | 'died' | 'aborted';

export interface CellResult {
  status: CellStatus;
  outputs: NotebookOutput[];
  stdout: string;
  stderr: string;
  error?: { ename: string; evalue: string; traceback: string[] } | undefined;
  executionCount: number | null;
  interrupted?: boolean;
  /** The data of display messages with this MIME type (pyexec's own run record). */
  records: unknown[];
}

export interface RunCellOptions {
  timeoutMs: number;
  signal: AbortSignal;
  /** Characters kept per output stream; the rest is counted and noted with a marker. */
  maxOutputChars: number;
  silent?: boolean;
  interruptGraceMs: number;
  interrupt: () => Promise<void>;
  /** Display messages of this MIME type are taken out of the outputs into `records`. */
  recordMime?: string;
  /** Rich outputs (display_data, execute_result) kept; later ones are counted and dropped. @defaultValue 200 */
  maxRichOutputs?: number;
  /** Live output: each stream text and each kept rich output, as its IOPub message arrives. */
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
  /** Stop the kernel's queue when this cell fails (later cells sent without waiting are aborted). @defaultValue true */
  stopOnError?: boolean;
  /** The execute request's metadata (pyexec's run spec travels there: kernel_session._gate). */
  metadata?: Record<string, string>;
}

/** A text buffer that keeps the first `limit` characters and counts the rest. */
class Bounded {
  private text = '';
  private dropped = 0;
  constructor(private readonly limit: number) {}
  push(s: string): string {
    const room = this.limit - this.text.length;
    const kept = room > 0 ? s.slice(0, room) : '';
    this.text += kept;
    this.dropped += s.length - kept.length;
    return kept;
  }
  get value(): string {
    return this.dropped ? `${this.text}\n[... output truncated: ${this.dropped} more characters ...]\n` : this.text;
  }
}

const DEATH = new Set(['dead', 'restarting', 'autorestarting']);

/**
 * Runs one cell (`allow_stdin: false`, `stop_on_error: true`) and collects its IOPub outputs by
 * type and MIME. Never rejects for the code's own errors: the outcome is in `status`.
 */
export async function runCell(kernel: KernelConnection, code: string, options: RunCellOptions): Promise<CellResult> {
  const stdout = new Bounded(options.maxOutputChars);
  const stderr = new Bounded(options.maxOutputChars);
  const outputs: NotebookOutput[] = [];
  const records: unknown[] = [];
  let error: CellResult['error'];
  let executionCount: number | null = null;
  let rich = 0;
  const maxRich = options.maxRichOutputs ?? 200;
  const live = (chunk: OutputChunk) => {
    try {
      options.onOutput?.(chunk);
    } catch {
      // Live output is best effort: the outcome never depends on it.
    }
  };

  const future = kernel.requestExecute(
    {
      code,
      silent: options.silent ?? false,
      store_history: !options.silent,
      allow_stdin: false,
      stop_on_error: options.stopOnError ?? true,
    },
    true,
    options.metadata,
  );
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    const content = msg.content as Record<string, unknown>;
    switch (msg.header.msg_type) {
      case 'stream': {
        const name = content['name'] === 'stderr' ? 'stderr' : 'stdout';
        const text = String(content['text'] ?? '');
        if (text) live({ kind: name, text });
        const kept = (name === 'stderr' ? stderr : stdout).push(text);
        const last = outputs.at(-1);
        if (last?.output_type === 'stream' && last.name === name) last.text += kept;
        else if (kept) outputs.push({ output_type: 'stream', name, text: kept });
        break;
      }
      case 'display_data':
      case 'execute_result': {
        const data = (content['data'] ?? {}) as Record<string, unknown>;
        if (options.recordMime && options.recordMime in data) {
          records.push(data[options.recordMime]);
          break;
        }
        if (++rich > maxRich) {
          if (rich === maxRich + 1)
            stderr.push(`\n[... more than ${maxRich} rich outputs: the rest were dropped ...]\n`);
          break;
        }
        const metadata = (content['metadata'] ?? {}) as Record<string, unknown>;
        live({ kind: 'display', data, metadata });
        if (msg.header.msg_type === 'execute_result') {
          outputs.push({
            output_type: 'execute_result',
            data,
            metadata,
            execution_count: (content['execution_count'] as number) ?? null,
          });
        } else {
          outputs.push({ output_type: 'display_data', data, metadata });
        }
        break;
      }
      case 'error': {
        error = {
          ename: String(content['ename']),
          evalue: String(content['evalue']),
          traceback: (content['traceback'] as string[]) ?? [],
        };
        outputs.push({ output_type: 'error', ...error });
        break;
      }
      case 'clear_output':
        outputs.length = 0;
        break;
    }
  };

  let settle: (status: CellStatus) => void = () => {};
  const ended = new Promise<CellStatus>((resolve) => (settle = resolve));
  const onStatus = (_: unknown, status: string) => DEATH.has(status) && settle('died');
  const onConnection = (_: unknown, status: string) => status === 'disconnected' && settle('died');
  kernel.statusChanged.connect(onStatus);
  kernel.connectionStatusChanged.connect(onConnection);
  const onAbort = () => settle('aborted');
  options.signal.addEventListener('abort', onAbort, { once: true });
  if (options.signal.aborted) onAbort();
  const timer = setTimeout(() => settle('timeout'), options.timeoutMs);
  future.done.then(
    (reply) => {
      executionCount = (reply?.content as { execution_count?: number } | undefined)?.execution_count ?? null;
      settle(reply?.content.status === 'ok' ? 'ok' : 'error');
    },
    () => settle('died'),
  );
  const status = await ended;
  clearTimeout(timer);
  options.signal.removeEventListener('abort', onAbort);
  let interrupted: boolean | undefined;
  if (status === 'timeout' || status === 'aborted') {
    // Interrupt, and give the kernel a moment to come back idle (the pool restarts it anyway).
    interrupted = await options
      .interrupt()
      .then(() =>
        Promise.race([
          future.done.then(
            () => true,
            () => false,
          ),
          new Promise<boolean>((r) => setTimeout(() => r(false), options.interruptGraceMs)),
        ]),
      )
      .catch(() => false);
  }
  kernel.statusChanged.disconnect(onStatus);
  kernel.connectionStatusChanged.disconnect(onConnection);
  return { status, outputs, stdout: stdout.value, stderr: stderr.value, error, executionCount, interrupted, records };
}
