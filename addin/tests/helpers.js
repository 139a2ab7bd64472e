import { readFileSync } from "node:fs";

export const layout = JSON.parse(
  readFileSync(new URL("../../templates/plan_layout.json", import.meta.url), "utf8"),
);

export const samplePlan = JSON.parse(
  readFileSync(new URL("../../samples/plans/fund_bonus.json", import.meta.url), "utf8"),
);

/** The sample plan as cells: parameters and defaults typed like an author would. */
export function sampleCells() {
  return {
    ...samplePlan,
    inputs: samplePlan.inputs.map((i) => ({ ...i, required: i.required })),
    steps: samplePlan.steps.map((s) => ({ ...s })),
  };
}
