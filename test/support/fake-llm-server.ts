import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local LLM server for tests: speaks the OpenAI Chat Completions API (POST /v1/chat/completions)
 * and the Anthropic Messages API (POST /v1/messages) on 127.0.0.1 with a free port, answers from a
 * script, and records every request so a test can assert on prompts. Non-streaming only: a request
 * with `stream: true` gets a 400.
 *
 * ```ts
 * const llm = await startFakeLlmServer();
 * // OpenAI SDK: new OpenAI({ baseURL: llm.openaiBaseUrl, apiKey: 'k' })   (= url + '/v1')
 * // Anthropic SDK: new Anthropic({ baseURL: llm.anthropicBaseUrl, apiKey: 'k' })   (= url)
 * llm.script('```python\nresults = {}\n```', { status: 429 }, { text: 'results = {"a": 1}', delayMs: 50 });
 * ... llm.requests[0].prompt ...
 * await llm.close();
 * ```
 * Replies are consumed first in, first out (a reply with `api` set only by that API). With none left,
 * the default reply answers (see setDefaultReply); without one, a 500 with `x-should-retry: false`,
 * so a test that forgot a reply fails at once instead of waiting out SDK retries.
 * Error replies (status >= 400) carry each API's error body; 408/429/5xx carry `retry-after-ms: 10`
 * unless `headers` say otherwise, so SDK retries in tests take milliseconds.
 */

export type LlmApi = 'openai' | 'anthropic';

export interface ScriptedReplySpec {
  /** The assistant's text (status 200). @defaultValue "" */
  text?: string;
  /** HTTP status; >= 400 answers with the API's error body. @defaultValue 200 */
  status?: number;
  /** Message of an error body. */
  errorMessage?: string;
  /** Extra response headers (they replace the default retry-after-ms). */
  headers?: Record<string, string>;
  /** Wait before answering (to provoke client timeouts). */
  delayMs?: number;
  /** @defaultValue about one token per 4 characters of prompt / reply */
  usage?: { inputTokens: number; outputTokens: number };
  /** OpenAI finish_reason / Anthropic stop_reason. @defaultValue "stop" / "end_turn" */
  finishReason?: string;
  /** Only this API consumes the reply. */
  api?: LlmApi;
}

/** A reply: text (200), a spec, or a function of the request that returns either. */
export type ScriptedReply = string | ScriptedReplySpec | ((request: RecordedRequest) => string | ScriptedReplySpec);

export interface RecordedMessage {
  role: string;
  content: string;
}

export interface RecordedRequest {
  api: LlmApi;
  method: string;
  path: string;
  /** Lower-case header names; includes the authorization the client sent. */
  headers: Record<string, string>;
  /** The parsed JSON body. */
  body: Record<string, unknown>;
  model: string;
  /** The system prompt (OpenAI: system messages joined; Anthropic: `system`). */
  system: string;
  /** Non-system messages, with their text content. */
  messages: RecordedMessage[];
  /** The text of the last user message. */
  lastUserMessage: string;
  /** System prompt and every message, joined: everything the model was told. */
  prompt: string;
  /** The status the server answered. */
  status: number;
  at: number;
}

