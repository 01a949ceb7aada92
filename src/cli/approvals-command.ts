import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type Command, Option } from 'commander';
import { ApproverApiError } from '../approval/errors.js';
import type { HeldDetailView } from '../approval/held-view.js';
import { ApproverClient } from '../approval/http/client.js';
import type { PvReading } from '../approval/pv-reader.js';
import { type ApproverRole, createToken, hashToken } from '../approval/tokens.js';
import { ConfigError, InvalidRequestError } from '../errors.js';
import { urlHost } from '../http/url-host.js';
import type { ApprovalRecord } from '../queues/envelope.js';
import type { GlobalOptions } from './context.js';

/** Options of the `approvals` group, inherited by its commands. */
interface ApiOptions {
  url?: string;
  token?: string;
  tokenFile?: string;
}

const print = (value: unknown, json: boolean | undefined, text: () => string) =>
  process.stdout.write(`${json ? JSON.stringify(value, null, 2) : text()}\n`);
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * `pyexec approvals list|show|approve|reject|audit`: HTTP clients of the approver API, with the
 * same bearer-token auth as the web page; and `pyexec approver serve|new-token|hash-token`. A held
 * job is named by its hold job id, its request id or its thread id. `approve` shows what the job
 * will write and asks y/N (unless --yes); refusals say what to do next, and come before any listing.
 */
