// The REST API, with the session cookie. Errors carry the API's
// {"error": {code, message, field}}; a 401 sends the user to the login page.

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.field = e.field || null;
    this.body = body;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

/** fetch under /api/v1, JSON in and out. */
export async function api(path, opts = {}) {
  const init = { method: opts.method || 'GET', headers: {}, credentials: 'same-origin', signal: opts.signal };
  if (opts.json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    init.body = opts.body;
    if (opts.contentType) init.headers['content-type'] = opts.contentType;
  }
  const r = await fetch('/api/v1' + path, init);
  const text = await r.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!r.ok) {
    const err = new ApiError(r.status, body);
    if (r.status === 401 && !path.startsWith('/auth/')) onUnauthorized();
    throw err;
  }
  return body;
}

/** A query string from an object, skipping empty values; arrays repeat. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.append(k, v);
  }
  const s = u.toString();
  return s ? '?' + s : '';
}
