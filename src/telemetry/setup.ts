import { context, diag, propagation, trace } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

/** `pyexec.telemetry` (src/config.ts). */
export interface TelemetrySettings {
  readonly otlp_endpoint?: string | undefined;
  readonly service_name?: string | undefined;
  readonly sample_ratio: number;
}

export interface TelemetryOptions {
  /** Where OTEL_* variables are read. @defaultValue process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Export here instead of OTLP, span by span (tests: an in-memory or file exporter). */
  readonly exporter?: SpanExporter;
  /** Added to the resource (e.g. `pyexec.stages`). */
  readonly attributes?: Record<string, string | number | boolean | string[]>;
  /** Told where spans go, and about export errors. */
  readonly logger?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/** Tracing in this process: on (an SDK is registered) or off (the API's no-ops answer). */
export interface Telemetry {
  readonly enabled: boolean;
  /** Where spans are exported (the OTLP traces URL), when on. */
  readonly endpoint: string | undefined;
  forceFlush(): Promise<void>;
  /** Flushes and, with the last user gone, unregisters the SDK. */
  shutdown(): Promise<void>;
}

const OFF: Telemetry = {
  enabled: false,
  endpoint: undefined,
  forceFlush: async () => {},
  shutdown: async () => {},
};

/**
 * The OTLP/HTTP traces URL, or undefined (telemetry off): the config's `otlp_endpoint`, else
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else OTEL_EXPORTER_OTLP_ENDPOINT. An endpoint
 * (config or OTEL_EXPORTER_OTLP_ENDPOINT) gets `/v1/traces` appended, as the OTLP spec says.
 * OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turns tracing off whatever is set.
 */
export function tracesUrl(settings: TelemetrySettings, env: NodeJS.ProcessEnv): string | undefined {
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return undefined;
  if (env['OTEL_TRACES_EXPORTER']?.trim().toLowerCase() === 'none') return undefined;
  const signal = (base: string) => (/\/v1\/traces\/?$/.test(base) ? base : `${base.replace(/\/+$/, '')}/v1/traces`);
  if (settings.otlp_endpoint) return signal(settings.otlp_endpoint);
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim();
  if (traces) return traces;
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  return base ? signal(base) : undefined;
}

/** How long a shutdown waits for the last export. */
const SHUTDOWN_MS = 5000;

interface Active {
  telemetry: Telemetry;
  users: number;
}
let active: Promise<Active> | undefined;

/**
 * Starts tracing for this process when an endpoint (or an exporter) is given, else returns the
 * off handle and loads nothing of the SDK. One SDK per process: a second start while one runs
 * shares it (the first start's settings stand), and the SDK goes with the last `shutdown()`.
 */
export async function startTelemetry(settings: TelemetrySettings, options: TelemetryOptions = {}): Promise<Telemetry> {
  const env = options.env ?? process.env;
  if (active) {
    const a = await active;
    a.users += 1;
    return shared(a);
  }
  const url = options.exporter ? undefined : tracesUrl(settings, env);
  if (!options.exporter && !url) return OFF;
  const starting = register(settings, options, env, url);
  active = starting;
  try {
    return shared(await starting);
  } catch (err) {
    if (active === starting) active = undefined;
    throw err;
  }
}

async function register(
  settings: TelemetrySettings,
  options: TelemetryOptions,
  env: NodeJS.ProcessEnv,
  url: string | undefined,
): Promise<Active> {
  // The SDK 1.x line: its packages support every Node 20 (the 2.x line wants 20.6 or later).
  const [base, resources, semconv, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/semantic-conventions'),
      import('@opentelemetry/core'),
      import('@opentelemetry/context-async-hooks'),
    ]);
  let processor: InstanceType<typeof base.SimpleSpanProcessor> | InstanceType<typeof base.BatchSpanProcessor>;
  if (options.exporter) {
    processor = new base.SimpleSpanProcessor(options.exporter);
  } else {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    // Headers (auth) and timeouts come from OTEL_EXPORTER_OTLP_[TRACES_]HEADERS / _TIMEOUT; batch
    // sizes and delays from OTEL_BSP_*.
    processor = new base.BatchSpanProcessor(new OTLPTraceExporter({ url }));
  }
  const serviceName = settings.service_name ?? env['OTEL_SERVICE_NAME'] ?? 'pyexec';
  const provider = new base.BasicTracerProvider({
    resource: resources.Resource.default().merge(
      new resources.Resource({
        [semconv.ATTR_SERVICE_NAME]: serviceName,
        'process.pid': process.pid,
        ...options.attributes,
      }),
    ),
    sampler: new base.ParentBasedSampler({ root: new base.TraceIdRatioBasedSampler(settings.sample_ratio) }),
    spanProcessors: [processor],
  });
  // W3C trace context only (no baggage): job data carries `traceparent` and `tracestate`. The
  // context follows async work (AsyncLocalStorage), so a stage's LLM and kernel calls are its children.
  provider.register({
    propagator: new W3CTraceContextPropagator(),
    contextManager: new AsyncLocalStorageContextManager().enable(),
  });
  if (options.logger) {
    const log = options.logger;
    diag.setLogger(
      {
        error: (msg, ...args) => log.warn({ args: args.map(String) }, `telemetry: ${msg}`),
        warn: (msg, ...args) => log.warn({ args: args.map(String) }, `telemetry: ${msg}`),
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      { suppressOverrideMessage: true },
    );
    log.info({ endpoint: url ?? 'custom exporter', serviceName, sampleRatio: settings.sample_ratio }, 'tracing on');
  }
  const telemetry: Telemetry = {
    enabled: true,
    endpoint: url,
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      // The last spans go out now; a collector that is down costs at most SHUTDOWN_MS of the
      // process's shutdown, and a warning (the spans are lost, nothing else is).
      let timer: NodeJS.Timeout | undefined;
      const bounded = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), SHUTDOWN_MS);
        timer.unref();
      });
      try {
        const how = await Promise.race([provider.shutdown(), bounded]);
        if (how === 'timeout') options.logger?.warn({ ms: SHUTDOWN_MS }, 'telemetry: last spans not exported in time');
      } catch (err) {
        options.logger?.warn({ err: (err as Error).message }, 'telemetry: last spans not exported');
      } finally {
        clearTimeout(timer);
      }
      // Unregistered, so that a later start (tests; an embedding that restarts) can register again.
      trace.disable();
      context.disable();
      propagation.disable();
      diag.disable();
    },
  };
  return { telemetry, users: 1 };
}

/** A user's handle on the process's SDK: its shutdown only counts down until the last user. */
function shared(a: Active): Telemetry {
  let done = false;
  return {
    enabled: true,
    endpoint: a.telemetry.endpoint,
    forceFlush: () => a.telemetry.forceFlush(),
    shutdown: async () => {
      if (done) return;
      done = true;
      a.users -= 1;
      if (a.users > 0) return a.telemetry.forceFlush();
      active = undefined;
      await a.telemetry.shutdown();
    },
  };
}
