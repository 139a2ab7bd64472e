// Inquiries on a run, as the task pane shows them to approvers (docs/deferrals.md §7).

const UNRESOLVED = new Set(["open", "answered"]);

/** One line per inquiry: who/what it is about, its state, and its answer or resolution. */
export function inquiryLines(inquiries) {
  return (inquiries || []).map((i) => {
    const about = [i.employee_ref, i.step && `step ${i.step}`, i.input_key && `input ${i.input_key}`]
      .filter(Boolean).join(", ");
    const outcome = i.resolution || i.answer;
    return `[${i.status}] ${about}: ${i.question}${outcome ? ` — ${outcome}` : ""}`;
  });
}

/** The note approvers see: how many unresolved inquiries block the finalize ("" if none). */
export function finalizeBlock(inquiries) {
  const pending = (inquiries || []).filter((i) => UNRESOLVED.has(i.status)).length;
  if (!pending) return "";
  return `${pending} unresolved ${pending === 1 ? "inquiry blocks" : "inquiries block"} `
    + "finalize (resolve or reject them, or finalize with an override reason).";
}

/** May `user` see inquiries at all (GET /inquiries needs inquiries.read)? */
export function canSeeInquiries(user) {
  return (user?.permissions || []).includes("inquiries.read");
}