export function registerApprovalsCommands(program: Command, globals: () => GlobalOptions): void {
  const approvals = program
    .command('approvals')
    .description('list, show, approve and reject held jobs through the approver API')
    .option('--url <url>', 'approver API (default: $PYEXEC_APPROVER_URL, else pyexec.approver host and port)')
    .option('--token <token>', 'bearer token (default: $PYEXEC_APPROVER_TOKEN)')
    .option('--token-file <file>', 'read the bearer token from a file');

  // Loaded per verb (like the config, in apiClient) so that `pyexec --help` stays fast.
  const client = (cmd: Command) => apiClient(cmd.optsWithGlobals<ApiOptions & GlobalOptions>(), globals);

  approvals
    .command('list')
    .description('jobs waiting for a decision, oldest deadline first')
    .option('--json', 'print JSON')
    .action(
      explained(async (o: { json?: boolean }, cmd: Command) => {
        const held = await (await client(cmd)).list();
        print({ held }, o.json, () =>
          held.length === 0
            ? 'no held jobs'
            : held
                .map(
                  (h) =>
                    `${h.holdJobId}  thread ${h.threadId}  by ${h.requester ?? '-'}  ${h.mode}  risk ${h.risk}  ` +
                    `writes ${h.writePvs.join(', ') || (h.writeCount ? `${h.writeCount} (PV not resolved)` : 'none')}  ` +
                    `deadline ${iso(h.deadline)}  ${h.taskObjective.slice(0, 60)}`,
                )
                .join('\n'),
        );
      }),
    );

  approvals
    .command('show')
    .description('a held job: what it writes, the request, the code with line numbers, findings, mode, risk, deadline')
    .argument('<id>', 'hold job id, request id or thread id')
    .option('--json', 'print JSON')
    .action(
      explained(async (id: string, o: { json?: boolean }, cmd: Command) => {
        const api = await client(cmd);
        const h = await api.show(id);
        if (o.json) {
          print(h, true, () => '');
          return;
        }
        const readings = h.status === 'held' ? await readingsOf(api, h) : undefined;
        print(h, false, () =>
          [
            ...summaryOf(h, readings),
            '',
            ...codeOf(h),
            ...(h.status === 'held' ? ['', `approve with: pyexec approvals approve ${h.holdJobId}`] : []),
          ].join('\n'),
        );
      }),
    );

  approvals
    .command('approve')
    .description(
      'approve a held job: shows what it will write and asks y/N (unless --yes); exactly that code is approved',
    )
    .argument('<id>', 'hold job id, request id or thread id')
    .option('-y, --yes', 'do not ask (scripts); the summary is still printed')
    .option(
      '--code-sha256 <hex>',
      'the sha256 of the code you reviewed (from `show`); refused if the job changed since',
    )
    .option('--analysis-sha256 <hex>', 'the sha256 of the analysis you reviewed (from `show`)')
    .option('--payload <json>', 'a JSON object that reaches the execution (as approval_payload) and the response')
    .option('--json', 'print JSON')
    .action(
      explained(
        async (
          id: string,
          o: { yes?: boolean; codeSha256?: string; analysisSha256?: string; payload?: string; json?: boolean },
          cmd: Command,
        ) => {
          const api = await client(cmd);
          const payload = o.payload === undefined ? undefined : parsePayload(o.payload);
          // Refusals first, before any listing: a token that may not decide, a job with nothing to decide.
          await assertMayDecide(api);
          const shown = await api.show(id);
          assertHeld(shown);
          process.stderr.write(`${summaryOf(shown, await readingsOf(api, shown)).join('\n')}\n`);
          if (payload) process.stderr.write(`payload: ${JSON.stringify(payload)}\n`);
          if (!o.yes && !(await confirm('\nApprove exactly this code and run it? [y/N] '))) {
            process.stderr.write('not approved\n');
            process.exitCode = 1;
            return;
          }
          const record = await api.approve(shown.holdJobId, {
            codeSha256: o.codeSha256 ?? shown.codeSha256,
            analysisSha256: o.analysisSha256 ?? shown.analysisSha256,
            ...(payload ? { payload } : {}),
          });
          print(
            record,
            o.json,
            () =>
              `approved ${shown.holdJobId} as ${record.approver} (code sha256 ${record.codeSha256}, mode ${record.mode}); ` +
              `follow it with: pyexec status ${shown.requestId}`,
          );
        },
      ),
    );

  approvals
    .command('reject')
    .description('reject a held job; the request ends `rejected` with the reason')
    .argument('<id>', 'hold job id, request id or thread id')
    .requiredOption('--reason <text>', 'why (shown to the producer)')
    .option('--json', 'print JSON')
    .action(
      explained(async (id: string, o: { reason: string; json?: boolean }, cmd: Command) => {
        const record = await (await client(cmd)).reject(id, { reason: o.reason });
        print(record, o.json, () => `rejected ${record.holdJobId} as ${record.approver}: ${record.reason ?? ''}`);
      }),
    );

  approvals
    .command('audit')
    .description(
      'the audit trail: decisions, expiries and cancellations (who, when, which code hash, payload, from where)',
    )
    .option('--limit <n>', 'the newest n matching entries', '200')
    .option('--decision <list>', 'only these outcomes, comma-separated: approved,rejected,expired,cancelled')
    .option('--approver <name>', 'only decisions by this approver')
    .option('--search <text>', 'only entries whose request id, thread id, hold job id or task contains it')
    .option('--json', 'print JSON')
    .action(
      explained(
        async (
          o: { limit: string; decision?: string; approver?: string; search?: string; json?: boolean },
          cmd: Command,
        ) => {
          const entries = await (await client(cmd)).audit({
            limit: Number(o.limit),
            ...(o.decision ? { decisions: o.decision.split(',').filter(Boolean) as ApprovalRecord['decision'][] } : {}),
            ...(o.approver ? { approver: o.approver } : {}),
            ...(o.search ? { text: o.search } : {}),
          });
          print({ entries }, o.json, () =>
            entries.length === 0
              ? 'no entries'
              : entries
                  .map((e) =>
                    [
                      iso(e.decidedAt),
                      e.decision.padEnd(9),
                      e.approver,
                      e.holdJobId,
                      e.threadId ? `thread ${e.threadId}` : '',
                      `code ${e.codeSha256.slice(0, 16)}`,
                      `via ${e.source ?? '-'}${e.address ? ` from ${e.address}` : ''}`,
                      e.reason ? `reason: ${e.reason}` : '',
                      e.payload ? `payload: ${JSON.stringify(e.payload)}` : '',
                    ]
                      .filter(Boolean)
                      .join('  '),
                  )
                  .join('\n'),
          );
        },
      ),
    );

  const approver = program.command('approver').description('the approver HTTP API and web page, and its tokens');
  approver
    .command('serve')
    .description('run the approver API and web page in this process (also serves /metrics)')
    .option('--port <port>', 'port (default: pyexec.approver.port)')
    .option('--host <host>', 'interface to bind (default: pyexec.approver.host)')
    .action(async (o: { port?: string; host?: string }) => {
      const [{ requireRedisUrl, resolveConfig }, { createLogger }, { startApproverApi }, { onShutdown }] =
        await Promise.all([
          import('./context.js'),
          import('../logger.js'),
          import('../approval/http/server.js'),
          import('./shutdown.js'),
        ]);
      const config = resolveConfig(globals());
      const logger = createLogger({ name: 'pyexec-approver' });
      const api = await startApproverApi({
        config,
        redisUrl: requireRedisUrl(globals(), config),
        logger,
        serveMetrics: true,
        ...(o.port !== undefined ? { port: Number(o.port) } : {}),
        ...(o.host !== undefined ? { host: o.host } : {}),
      });
      process.stdout.write(`approver API and web page on ${api.url}\n`);
      onShutdown(() => api.close(), 0, logger);
    });
  approver
    .command('new-token')
    .description('make a random token; prints it once, and the config entry that stores only its sha256')
    .requiredOption('--name <name>', 'who holds it (recorded as the approver of each decision)')
    .addOption(
      new Option('--role <role>', 'what it may do (producer: the producer HTTP API)')
        .choices(['viewer', 'approver', 'producer'])
        .default('approver'),
    )
    .action((o: { name: string; role: ApproverRole }) => {
      const { token, entry } = createToken(o.name, o.role);
      process.stdout.write(
        `token (give it to ${o.name}; it is not stored anywhere): ${token}\n\nadd to config.yml under pyexec.approver.tokens:\n` +
          `  - name: ${JSON.stringify(entry.name)}\n    role: ${entry.role}\n    token_sha256: ${entry.token_sha256}\n`,
      );
    });
  approver
    .command('hash-token')
    .description('print the sha256 of a token (read from stdin) for pyexec.approver.tokens')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const token = Buffer.concat(chunks).toString('utf8').trim();
      if (!token) throw new InvalidRequestError('no token on stdin');
      process.stdout.write(`${hashToken(token)}\n`);
    });
}

