import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local OTLP/HTTP trace receiver for tests: accepts `POST /v1/traces` with the OTLP JSON body
 * that @opentelemetry/exporter-trace-otlp-http sends, on 127.0.0.1 with a free port, and keeps
 * every span with its resource's attributes. Anything else gets a 404 (and is counted in `refused`).
 *
 * ```ts
 * const otlp = await startOtlpReceiver();   // config: pyexec.telemetry.otlp_endpoint = otlp.url
 * ... otlp.spans ...
 * await otlp.close();
 * ```
 */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, unknown>;
}

export interface OtlpReceiver {
  /** The endpoint (no path): what `otlp_endpoint` / OTEL_EXPORTER_OTLP_ENDPOINT take. */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Export requests received, with their content type. */
  readonly requests: { path: string; contentType: string }[];
  refused: number;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}

function value(v: OtlpValue | undefined): unknown {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

const attributes = (list: { key: string; value: OtlpValue }[] | undefined) =>
  Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));

const ms = (nanos: string | number) => Number(BigInt(nanos) / 1_000_000n);

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests: { path: string; contentType: string }[] = [];
  const receiver = { refused: 0 };
  const server = createServer(async (req, res) => {
    const text = await body(req);
    const contentType = req.headers['content-type'] ?? '';
    if (req.method !== 'POST' || req.url !== '/v1/traces' || !contentType.startsWith('application/json')) {
      receiver.refused += 1;
      res.writeHead(404).end();
      return;
    }
    requests.push({ path: req.url, contentType });
    // biome-ignore lint/suspicious/noExplicitAny: the OTLP JSON document, read field by field below
    const doc = JSON.parse(text) as any;
    for (const rs of doc.resourceSpans ?? []) {
      const resource = attributes(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? [])
          spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? '',
            name: s.name,
            kind: s.kind,
            startMs: ms(s.startTimeUnixNano),
            endMs: ms(s.endTimeUnixNano),
            attributes: attributes(s.attributes),
            statusCode: s.status?.code ?? 0,
            resource,
          });
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}
