// The pane's confirmation dialog (a <dialog> in taskpane.html): Lock, Finalize and Reject
// ask first, saying what happens. window.confirm is not available inside Office add-ins.

import { confirmation } from "./runs.js";

const $ = (id) => document.getElementById(id);

/** Resolves true when the user confirms `action` (or it needs no confirmation). */
export function confirmAction(action) {
  const question = confirmation(action);
  if (!question) return Promise.resolve(true);
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = question.title;
  $("confirm-text").textContent = question.text;
  $("confirm-yes").textContent = question.confirm;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-yes").onclick = null;
      $("confirm-no").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    dialog.onclose = () => done(false); // Esc
    dialog.showModal();
  });
}
