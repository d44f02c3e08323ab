// A confirmation before what can't be undone (disconnecting, cancelling a scheduled message,
// deleting a message for everyone): the page's own modal <dialog>, which keeps focus inside
// it, closes on Escape (as "no") and gives focus back to what opened it.

const $ = (id) => document.getElementById(id);

let answer = null;

/** Ask `question`; resolves true when the person chooses `yes` (the button's words), false
 * on `no` or Escape. */
export function ask(question, yes, no = "Go back") {
  const dialog = $("confirm");
  if (dialog.open) return Promise.resolve(false);
  $("confirm-text").textContent = question;
  $("confirm-yes").textContent = yes;
  $("confirm-no").textContent = no;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    answer = (value) => {
      answer = null;
      if (dialog.open) dialog.close();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(value);
    };
    dialog.showModal();
    $("confirm-no").focus(); // the safe choice first
  });
}

export function wireConfirm() {
  $("confirm-yes").addEventListener("click", () => answer && answer(true));
  $("confirm-no").addEventListener("click", () => answer && answer(false));
  $("confirm").addEventListener("close", () => answer && answer(false));
}
