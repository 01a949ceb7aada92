import { QueueEvents } from 'bullmq';
import { QueueName } from '../queues/envelope.js';
import type { RedisConnection as Redis } from '../redis/connection.js';

/**
 * Something happened to a hold job: it arrived, was promoted by a decision, settled, or went away;
 * or a producer cancelled a request (`cancelled`, with its requestId: a held one leaves the list).
 */
export interface ApprovalFeedEvent {
  /** The hold job; empty for `cancelled`, which names the request. */
  readonly holdJobId: string;
  /** The BullMQ event: `added`/`delayed` (a job is held), `waiting` (promoted), `active`, `completed`, `failed`, `removed`; or `cancelled`. */
  readonly event: string;
  readonly requestId?: string;
  readonly at: number;
}

/** A source of live approval events (the API's `/api/events` streams them). */
export interface ApprovalEventSource {
  subscribe(listener: (event: ApprovalFeedEvent) => void): () => void;
}

const EVENTS = ['added', 'delayed', 'waiting', 'active', 'completed', 'failed', 'removed'] as const;

/**
 * Live events of the approval-hold queue, read from BullMQ's own event stream (QueueEvents), so
 * jobs held or decided by any process of the fleet show up without polling the queue.
 */
export class ApprovalFeed implements ApprovalEventSource {
  private readonly listeners = new Set<(event: ApprovalFeedEvent) => void>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly events: QueueEvents,
    private readonly cancels: Redis | undefined,
  ) {
    for (const name of EVENTS) {
      events.on(name, (args: { jobId: string }) => this.emit({ holdJobId: args.jobId, event: name, at: Date.now() }));
    }
    events.on('error', () => {});
    cancels?.on('message', (_channel: string, requestId: string) =>
      this.emit({ holdJobId: '', event: 'cancelled', requestId, at: Date.now() }),
    );
  }

  /**
   * Starts reading events from now on; `connection` must be dedicated (a blocking XREAD runs on it),
   * as must `cancelConnection` (subscribed to the producers' cancel channel) when given.
   */
  static async start(connection: Redis, prefix: string, cancelConnection?: Redis): Promise<ApprovalFeed> {
    const events = new QueueEvents(QueueName.approval, { connection, prefix, lastEventId: '$' });
    await events.waitUntilReady();
    if (cancelConnection) {
      cancelConnection.on('error', () => {});
      await cancelConnection.subscribe(`${prefix}:cancel`);
    }
    return new ApprovalFeed(events, cancelConnection);
  }

  subscribe(listener: (event: ApprovalFeedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: ApprovalFeedEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // One broken subscriber must not starve the others.
      }
    }
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.listeners.clear();
      this.cancels?.disconnect();
      await this.events.close();
    })();
    return this.closing;
  }
}
