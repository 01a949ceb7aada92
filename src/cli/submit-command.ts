import type { PyexecEvent } from '../client/events.js';
import type { PyexecClient } from '../client/pyexec-client.js';
import { approvalRequiredView, requestView, type SubmitResultView, type WaitResultView } from '../client/wire.js';

export interface SubmitCommandOptions {
  readonly wait: boolean;
  readonly json: boolean;
  readonly timeoutSeconds: number;
  readonly out?: NodeJS.WritableStream;
  readonly err?: NodeJS.WritableStream;
}

/**
 * `pyexec submit [--wait] [--json]`. With --wait and without --json, the code's stdout goes to
 * stdout and its stderr to stderr as it runs, stage changes and figures as notes on stderr, then
 * the outcome. With --json, one document (snake_case) at the end and nothing live. Exit codes: 0
 * succeeded (or submitted), 1 ended otherwise, 3 held for approval, 4 still running at --timeout.
 */
export async function submitCommand(client: PyexecClient, input: unknown, opts: SubmitCommandOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const print = (doc: unknown, text: () => string) =>
    out.write(`${opts.json ? JSON.stringify(doc, null, 2) : text()}\n`);
  const sub = await client.submit(input);
  const submitted: SubmitResultView = { request_id: sub.requestId, thread_id: sub.threadId, created: sub.created };
  if (!opts.wait) {
    print(
      submitted,
      () => `${sub.created ? 'submitted' : 'already submitted'}: ${sub.requestId} (thread ${sub.threadId})`,
    );
    return 0;
  }
  let atLineStart = true;
  const live = opts.json
    ? {}
    : {
        onStdout: (text: string) => {
          out.write(text);
          atLineStart = text.endsWith('\n');
        },
        onStderr: (text: string) => err.write(text),
        onEvent: (e: PyexecEvent) => {
          const note = noteOf(e);
          if (note) err.write(`${atLineStart ? '' : '\n'}[pyexec] ${note}\n`);
          if (note) atLineStart = true;
        },
      };
  const res = await client.wait(sub.requestId, {
    timeoutMs: opts.timeoutSeconds * 1000,
    returnOnApproval: true,
    ...live,
  });
  if (!atLineStart) out.write('\n');
  if (res.kind === 'approval_required') {
    const doc: WaitResultView = approvalRequiredView(res);
    print(
      doc,
      () =>
        `approval required: held job ${res.holdJobId} (${res.reason}); approve with: pyexec approvals approve ${res.holdJobId}`,
    );
    return 3;
  }
  if (res.kind === 'timeout') {
    print(
      { kind: 'timeout', request: res.snapshot ? requestView(res.snapshot) : null },
      () => `still ${res.snapshot?.status ?? 'unknown'} after ${opts.timeoutSeconds}s: ${sub.requestId}`,
    );
    return 4;
  }
  const r = res.response;
  print(
    r,
    () =>
      `${r.status}${r.reason ? `: ${r.reason}` : ''}\nresults: ${JSON.stringify(r.results)}\nnotebook: ${r.notebook_link ?? r.notebook_path ?? '-'}`,
  );
  return r.status === 'succeeded' ? 0 : 1;
}

/** The line a person sees for an event that is not output itself. */
function noteOf(e: PyexecEvent): string | null {
  switch (e.type) {
    case 'status':
    case 'submitted':
      return e.status;
    case 'approval_required':
      return `awaiting_approval (held job ${e.hold_job_id})`;
    case 'approved':
      return `approved by ${e.approver}`;
    case 'display': {
      const kinds = Object.keys(e.data).filter((k) => k !== 'text/plain');
      const png = typeof e.data['image/png'] === 'string' ? (e.data['image/png'] as string) : '';
      return png
        ? `figure (image/png, ${Math.round((png.length * 3) / 4 / 1024)} KiB)`
        : `display (${kinds.join(', ') || 'text'})`;
    }
    case 'output_dropped':
      return e.final
        ? `live output: ${e.dropped_bytes ?? 0} bytes not shown (the response keeps the output it kept)`
        : `live output past ${e.limit_bytes ?? '?'} bytes is not shown`;
    case 'cancel_requested':
      return 'cancel requested';
    case 'finished':
      return e.status;
    default:
      return null;
  }
}
