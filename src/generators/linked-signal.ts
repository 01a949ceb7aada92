/**
 * A child of the worker's signal for one generation. The OpenAI SDK adds an abort listener to the
 * signal of every request and never removes it; a worker that passes one long-lived signal to many
 * generations would pile them up. The SDKs listen on the child, which is dropped after the
 * generation; the one listener on the parent is removed in `dispose()`.
 */
export function linkedSignal(parent: AbortSignal): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, dispose: () => {} };
  }
  const abort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', abort, { once: true });
  return { signal: controller.signal, dispose: () => parent.removeEventListener('abort', abort) };
}
