// The task pane's actions, independent of the page: sign in, sync the workbook with the
// server, run the test vectors, lock. `excel` is the Excel namespace (Excel.run).

import { ApiError } from "./api.js";
import { locateRequestErrors } from "./diagnostics.js";
import { compare, requestRows } from "./vectors.js";
import { readPlan, readTests, writeDiagnostics, writePlanMeta, writeTestResults }
  from "./workbook.js";

export class Pane {
  constructor({ api, excel }) {
    this.api = api;
    this.excel = excel;
    this.layout = null;
  }

  async signIn(email, password) {
    const session = await this.api.signIn(email, password);
    this.layout = await this.api.layout();
    return session;
  }

  /** Read the workbook, store it as the plan's document, write the answers back.
   * Returns {planId, valid, planHash, problems: [located diagnostics]}. */
  async sync() {
    return this.excel.run(async (context) => {
      const { document, rows, errors, planId: known } = await readPlan(context, this.layout);
      if (errors.length) {
        await writeDiagnostics(context, this.layout, document, rows, [], errors);
        return { planId: known, valid: false, planHash: null, status: null, problems: errors };
      }
      let planId = known;
      if (!planId) {
        const created = await this.api.createPlan({ name: document.name || "Untitled plan" });
        planId = created.id;
        await writePlanMeta(context, this.layout, { plan_id: planId, status: created.status,
          version: created.version });
      }
      let saved;
      try {
        saved = await this.api.putDocument(planId, document);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 422) throw error;
        const located = locateRequestErrors(this.layout, rows, error.errors);
        await writeDiagnostics(context, this.layout, document, rows, [], located);
        return { planId, valid: false, planHash: null, status: null, problems: located };
      }
      const problems = await writeDiagnostics(context, this.layout, document, rows,
        saved.diagnostics);
      await writePlanMeta(context, this.layout, { plan_id: planId, status: saved.plan.status,
        version: saved.plan.version });
      return { planId, valid: saved.valid, planHash: saved.plan_hash, status: saved.plan.status,
        problems };
    });
  }

  /** Evaluate the Tests sheet's vectors on the synced plan; returns [{row, passed, message}]. */
  async runTests(planId) {
    return this.excel.run(async (context) => {
      const vectors = await readTests(context, this.layout);
      if (!vectors.length) return [];
      const response = await this.api.evaluate(planId, requestRows(vectors));
      const results = compare(vectors, response);
      await writeTestResults(context, this.layout, results);
      return results;
    });
  }

  /** Lock the plan and write its status and hash into the Plan sheet. */
  async lock(planId) {
    const plan = await this.api.lock(planId);
    await this.excel.run(async (context) => {
      await writePlanMeta(context, this.layout, { plan_id: plan.id, status: plan.status,
        plan_hash: plan.plan_hash, version: plan.version });
    });
    return plan;
  }
}
