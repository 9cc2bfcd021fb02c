/** Requests to the dashboard's API, each with the token as a bearer credential. */
import { getState, scheduleReload, setState, setToken } from './store.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const { token } = getState();
  if (!token) throw new ApiError(401, 'no token');
  let res: Response;
  try {
    res = await fetch(path, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` },
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'the dashboard cannot be reached: is `loki dashboard` still running?');
  }
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) {
    const message =
      body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string'
        ? (body as { error: string }).error
        : `${res.status} ${res.statusText}`;
    if (res.status === 401 && getState().token === token) setToken(null, message);
    if (res.status === 403 && /read-only/.test(message)) setState({ readOnly: true });
    throw new ApiError(res.status, message);
  }
  return body as T;
}

export function get<T>(path: string): Promise<T> {
  return request<T>(path);
}

/** A control: POST with a JSON body. Every view reloads after it, whatever the answer. */
export async function post<T>(path: string, body: Record<string, unknown> = {}): Promise<T> {
  try {
    return await request<T>(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } finally {
    scheduleReload();
  }
}
