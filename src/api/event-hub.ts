import { isAfter } from '../client/events.js';
import { isCluster, type RedisConnection as Redis } from '../redis/connection.js';
import { parseEvent, type RequestEvent, type RequestStore } from '../store/request-store.js';

/**
 * Every open event stream and long-poll of an API process, served by one blocking reader: a
 * single `XREAD BLOCK` over the event streams of all the requests being followed (one cursor per
 * stream), however many clients follow them. A follower first reads its backlog (XRANGE, after
 * its `Last-Event-ID`) on the command connection, then gets what the reader delivers after that;
 * it registers before reading the backlog and drops what it has seen, so nothing falls between
 * the two. A new stream joins the read at once (CLIENT UNBLOCK; else within `blockMs`).
 */
export class EventHub {
  private readonly followers = new Map<string, Set<Follower>>();
  /** The reader's position per followed stream key. */
  private readonly cursors = new Map<string, string>();
  private readerId: number | undefined;
  private running = true;
  private changed: (() => void) | undefined;
  private readonly loop: Promise<void>;

  constructor(
    private readonly store: RequestStore,
    /** Dedicated to the hub (a blocking XREAD runs on it). */
    private readonly reader: Redis,
    /** The command connection (CLIENT UNBLOCK, backlogs). */
    private readonly control: Redis,
    private readonly blockMs = 1000,
  ) {
    this.loop = this.run();
  }

  /** Streams followed now (for tests and metrics). */
  get size(): number {
    return this.followers.size;
  }

  /**
   * The request's events after `after` ('0': all), live, until the signal aborts or the caller
   * stops iterating. Does not end by itself: the caller stops at the event it waits for.
   */
  async *follow(requestId: string, after: string, signal: AbortSignal): AsyncGenerator<RequestEvent> {
    const key = this.store.eventsKey(requestId);
    const f: Follower = { queue: [], wake: undefined };
    this.join(key, f, after);
    const onAbort = () => f.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      let last = after;
      for (;;) {
        const page = await this.store.eventsAfter(requestId, last, 500);
        for (const ev of page) {
          last = ev.id;
          yield ev;
          if (signal.aborted) return;
        }
        if (page.length < 500) break;
      }
      while (!signal.aborted && this.running) {
        const ev = f.queue.shift();
        if (!ev) {
          await new Promise<void>((resolve) => {
            f.wake = resolve;
          });
          f.wake = undefined;
          continue;
        }
        if (!isAfter(ev.id, last)) continue;
        last = ev.id;
        yield ev;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.leave(key, f);
    }
  }

  private join(key: string, f: Follower, after: string): void {
    let set = this.followers.get(key);
    if (!set) {
      set = new Set();
      this.followers.set(key, set);
      this.cursors.set(key, after);
      this.unblock();
    }
    set.add(f);
  }

  private leave(key: string, f: Follower): void {
    const set = this.followers.get(key);
    set?.delete(f);
    if (set && set.size === 0) {
      this.followers.delete(key);
      this.cursors.delete(key);
    }
  }

  /** Ends the current blocking read so the next one includes a new stream. */
  private unblock(): void {
    this.changed?.();
    if (this.readerId !== undefined) this.control.client('UNBLOCK', this.readerId).catch(() => {});
  }

  private async run(): Promise<void> {
    // On a cluster CLIENT ID and CLIENT UNBLOCK could reach different nodes (and unblock another
    // client): a new stream joins at the next read there, within `blockMs`.
    if (!isCluster(this.reader)) {
      this.readerId = (await this.reader.client('ID').catch(() => undefined)) as number | undefined;
    }
    while (this.running) {
      if (this.cursors.size === 0) {
        await new Promise<void>((resolve) => {
          this.changed = resolve;
          setTimeout(resolve, this.blockMs);
        });
        this.changed = undefined;
        continue;
      }
      const keys = [...this.cursors.keys()];
      let res: [string, [string, string[]][]][] | null;
      try {
        res = (await this.reader.xread(
          'COUNT',
          500,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          ...keys,
          ...keys.map((k) => this.cursors.get(k)!),
        )) as [string, [string, string[]][]][] | null;
      } catch {
        if (!this.running) return;
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      for (const [key, entries] of res ?? []) {
        const set = this.followers.get(key);
        if (!set || entries.length === 0) continue;
        this.cursors.set(key, entries.at(-1)![0]);
        const events = entries.map(([id, fields]) => parseEvent(id, fields));
        for (const f of set) {
          f.queue.push(...events);
          f.wake?.();
        }
      }
    }
  }

  async close(): Promise<void> {
    this.running = false;
    this.changed?.();
    for (const set of this.followers.values()) for (const f of set) f.wake?.();
    this.reader.disconnect();
    await this.loop.catch(() => {});
  }
}

interface Follower {
  queue: RequestEvent[];
  wake: (() => void) | undefined;
}
