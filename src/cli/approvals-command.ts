import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { ApproverClient } from '../approval/approver-client.js';
import type { HeldDetailView } from '../approval/held-view.js';
import { type ApproverRole, createToken, hashToken } from '../approval/tokens.js';
import { ConfigError, InvalidRequestError } from '../errors.js';
import { urlHost } from '../http/url-host.js';
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
 * same bearer-token auth as the web page; and `pyexec approver serve|new-token|hash-token`.
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
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const held = await (await client(cmd)).list();
      print({ held }, o.json, () =>
        held.length === 0
          ? 'no held jobs'
          : held
              .map(
                (h) =>
                  `${h.holdJobId}  ${h.mode}  risk ${h.risk}  ${h.findingCount} finding(s)  deadline ${iso(h.deadline)}  ${h.taskObjective.slice(0, 60)}`,
              )
              .join('\n'),
      );
    });

  approvals
    .command('show')
    .description('a held job: the request, the code with line numbers, findings, mode, risk, deadline')
    .argument('<holdJobId>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const h = await (await client(cmd)).show(id);
      print(h, o.json, () =>
        [
          ...describeHeld(h),
          ...(h.status === 'held'
            ? [
                '',
                `approve with: pyexec approvals approve ${h.holdJobId} --code-sha256 ${h.codeSha256} --analysis-sha256 ${h.analysisSha256}`,
              ]
            : []),
        ].join('\n'),
      );
    });

  approvals
    .command('approve')
    .description(
      'approve a held job; without --code-sha256 the code is printed (stderr) and exactly that code is approved',
    )
    .argument('<holdJobId>')
    .option(
      '--code-sha256 <hex>',
      'the sha256 of the code you reviewed (from `show`); refused if the job changed since',
    )
    .option('--analysis-sha256 <hex>', 'the sha256 of the analysis you reviewed (from `show`)')
    .option('--payload <json>', 'a JSON object that reaches the execution (as approval_payload) and the response')
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        o: { codeSha256?: string; analysisSha256?: string; payload?: string; json?: boolean },
        cmd: Command,
      ) => {
        const api = await client(cmd);
        const payload = o.payload === undefined ? undefined : parsePayload(o.payload);
        const shown = await api.show(id);
        if (!o.codeSha256) process.stderr.write(`${describeHeld(shown).join('\n')}\n\n`);
        const record = await api.approve(id, {
          codeSha256: o.codeSha256 ?? shown.codeSha256,
          analysisSha256: o.analysisSha256 ?? shown.analysisSha256,
          ...(payload ? { payload } : {}),
        });
        print(
          record,
          o.json,
          () => `approved ${id} as ${record.approver} (code sha256 ${record.codeSha256}, mode ${record.mode})`,
        );
      },
    );

  approvals
    .command('reject')
    .description('reject a held job; the request ends `rejected` with the reason')
    .argument('<holdJobId>')
    .requiredOption('--reason <text>', 'why (shown to the producer)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { reason: string; json?: boolean }, cmd: Command) => {
      const record = await (await client(cmd)).reject(id, { reason: o.reason });
      print(record, o.json, () => `rejected ${id} as ${record.approver}: ${record.reason ?? ''}`);
    });

  approvals
    .command('audit')
    .description('the audit trail of decisions (who, when, which code hash, payload, from where)')
    .option('--limit <n>', 'the newest n entries', '200')
    .option('--json', 'print JSON')
    .action(async (o: { limit: string; json?: boolean }, cmd: Command) => {
      const entries = await (await client(cmd)).audit(Number(o.limit));
      print({ entries }, o.json, () =>
        entries.length === 0
          ? 'no decisions'
          : entries
              .map((e) =>
                [
                  iso(e.decidedAt),
                  e.decision.padEnd(8),
                  e.approver,
                  e.holdJobId,
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
    });

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
          import('../approval/approver-api.js'),
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
    .addOption(new Option('--role <role>', 'what it may do').choices(['viewer', 'approver']).default('approver'))
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
  if (!token) throw new ConfigError('no approver token: pass --token or --token-file, or set PYEXEC_APPROVER_TOKEN');
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

/** A held job as text: the request, facts, numbered code with finding marks, findings. */
function describeHeld(h: HeldDetailView): string[] {
  const width = String(h.lines.length).length;
  return [
    `held job ${h.holdJobId} (request ${h.requestId}, thread ${h.threadId})`,
    `status: ${h.status}${h.decision ? ` (${h.decision.decision} by ${h.decision.approver}${h.decision.reason ? `: ${h.decision.reason}` : ''})` : ''}`,
    `task: ${h.taskObjective}`,
    `query: ${h.userQuery}`,
    `mode: ${h.mode}, risk: ${h.risk}, deadline: ${iso(h.deadline)}`,
    `why held: ${h.approvalReason}`,
    `code sha256: ${h.codeSha256}`,
    `analysis sha256: ${h.analysisSha256}`,
    '',
    ...h.lines.map((l) => `${l.severity ? '!' : ' '} ${String(l.number).padStart(width)}  ${l.text}`),
    '',
    `findings (${h.findings.length}):`,
    ...h.findings.map((f) => `  line ${f.line}:${f.column}  [${f.severity}] ${f.rule}: ${f.message}`),
  ];
}
