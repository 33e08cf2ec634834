// Talking to the server: the /api JSON routes, /health, and streaming /v1/chat/completions (SSE).

/** An HTTP or network failure, with a `kind` the page turns into a clear message. */
export class APIError extends Error {
  constructor(message, { status = 0, kind = 'error', retryAfter = null } = {}) {
    super(message);
    this.status = status;
    this.kind = kind; // 'unreachable' | 'loading' | 'busy' | 'aborted' | 'error'
    this.retryAfter = retryAfter;
  }
}

let apiKey = '';
export function setAPIKey(key) { apiKey = key || ''; }

function headers(extra = {}) {
  const h = { ...extra };
  if (apiKey) h.Authorization = `Bearer ${apiKey}`;
  return h;
}

async function failure(response) {
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) message = typeof body.error === 'string' ? body.error : body.error.message || message;
  } catch { /* not JSON */ }
  const retry = parseInt(response.headers.get('Retry-After') || '', 10);
  const kind = response.status === 429 ? 'busy' : response.status === 503 ? 'loading' : 'error';
  return new APIError(message, { status: response.status, kind, retryAfter: Number.isFinite(retry) ? retry : null });
}

/** JSON request to the server; throws APIError. */
export async function request(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new APIError(String(error.message || error), { kind: 'unreachable' });
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

export const api = {
  list: (q) => request('GET', '/api/conversations' + (q ? `?q=${encodeURIComponent(q)}` : '')),
  create: (title, parameters) => request('POST', '/api/conversations', { title, parameters }),
  get: (id) => request('GET', `/api/conversations/${encodeURIComponent(id)}`),
  update: (id, fields) => request('PATCH', `/api/conversations/${encodeURIComponent(id)}`, fields),
  remove: (id) => request('DELETE', `/api/conversations/${encodeURIComponent(id)}`),
  append: (id, message) => request('POST', `/api/conversations/${encodeURIComponent(id)}/messages`, message),
  truncate: (id, keep) => request('POST', `/api/conversations/${encodeURIComponent(id)}/truncate`, { keep }),
  importDocument: (doc) => request('POST', '/api/import', doc),
  exportURL: (id) => `/api/conversations/${encodeURIComponent(id)}/export`,
  exportAllURL: () => '/api/export',
  imageURL: (hash) => `/api/images/${encodeURIComponent(hash)}`,
};

/** A download of `path` (with the API key, so not a plain link): returns a Blob. */
export async function download(path) {
  let response;
  try {
    response = await fetch(path, { headers: headers() });
  } catch (error) {
    throw new APIError(String(error.message || error), { kind: 'unreachable' });
  }
  if (!response.ok) throw await failure(response);
  return response.blob();
}

/** GET /health → {status, model, …}; a 503 while loading still has the JSON body. */
export async function health() {
  let response;
  try {
    response = await fetch('/health', { cache: 'no-store' });
  } catch (error) {
    throw new APIError(String(error.message || error), { kind: 'unreachable' });
  }
  try {
    return await response.json();
  } catch {
    return { status: response.ok ? 'ready' : 'unknown' };
  }
}

/**
 * Streams a chat completion. Calls `onDelta(piece, text)` for every piece of content as it arrives (and
 * `onReasoning(piece, reasoning)` for a thinking model's `delta.reasoning_content`) and resolves with
 * `{text, reasoning, usage, finishReason, ttftMs, elapsedMs, chunks}`. Aborting `signal` closes the connection
 * (the server cancels generation) and rejects with kind 'aborted', carrying the partial result in `partial`.
 */
export async function streamChat(body, { signal, onDelta, onReasoning }) {
  const started = performance.now();
  let response;
  try {
    response = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
      body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
      signal,
    });
  } catch (error) {
    if (signal && signal.aborted) throw Object.assign(new APIError('stopped', { kind: 'aborted' }), { partial: emptyResult(started) });
    throw new APIError(String(error.message || error), { kind: 'unreachable' });
  }
  if (!response.ok) throw await failure(response);

  const result = emptyResult(started);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let done = false;
  try {
    while (!done) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      buffer += decoder.decode(value, { stream: true });
      let boundary;
      while ((boundary = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const event = buffer.slice(0, boundary);
        buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, '');
        const data = event.split(/\r?\n/).filter((line) => line.startsWith('data:')).map((line) => line.slice(5).replace(/^ /, '')).join('\n');
        if (!data) continue;
        if (data === '[DONE]') { done = true; break; }
        let chunk;
        try { chunk = JSON.parse(data); } catch { continue; }
        if (chunk.error) throw new APIError(chunk.error.message || 'generation failed', { kind: 'error' });
        if (chunk.usage) result.usage = chunk.usage;
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        if (choice.finish_reason) result.finishReason = choice.finish_reason;
        const thought = choice.delta && choice.delta.reasoning_content;
        if (thought) {
          if (result.ttftMs === null) result.ttftMs = performance.now() - started;
          result.reasoning += thought;
          if (onReasoning) onReasoning(thought, result.reasoning);
        }
        const piece = choice.delta && choice.delta.content;
        if (piece) {
          if (result.ttftMs === null) result.ttftMs = performance.now() - started;
          result.text += piece;
          result.chunks++;
          onDelta(piece, result.text);
        }
      }
    }
  } catch (error) {
    result.elapsedMs = performance.now() - started;
    if (signal && signal.aborted) throw Object.assign(new APIError('stopped', { kind: 'aborted' }), { partial: result });
    if (error instanceof APIError) { error.partial = result; throw error; }
    throw Object.assign(new APIError(String(error.message || error), { kind: 'unreachable' }), { partial: result });
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

function emptyResult(started) {
  return { text: '', reasoning: '', usage: null, finishReason: null, ttftMs: null, elapsedMs: performance.now() - started, chunks: 0 };
}

/** The per-answer numbers the page shows and stores: from the server's `usage` (and its `postlens` extension), else measured here. */
export function answerStats(result, { stopped = false } = {}) {
  const usage = result.usage || {};
  const ext = usage.postlens || {};
  const completion = usage.completion_tokens ?? result.chunks;
  const ttft = ext.ttft_ms ?? result.ttftMs;
  let tps = ext.decode_tokens_per_s;
  if (tps == null && completion > 1 && result.ttftMs != null && result.elapsedMs > result.ttftMs) {
    tps = (completion - 1) / ((result.elapsedMs - result.ttftMs) / 1000);
  }
  // The image's tokens came from the server's prefix cache when the cached prompt tokens cover them.
  let cache = null;
  if (usage.prompt_tokens_details && ext.image_tokens > 0) {
    cache = (usage.prompt_tokens_details.cached_tokens || 0) >= ext.image_tokens;
  }
  const stats = {
    completion_tokens: completion,
    ttft_ms: ttft == null ? null : Math.round(ttft),
    tokens_per_s: tps == null || !Number.isFinite(tps) ? null : Math.round(tps * 10) / 10,
    elapsed_ms: Math.round(result.elapsedMs),
    finish_reason: stopped ? 'stopped' : result.finishReason,
  };
  if (usage.prompt_tokens != null) stats.prompt_tokens = usage.prompt_tokens;
  const reasoningTokens = usage.completion_tokens_details && usage.completion_tokens_details.reasoning_tokens;
  if (reasoningTokens > 0) stats.reasoning_tokens = reasoningTokens;
  if (cache !== null) stats.image_cache = cache;
  if (stopped) stats.stopped = true;
  return stats;
}