export interface FakeLlmServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** baseURL for the OpenAI SDK: url + '/v1'. */
  readonly openaiBaseUrl: string;
  /** baseURL for the Anthropic SDK: url (the SDK adds /v1/messages). */
  readonly anthropicBaseUrl: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Appends replies to the script. */
  script(...replies: ScriptedReply[]): void;
  /** The reply used when the script is empty (undefined: the 500 described above). */
  setDefaultReply(reply: ScriptedReply | undefined): void;
  /** Replies not yet consumed. */
  pending(): number;
  /** Clears the script, the default reply and the recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) =>
        p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
          ? (p as { text: string }).text
          : '',
      )
      .join('');
  }
  return '';
}

function record(api: LlmApi, req: IncomingMessage, body: Record<string, unknown>): RecordedRequest {
  const raw = Array.isArray(body['messages']) ? (body['messages'] as { role?: unknown; content?: unknown }[]) : [];
  const all = raw.map((m) => ({ role: String(m.role ?? ''), content: textOf(m.content) }));
  const systemParts =
    api === 'anthropic' ? [textOf(body['system'])] : all.filter((m) => m.role === 'system').map((m) => m.content);
  const system = systemParts.filter((s) => s !== '').join('\n\n');
  const messages = all.filter((m) => m.role !== 'system');
  const lastUser = messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
  const headers = Object.fromEntries(
    Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
  );
  return {
    api,
    method: req.method ?? '',
    path: req.url ?? '',
    headers,
    body,
    model: String(body['model'] ?? ''),
    system,
    messages,
    lastUserMessage: lastUser,
    prompt: [system, ...messages.map((m) => m.content)].filter((s) => s !== '').join('\n\n'),
    status: 0,
    at: Date.now(),
  };
}

function errorBody(api: LlmApi, status: number, message: string): unknown {
  const type = ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  return api === 'openai'
    ? { error: { message, type, code: type, param: null } }
    : { type: 'error', error: { type, message } };
}

function successBody(api: LlmApi, rec: RecordedRequest, spec: ScriptedReplySpec, n: number): unknown {
  const text = spec.text ?? '';
  const usage = spec.usage ?? {
    inputTokens: Math.ceil(rec.prompt.length / 4),
    outputTokens: Math.ceil(text.length / 4),
  };
  if (api === 'openai') {
    return {
      id: `chatcmpl-fake-${n}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: rec.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: text },
          finish_reason: spec.finishReason ?? 'stop',
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: usage.inputTokens,
        completion_tokens: usage.outputTokens,
        total_tokens: usage.inputTokens + usage.outputTokens,
      },
    };
  }
  return {
    id: `msg_fake_${n}`,
    type: 'message',
    role: 'assistant',
    model: rec.model,
    content: [{ type: 'text', text }],
    stop_reason: spec.finishReason ?? 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens },
  };
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  const parsed: unknown = text ? JSON.parse(text) : {};
  return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Starts a fake LLM server on 127.0.0.1, port 0. Always `close()` it (after/afterEach). */
export async function startFakeLlmServer(options: { defaultReply?: ScriptedReply } = {}): Promise<FakeLlmServer> {
  const queue: ScriptedReply[] = [];
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let defaultReply = options.defaultReply;
  let served = 0;

  const take = (api: LlmApi): ScriptedReply | undefined => {
    const i = queue.findIndex((r) => typeof r !== 'object' || r.api === undefined || r.api === api);
    return i >= 0 ? queue.splice(i, 1)[0] : defaultReply;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '').split('?')[0];
    const api: LlmApi | undefined =
      req.method === 'POST' && path === '/v1/chat/completions'
        ? 'openai'
        : req.method === 'POST' && path === '/v1/messages'
          ? 'anthropic'
          : undefined;
    if (!api) return send(res, 404, { error: { message: `fake-llm-server: no route ${req.method} ${path}` } });
    let body: Record<string, unknown>;
    try {
      body = await readJson(req);
    } catch {
      return send(res, 400, errorBody('openai', 400, 'fake-llm-server: body is not JSON'));
    }
    const rec = record(api, req, body);
    requests.push(rec);
    if (body['stream'] === true) {
      rec.status = 400;
      return send(res, 400, errorBody(api, 400, 'fake-llm-server: streaming is not supported'));
    }
    const scripted = take(api);
    if (scripted === undefined) {
      rec.status = 500;
      return send(res, 500, errorBody(api, 500, 'fake-llm-server: no scripted reply left'), {
        'x-should-retry': 'false',
      });
    }
    const resolved = typeof scripted === 'function' ? scripted(rec) : scripted;
    const spec: ScriptedReplySpec = typeof resolved === 'string' ? { text: resolved } : resolved;
    const status = spec.status ?? 200;
    rec.status = status;
    const retryable = status === 408 || status === 429 || status >= 500;
    const headers = spec.headers ?? (retryable ? { 'retry-after-ms': '10' } : {});
    const reply = () =>
      status >= 400
        ? send(res, status, errorBody(api, status, spec.errorMessage ?? `fake error ${status}`), headers)
        : send(res, status, successBody(api, rec, spec, ++served), headers);
    if (!spec.delayMs) return reply();
    const t = setTimeout(() => {
      timers.delete(t);
      reply();
    }, spec.delayMs);
    timers.add(t);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { error: { message: String(err) } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    anthropicBaseUrl: url,
    requests,
    script: (...replies) => {
      queue.push(...replies);
    },
    setDefaultReply: (reply) => {
      defaultReply = reply;
    },
    pending: () => queue.length,
    reset: () => {
      queue.length = 0;
      requests.length = 0;
      defaultReply = undefined;
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
