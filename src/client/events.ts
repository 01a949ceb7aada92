import type { RequestEvent, RequestStatus } from '../store/request-store.js';

/**
 * The events of a request, as producers see them (the TypeScript client's `stream`, the HTTP API's
 * server-sent events, the Python client): one JSON shape, snake_case like the request model. `id`
 * is the event's id in the request's stream (resume after it with `Last-Event-ID`); `at` is ms
 * since the epoch. A stream ends with exactly one `finished` event.
 */
export type PyexecEvent =
  | { readonly type: 'submitted'; readonly id: string; readonly at: number; readonly status: RequestStatus }
  | {
      readonly type: 'status';
      readonly id: string;
      readonly at: number;
      readonly status: RequestStatus;
      /** The stage now working on it, and the generation round. */
      readonly stage?: string;
      readonly attempt?: number;
    }
  | {
      /** Held for a person: what the hold says (the approver sees the code and its analysis). */
      readonly type: 'approval_required';
      readonly id: string;
      readonly at: number;
      readonly status: 'awaiting_approval';
      readonly hold_job_id: string;
      readonly deadline: number;
      readonly reason: string;
      readonly mode: string;
      readonly risk: string;
      readonly code_sha256: string;
    }
  | { readonly type: 'approved'; readonly id: string; readonly at: number; readonly approver: string }
  | { readonly type: 'stdout' | 'stderr'; readonly id: string; readonly at: number; readonly text: string }
  | {
      /** Rich output as it is displayed (a figure: `data['image/png']`, base64). */
      readonly type: 'display';
      readonly id: string;
      readonly at: number;
      readonly data: Record<string, unknown>;
      readonly metadata: Record<string, unknown>;
    }
  | {
      /** Live output past the request's budget was dropped (the response still has what was kept). */
      readonly type: 'output_dropped';
      readonly id: string;
      readonly at: number;
      /** The bound that was reached (first marker), or the total dropped (`final`, after the run). */
      readonly limit_bytes?: number;
      readonly dropped_bytes?: number;
      readonly final: boolean;
    }
  | { readonly type: 'cancel_requested'; readonly id: string; readonly at: number }
  | {
      readonly type: 'finished';
      readonly id: string;
      readonly at: number;
      readonly status: 'succeeded' | 'failed' | 'rejected' | 'expired' | 'cancelled';
    };

export type PyexecEventType = PyexecEvent['type'];

/** Every event type, for schemas and documentation. */
export const EVENT_TYPES = [
  'submitted',
  'status',
  'approval_required',
  'approved',
  'stdout',
  'stderr',
  'display',
  'output_dropped',
  'cancel_requested',
  'finished',
] as const satisfies readonly PyexecEventType[];

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const obj = (v: unknown): Record<string, unknown> =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** A stored event (src/store/request-store.ts) as the producer's event; null for kinds it does not show. */
export function toPyexecEvent(raw: RequestEvent): PyexecEvent | null {
  const { id, at } = raw;
  const d = obj(raw.data);
  switch (raw.type) {
    case 'submitted':
      return { type: 'submitted', id, at, status: raw.status ?? 'queued' };
    case 'status':
      if (raw.status === 'awaiting_approval' && d['holdJobId'] !== undefined) {
        return {
          type: 'approval_required',
          id,
          at,
          status: 'awaiting_approval',
          hold_job_id: str(d['holdJobId']),
          deadline: num(d['deadline']) ?? 0,
          reason: str(d['reason']),
          mode: str(d['mode']),
          risk: str(d['risk']),
          code_sha256: str(d['codeSha256']),
        };
      }
      return {
        type: 'status',
        id,
        at,
        status: raw.status ?? 'queued',
        ...(d['stage'] !== undefined ? { stage: str(d['stage']) } : {}),
        ...(num(d['attempt']) !== undefined ? { attempt: num(d['attempt'])! } : {}),
      };
    case 'approved':
      return { type: 'approved', id, at, approver: str(d['approver']) };
    case 'stdout':
    case 'stderr':
      return { type: raw.type, id, at, text: str(d['text']) };
    case 'display':
      return { type: 'display', id, at, data: obj(d['data']), metadata: obj(d['metadata']) };
    case 'output_dropped':
      return {
        type: 'output_dropped',
        id,
        at,
        final: d['final'] === true,
        ...(num(d['limit_bytes']) !== undefined ? { limit_bytes: num(d['limit_bytes'])! } : {}),
        ...(num(d['dropped_bytes']) !== undefined ? { dropped_bytes: num(d['dropped_bytes'])! } : {}),
      };
    case 'cancel_requested':
      return { type: 'cancel_requested', id, at };
    case 'finished':
      return {
        type: 'finished',
        id,
        at,
        status: (raw.status ?? str(d['status'])) as Extract<PyexecEvent, { type: 'finished' }>['status'],
      };
    default:
      return null;
  }
}

/** Whether stream id `a` comes after `b` (`<ms>-<seq>`). */
export function isAfter(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}
