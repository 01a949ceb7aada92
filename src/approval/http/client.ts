import type { ApprovalRecord } from '../../queues/envelope.js';
import type { AuditEntry, AuditFilter, RequestOutcome } from '../approval-service.js';
import { ApproverApiError } from '../errors.js';
import type { HeldDetailView, HeldSummaryView } from '../held-view.js';
import type { PvReading } from '../pv-reader.js';
import type { ApproverIdentity } from '../tokens.js';

/** Filters of `audit` (see the API's /api/audit). */
export type AuditQuery = AuditFilter;

export interface ApproverClientOptions {
  /** Base URL of the approver API, e.g. `http://127.0.0.1:8470`. */
  readonly url: string;
  /** Bearer token (in clear; the server stores only its sha256). */
  readonly token?: string | undefined;
  /** Sent as `x-pyexec-client`, recorded as the decision's source. @defaultValue "api" */
  readonly client?: string;
  /** Per-call timeout. @defaultValue 15000 */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/**
 * A client of the approver HTTP API (what `pyexec approvals` uses). Every error answer becomes an
 * ApproverApiError with the HTTP status and the API's error code.
 */
export class ApproverClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ApproverClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  whoami(): Promise<ApproverIdentity> {
    return this.call('GET', '/api/whoami');
  }

  async list(): Promise<HeldSummaryView[]> {
    return (await this.call<{ held: HeldSummaryView[] }>('GET', '/api/held')).held;
  }

  /** A held job by its hold job id, request id or thread id. */
  show(holdJobId: string): Promise<HeldDetailView> {
    return this.call('GET', `/api/held/${encodeURIComponent(holdJobId)}`);
  }

  /** Approves the code and analysis named by their hashes (those the approver was shown). */
  async approve(
    holdJobId: string,
    body: { codeSha256: string; analysisSha256: string; payload?: Record<string, unknown> },
  ): Promise<ApprovalRecord> {
    return (
      await this.call<{ decision: ApprovalRecord }>('POST', `/api/held/${encodeURIComponent(holdJobId)}/approve`, body)
    ).decision;
  }

  async reject(
    holdJobId: string,
    body: { reason: string; codeSha256?: string; analysisSha256?: string },
  ): Promise<ApprovalRecord> {
    return (
      await this.call<{ decision: ApprovalRecord }>('POST', `/api/held/${encodeURIComponent(holdJobId)}/reject`, body)
    ).decision;
  }

  /** The audit trail, newest `limit` entries that match, oldest first. */
  async audit(filter: number | AuditQuery = {}): Promise<AuditEntry[]> {
    const f = typeof filter === 'number' ? { limit: filter } : filter;
    const q = new URLSearchParams({ limit: String(f.limit ?? 200) });
    if (f.decisions?.length) q.set('decision', f.decisions.join(','));
    if (f.approver) q.set('approver', f.approver);
    if (f.text) q.set('q', f.text);
    if (f.since !== undefined) q.set('since', String(f.since));
    if (f.until !== undefined) q.set('until', String(f.until));
    return (await this.call<{ entries: AuditEntry[] }>('GET', `/api/audit?${q}`)).entries;
  }

  /** Current values of the PVs a held job writes, read through the read-only path. */
  pvs(holdJobId: string): Promise<{ available: boolean; readings: Record<string, PvReading> }> {
    return this.call('GET', `/api/held/${encodeURIComponent(holdJobId)}/pvs`);
  }

  /** How a request went: its state, events and (once ended) its response. */
  outcome(requestId: string): Promise<RequestOutcome> {
    return this.call('GET', `/api/requests/${encodeURIComponent(requestId)}`);
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {
      'x-pyexec-client': this.options.client ?? 'api',
      accept: 'application/json',
    };
    if (this.options.token) headers['authorization'] = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await this.fetch(`${this.base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
      });
    } catch (err) {
      throw new ApproverApiError(
        `cannot reach the approver API at ${this.base}: ${(err as Error).message}`,
        0,
        'approver_unreachable',
        { cause: err },
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApproverApiError(
        `${res.status} ${e?.message ?? (text.slice(0, 200) || res.statusText)}`,
        res.status,
        e?.code ?? `http_${res.status}`,
      );
    }
    return json as T;
  }
}
