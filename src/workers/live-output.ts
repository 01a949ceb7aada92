import type { OutputChunk } from '../executors/executor.js';
import type { Logger } from '../logger.js';
import type { OutputEventInput, RequestStore } from '../store/request-store.js';

/** What the run has produced so far: BullMQ job progress of an execution job. */
export interface OutputProgress {
  readonly stage: 'execution';
  readonly stdout_bytes: number;
  readonly stderr_bytes: number;
  readonly displays: number;
  /** Bytes not sent because the request's live-output budget was spent. */
  readonly dropped_bytes: number;
  readonly updated_at: number;
}

export interface LiveOutputOptions {
  readonly store: Pick<RequestStore, 'appendOutput' | 'outputSummary'>;
  readonly requestId: string;
  /** Output is gathered this long before it is sent. */
  readonly flushMs: number;
  /** The request's budget (shared by every attempt: the store counts it). */
  readonly maxBytes: number;
  readonly maxEvents: number;
  readonly logger: Logger;
  /** After each flush (BullMQ job progress). */
  readonly onProgress?: (progress: OutputProgress) => void;
}

/** Text events are cut at this size, so one event never holds a whole flood. */
const MAX_TEXT_EVENT = 64 * 1024;

type Pending =
  | { kind: 'stdout' | 'stderr'; text: string }
  | { kind: 'display'; json: string; bytes: number }
  /** The first chunk past this run's budget: an event that cannot fit, so the store adds its marker. */
  | { kind: 'over' };

/**
 * Live output of one run, on its way to the request's event stream: chunks are gathered for
 * `flushMs` (adjacent text of one stream becomes one event), then sent in one atomic script call
 * that charges the request's budget (RequestStore.appendOutput). Bounded on both sides: past the
 * budget this side stops buffering and only counts, so a loop printing millions of lines costs a
 * counter, not memory or Redis. Flushes are sent one after another, in order. Best effort: a
 * failed write is logged once and never fails the run (the response carries the kept output).
 */
export class LiveOutput {
  private pending: Pending[] = [];
  private pendingBytes = 0;
  /** Bytes this run has accepted for sending (its own view of the budget). */
  private accepted = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;
  /** This run reached the budget (the store has been told, or will be with the next flush). */
  private capped = false;
  private warned = false;
  /** `dropped_bytes`: dropped here, past this run's view of the budget (never sent). */
  private readonly totals = { stdout_bytes: 0, stderr_bytes: 0, displays: 0, dropped_bytes: 0 };
  /** Sent, and dropped by the store (the request's budget was spent by earlier attempts). */
  private storeDropped = 0;

  constructor(private readonly options: LiveOutputOptions) {}

  /** Takes one chunk (synchronous; never throws). */
  readonly push = (chunk: OutputChunk): void => {
    if (this.closed) return;
    if (chunk.kind === 'display') {
      const json = JSON.stringify({ data: chunk.data, metadata: chunk.metadata });
      const bytes = Buffer.byteLength(json);
      this.totals.displays += 1;
      if (!this.admit(bytes)) return;
      this.pending.push({ kind: 'display', json, bytes });
      this.pendingBytes += bytes;
      this.flushSoon(true);
      return;
    }
    const bytes = Buffer.byteLength(chunk.text);
    this.totals[chunk.kind === 'stdout' ? 'stdout_bytes' : 'stderr_bytes'] += bytes;
    if (!this.admit(bytes)) return;
    const last = this.pending.at(-1);
    if (last && last.kind === chunk.kind) last.text += chunk.text;
    else this.pending.push({ kind: chunk.kind, text: chunk.text });
    this.pendingBytes += bytes;
    this.flushSoon(this.pendingBytes >= MAX_TEXT_EVENT);
  };

  /** Sends what is pending and, if output was dropped, the request's final count; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.writing;
    this.flush();
    this.closed = true;
    if (this.totals.dropped_bytes > 0 || this.storeDropped > 0)
      this.enqueue(() => this.options.store.outputSummary(this.options.requestId, this.totals.dropped_bytes));
    return this.writing;
  }

  /** Whether `bytes` more fit this run's view of the budget; counts them as dropped if not. */
  private admit(bytes: number): boolean {
    // Once past the bound, nothing more: a later small chunk must not leave a hole before it.
    if (this.capped || this.accepted + bytes > this.options.maxBytes) {
      this.totals.dropped_bytes += bytes;
      if (!this.capped) {
        this.capped = true;
        this.pending.push({ kind: 'over' });
        this.flushSoon(false);
      }
      return false;
    }
    this.accepted += bytes;
    return true;
  }

  private flushSoon(now: boolean): void {
    if (now) {
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => this.flush(), this.options.flushMs);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const events: OutputEventInput[] = [];
    for (const p of this.pending) {
      if (p.kind === 'display') {
        events.push({ type: 'display', bytes: p.bytes, data: p.json });
        continue;
      }
      if (p.kind === 'over') {
        events.push({ type: 'over', bytes: 0, data: '' });
        continue;
      }
      for (const text of splitText(p.text, MAX_TEXT_EVENT))
        events.push({ type: p.kind, bytes: Buffer.byteLength(text), data: JSON.stringify({ text }) });
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.enqueue(async () => {
      const res = await this.options.store.appendOutput(this.options.requestId, events, this.options);
      this.storeDropped += res.dropped;
      this.options.onProgress?.({
        stage: 'execution',
        ...this.totals,
        dropped_bytes: this.totals.dropped_bytes + this.storeDropped,
        updated_at: Date.now(),
      });
    });
  }

  private enqueue(step: () => Promise<unknown>): void {
    this.writing = this.writing.then(step).then(
      () => undefined,
      (err: unknown) => {
        if (this.warned) return;
        this.warned = true;
        this.options.logger.warn({ err: (err as Error).message }, 'live output not sent');
      },
    );
  }
}

/** Cuts text into pieces of at most `max` bytes, never inside a character. */
function splitText(text: string, max: number): string[] {
  if (Buffer.byteLength(text) <= max) return [text];
  const out: string[] = [];
  let piece = '';
  let size = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (size + n > max) {
      out.push(piece);
      piece = '';
      size = 0;
    }
    piece += ch;
    size += n;
  }
  if (piece) out.push(piece);
  return out;
}
