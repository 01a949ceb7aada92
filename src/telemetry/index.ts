export { hostOf, inLlmSpan, type LlmCall, type LlmResult } from './llm.js';
export { startTelemetry, type Telemetry, type TelemetryOptions, type TelemetrySettings, tracesUrl } from './setup.js';
export {
  endSpan,
  inSpan,
  inStageSpan,
  SPAN,
  SpanKind,
  startSpan,
  type TraceCarrier,
  traceCarrier,
  traceIds,
} from './tracing.js';