/** The API client of a command: --url / $PYEXEC_APPROVER_URL / config; --token / --token-file / $PYEXEC_APPROVER_TOKEN. */
async function apiClient(o: ApiOptions, globals: () => GlobalOptions): Promise<ApproverClient> {
  let url = o.url ?? process.env['PYEXEC_APPROVER_URL'];
  if (!url) {
    const { resolveConfig } = await import('./context.js');
    const { host, port } = resolveConfig(globals()).pyexec.approver;
    if (port === null) throw new ConfigError('pyexec.approver.port is null (no approver API): pass --url');
    url = `http://${urlHost(host)}:${port}`;
  }
  const token =
    o.token ??
    (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined) ??
    process.env['PYEXEC_APPROVER_TOKEN'];
  if (!token) throw new ConfigError(`no approver token: ${TOKEN_HINT}`);
  return new ApproverClient({ url, token, client: 'cli' });
}

function parsePayload(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new InvalidRequestError(`--payload is not valid JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidRequestError('--payload must be a JSON object');
  return value as Record<string, unknown>;
}

/** Where to get a token, for every message about a missing or refused one. */
const TOKEN_HINT =
  'get a token with `pyexec approver new-token --name <you>` (an operator adds the entry it prints to ' +
  'pyexec.approver.tokens in config.yml), then pass --token / --token-file or set PYEXEC_APPROVER_TOKEN';

/** Wraps an action so that an API error says what to do next. */
function explained<A extends unknown[]>(action: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      throw withHint(err);
    }
  };
}

function withHint(err: unknown): unknown {
  if (!(err instanceof ApproverApiError)) return err;
  const hint: Record<number, string> = {
    0: 'is `pyexec up` or `pyexec approver serve` running? point at it with --url or PYEXEC_APPROVER_URL',
    401: `the approver API does not know this token: ${TOKEN_HINT}`,
    403: 'ask an operator for a token with the approver role (`pyexec approver new-token --name <you> --role approver`)',
    404: 'list the held jobs with `pyexec approvals list`; a job is named by its hold job id, request id or thread id',
    409: 'nothing to decide now: see `pyexec approvals show <id>` and `pyexec approvals audit`',
  };
  const next = hint[err.status];
  return next ? new ApproverApiError(`${err.message}\n  next: ${next}`, err.status, err.code, { cause: err }) : err;
}

/** Refuses (403, with what to do next) a token that may only view, before anything is shown. */
async function assertMayDecide(api: ApproverClient): Promise<void> {
  const me = await api.whoami();
  if (me.role !== 'approver') {
    throw new ApproverApiError(
      `403 ${me.name} (${me.role}) may not decide; an approver token is required`,
      403,
      'forbidden',
    );
  }
}

/** Refuses (409) a job with nothing to decide: decided, expired or cancelled. */
function assertHeld(h: HeldDetailView): void {
  if (h.status === 'held') return;
  const by = h.decision
    ? ` (${h.decision.decision} by ${h.decision.approver}${h.decision.reason ? `: ${h.decision.reason}` : ''})`
    : '';
  throw new ApproverApiError(
    `409 job ${h.holdJobId} is ${h.status}${by}; there is nothing to approve`,
    409,
    'approval_conflict',
  );
}

/** Reads y/N from stdin (a terminal or a pipe); anything but y/yes, or no answer, is no. */
async function confirm(question: string): Promise<boolean> {
  process.stderr.write(question);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.once('line', resolve);
      rl.once('close', () => resolve(''));
    });
    if (!process.stdin.isTTY) process.stderr.write(`${answer}\n`);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

async function readingsOf(api: ApproverClient, h: HeldDetailView): Promise<Record<string, PvReading> | undefined> {
  if (h.writePvs.length === 0) return undefined;
  try {
    const r = await api.pvs(h.holdJobId);
    return r.available ? r.readings : undefined;
  } catch {
    return undefined;
  }
}

/** What an approver reads before deciding: who asked, for what, and what the code will write. */
function summaryOf(h: HeldDetailView, readings: Record<string, PvReading> | undefined): string[] {
  const now = (pv: string) => {
    const r = readings?.[pv];
    if (!r) return readings ? 'now: unavailable' : '';
    return r.ok ? `now ${r.text ?? JSON.stringify(r.value)}` : `now: unavailable (${r.error})`;
  };
  const pvWidth = Math.max(0, ...h.writes.flatMap((w) => w.pvs.map((p) => p.length)));
  const writes = h.writes.flatMap((w) =>
    w.pvs.length
      ? w.pvs.map((pv) =>
          `  line ${String(w.line).padEnd(4)} ${pv.padEnd(pvWidth)}  <- ${w.value ?? '?'}   ${now(pv)}`.trimEnd(),
        )
      : [
          `  line ${String(w.line).padEnd(4)} ${w.target ?? '?'}  <- ${w.value ?? '?'}   (PV not worked out: ${w.message ?? w.call})`,
        ],
  );
  return [
    `held job ${h.holdJobId} (request ${h.requestId}, thread ${h.threadId})`,
    `status: ${h.status}${h.decision ? ` (${h.decision.decision} by ${h.decision.approver}${h.decision.reason ? `: ${h.decision.reason}` : ''})` : ''}`,
    `task: ${h.taskObjective}`,
    `requester: ${h.requester ?? '-'}, submitted ${iso(h.submittedAt)}, deadline ${iso(h.deadline)}`,
    `mode: ${h.mode}, risk: ${h.risk}, why held: ${h.approvalReason}`,
    `code sha256: ${h.codeSha256}`,
    '',
    h.writes.length ? `writes (${h.writes.length}):` : 'writes: none found by the analysis',
    ...writes,
  ];
}

/** The request, numbered code with finding marks, and the findings. */
function codeOf(h: HeldDetailView): string[] {
  const width = String(h.lines.length).length;
  return [
    `query: ${h.userQuery}`,
    `analysis sha256: ${h.analysisSha256}`,
    '',
    ...h.lines.map((l) => `${l.severity ? '!' : ' '} ${String(l.number).padStart(width)}  ${l.text}`),
    '',
    `findings (${h.findings.length}):`,
    ...h.findings.map((f) => `  line ${f.line}:${f.column}  [${f.severity}] ${f.rule}: ${f.message}`),
  ];
}
