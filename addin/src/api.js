// The Paysheet API as the task pane uses it: bearer-token login, plan document sync,
// test vectors and lock; uploads (multipart, or tus in chunks for large files), mapping,
// runs, approvals and downloads. Errors carry the server's problem+json body.

/** Files up to this size go in one multipart request; larger ones through tus. */
export const MULTIPART_LIMIT = 8 * 1024 * 1024;
export const TUS_CHUNK = 5 * 1024 * 1024;

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.errors = this.problem.errors || [];
  }
}

export class PaysheetApi {
  /** @param {string} baseUrl server origin, e.g. "https://localhost:8443" ("" = same origin) */
  constructor(baseUrl = "", fetchImpl = globalThis.fetch.bind(globalThis)) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.fetch = fetchImpl;
    this.token = null;
    this.tenantId = null;
  }

  /** The raw Response of a request (`body`: JSON-able, FormData, Blob or undefined). */
  async send(method, path, { body, headers = {} } = {}) {
    const all = { Accept: "application/json", ...headers };
    const json = body !== undefined && !(body instanceof FormData) && !(body instanceof Blob);
    if (json) all["Content-Type"] = "application/json";
    if (this.token) all.Authorization = `Bearer ${this.token}`;
    const response = await this.fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers: all,
      body: json ? JSON.stringify(body) : body,
    });
    if (!response.ok) {
      const text = await response.text();
      let problem = null;
      try {
        problem = text ? JSON.parse(text) : null;
      } catch {
        problem = { detail: text };
      }
      throw new ApiError(response.status, problem);
    }
    return response;
  }

  async request(method, path, body, headers) {
    const response = await this.send(method, path, { body, headers });
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  async signIn(email, password) {
    const body = await this.request("POST", "/auth/token", { email, password });
    this.token = body.access_token;
    this.tenantId = body.tenant_id;
    return body;
  }

  async signOut() {
    if (this.token) await this.send("POST", "/auth/logout");
    this.token = null;
    this.tenantId = null;
  }

  me() {
    return this.request("GET", "/me");
  }

  layout() {
    return this.request("GET", "/templates/plan-layout.json");
  }

  createPlan(document) {
    return this.request("POST", `/tenants/${this.tenantId}/bonus-plans`, {
      name: document.name || "Untitled plan",
      document,
    });
  }

  putDocument(planId, document) {
    return this.request("PUT", `/bonus-plans/${planId}/document`, document);
  }

  evaluate(planId, rows) {
    return this.request("POST", `/bonus-plans/${planId}/evaluate`, { rows });
  }

  lock(planId) {
    return this.request("POST", `/bonus-plans/${planId}/lock`);
  }

  // -- uploads -------------------------------------------------------------------------------
  /** Upload a File/Blob as `kind`: multipart when small, tus in TUS_CHUNK pieces when large.
   * Resolves to the upload (scanned and parsed) once the last byte is in. */
  async upload(file, filename, kind = "employees") {
    if (file.size <= MULTIPART_LIMIT) {
      const form = new FormData();
      form.append("kind", kind);
      form.append("file", file, filename);
      return this.request("POST", "/uploads", form);
    }
    return this.uploadTus(file, filename, kind);
  }

  async uploadTus(file, filename, kind, chunkBytes = TUS_CHUNK) {
    const b64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
    const created = await this.request("POST", "/uploads", undefined, {
      "Tus-Resumable": "1.0.0", "Upload-Length": String(file.size),
      "Upload-Metadata": `filename ${b64(filename)},kind ${b64(kind)}`,
    });
    for (let offset = 0; offset < file.size; offset += chunkBytes) {
      await this.send("PATCH", `/uploads/${created.id}`, {
        body: file.slice(offset, Math.min(file.size, offset + chunkBytes)),
        headers: { "Tus-Resumable": "1.0.0", "Upload-Offset": String(offset),
          "Content-Type": "application/offset+octet-stream" },
      });
    }
    return this.getUpload(created.id);
  }

  getUpload(uploadId) {
    return this.request("GET", `/uploads/${uploadId}`);
  }

  mappingSuggestions(uploadId, planId) {
    return this.request("GET", `/uploads/${uploadId}/mapping-suggestions?plan_id=${planId}`);
  }

  mapUpload(uploadId, planId, mapping) {
    return this.request("POST", `/uploads/${uploadId}/map?plan_id=${planId}`, mapping);
  }

  validation(uploadId) {
    return this.request("GET", `/uploads/${uploadId}/validation?limit=20`);
  }

  // -- runs, approvals, downloads ------------------------------------------------------------
  startRun(body, idempotencyKey) {
    return this.request("POST", "/runs", body,
      idempotencyKey ? { "Idempotency-Key": idempotencyKey } : undefined);
  }

  getRun(runId) {
    return this.request("GET", `/runs/${runId}`);
  }

  /** Inquiries raised on the run (docs/deferrals.md §7). */
  inquiries(runId) {
    return this.request("GET", `/inquiries?run_id=${runId}`);
  }

  latestRun(planId) {
    return this.request("GET", `/runs?plan_id=${planId}&limit=1`);
  }

  /** One page of a run's per-employee results (the server's access rule applies). */
  results(runId, cursor = null, limit = 1000) {
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
    return this.request("GET", `/runs/${runId}/results?limit=${limit}${after}`);
  }

  /** One employee's calculation tape. */
  tape(runId, employeeRef) {
    return this.request("GET",
      `/runs/${runId}/results?employee_ref=${encodeURIComponent(employeeRef)}`);
  }

  /** The plan's finalized runs, newest first. */
  finalizedRuns(planId, limit = 5) {
    return this.request("GET", `/runs?plan_id=${planId}&status=finalized&limit=${limit}`);
  }

  /** The run's progress socket URL (ws/wss, token in the query as the server accepts). */
  eventsUrl(runId) {
    const origin = this.baseUrl || globalThis.location?.origin || "";
    return `${origin.replace(/^http/, "ws")}/api/v1/runs/${runId}/events?token=${this.token}`;
  }

  /** A file download: {blob, filename} (POST when `body` is given). */
  async download(path, filename, body) {
    const response = await this.send(body === undefined ? "GET" : "POST", path, { body });
    return { blob: await response.blob(), filename };
  }

  job(jobId) {
    return this.request("GET", `/reports/jobs/${jobId}`);
  }
}
