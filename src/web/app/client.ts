/**
 * The browser's side of the JSON API (`src/web/API.md`): typed fetches that turn every non-2xx answer
 * into an `ApiRequestError` carrying the server's message, so views can show it as is.
 */
import type { BinnedPattern, BinnedPatternRequest, ModelPatterns, ModelPatternsRequest, ServerStatus, AtlasView, ExamplePrompt, GenerateRequest, GenerateResponse, JobKind, JobStatus, ModelInfo, NiahView, PatternRequest, PatternResponse } from '../api.js';

export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiRequestError(0, `cannot reach the headwise server (${(e as Error).message}); is \`headwise serve\` still running?`);
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // a proxy's HTML error page, say
  }
  if (!res.ok) {
    const message = (json as { error?: string } | null)?.error ?? `${res.status} ${res.statusText}`;
    throw new ApiRequestError(res.status, message);
  }
  return json as T;
}

export const api = {
  model: () => call<ModelInfo>('GET', '/api/model'),
  /** The atlas, or null when the server has none yet. */
  atlas: async (): Promise<AtlasView | null> => {
    try {
      return await call<AtlasView>('GET', '/api/atlas');
    } catch (e) {
      if (e instanceof ApiRequestError && e.status === 404) return null;
      throw e;
    }
  },
  niah: async (): Promise<NiahView | null> => {
    try {
      return await call<NiahView>('GET', '/api/niah');
    } catch (e) {
      if (e instanceof ApiRequestError && e.status === 404) return null;
      throw e;
    }
  },
  examples: () => call<ExamplePrompt[]>('GET', '/api/examples'),
  status: () => call<ServerStatus>('GET', '/api/status'),
  results: () => call<{ results: unknown }>('GET', '/api/results'),
  patternBins: (req: BinnedPatternRequest) => call<BinnedPattern>('POST', '/api/pattern/bins', req),
  patterns: (req: ModelPatternsRequest) => call<ModelPatterns>('POST', '/api/patterns', req),
  pattern: (req: PatternRequest) => call<PatternResponse>('POST', '/api/pattern', req),
  generate: (req: GenerateRequest) => call<GenerateResponse>('POST', '/api/generate', req),
  startJob: (kind: JobKind, quick = true) => call<JobStatus>('POST', `/api/${kind}/jobs`, { quick }),
  job: (id: string) => call<JobStatus>('GET', `/api/jobs/${encodeURIComponent(id)}`),
};

/** Polls a job until it finishes, calling `onProgress` on each status. */
export async function waitForJob(job: JobStatus, onProgress: (s: JobStatus) => void, intervalMs = 400): Promise<JobStatus> {
  let s = job;
  onProgress(s);
  while (s.state === 'queued' || s.state === 'running') {
    await new Promise((r) => setTimeout(r, intervalMs));
    s = await api.job(s.id);
    onProgress(s);
  }
  return s;
}
