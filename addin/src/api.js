// The Paysheet API as the task pane uses it: bearer-token login, plan document sync,
// test vectors and lock. Errors carry the server's problem+json body.

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

  async request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await this.fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  async signIn(email, password) {
    const body = await this.request("POST", "/auth/token", { email, password });
    this.token = body.access_token;
    this.tenantId = body.tenant_id;
    return body;
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
}
