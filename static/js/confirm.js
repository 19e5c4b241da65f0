// Asks before a form whose choice sends something at once, for the choices that do:
// <form data-confirm="Question?" data-confirm-field="mode" data-confirm-value="send_now">.
// A form without a matching choice submits as usual; without JavaScript it submits at once.
//
// With data-confirm-subject (a field's name) and data-confirm-end (a selector of an element
// whose data-text ends the question, kept current by the live recipient count), the question
// names what goes to whom: "Send “Parking for Summer Gala” to 51 attending guests now?
// 4 unsubscribed are left out." The subject gets the event's values (data-event-values);
// a guest's own placeholders stay as they are, since they differ per guest.
function withEventValues(text, values) {
  return text
    .replace(/\{\{\s*([^{}\s]*)\s*\}\}/g, (whole, name) =>
      Object.hasOwn(values, name) ? values[name] : whole,
    )
    .replace(/\s+/g, " ")
    .trim();
}

function question(form) {
  const subjectField = form.dataset.confirmSubject;
  const end = form.dataset.confirmEnd && document.querySelector(form.dataset.confirmEnd);
  if (!subjectField || !end || !end.dataset.text) {
    return form.dataset.confirm;
  }
  let values = {};
  try {
    values = JSON.parse(form.dataset.eventValues || "{}");
  } catch {
    values = {};
  }
  const subject = withEventValues(form.elements.namedItem(subjectField)?.value || "", values);
  return `Send “${subject}” ${end.dataset.text} This cannot be undone.`;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
    return;
  }
  if (event.submitter?.hasAttribute("data-no-confirm")) {
    return; // e.g. "Save my changes as a new draft": it sends nothing
  }
  const field = form.dataset.confirmField;
  if (field && form.elements.namedItem(field)?.value !== form.dataset.confirmValue) {
    return;
  }
  if (!window.confirm(question(form))) {
    event.preventDefault();
  }
});

// An htmx confirmation whose answers are named by the button that asks it:
// <button data-confirm-yes="Cancel message" data-confirm-no="Keep it">. The browser's own
// confirm() says "OK" / "Cancel", and "Cancel" would mean the opposite of "Cancel message";
// this asks in a modal <dialog> instead (Escape and "Keep it" keep everything as it was).
function askInDialog(question, yes, no) {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    const article = document.createElement("article");
    const text = document.createElement("p");
    text.id = "confirm-dialog-question";
    text.textContent = question;
    dialog.setAttribute("aria-labelledby", text.id);
    const form = document.createElement("form");
    form.method = "dialog";
    form.className = "row-actions";
    const keep = document.createElement("button");
    keep.value = "no";
    keep.className = "outline secondary";
    keep.textContent = no;
    const confirm = document.createElement("button");
    confirm.value = "yes";
    confirm.textContent = yes;
    form.append(keep, confirm);
    article.append(text, form);
    dialog.append(article);
    const opener = document.activeElement;
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) {
        opener.focus();
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    keep.focus();
  });
}

document.addEventListener("htmx:confirm", (event) => {
  const { elt, question } = event.detail;
  const asker =
    elt instanceof Element &&
    (elt.matches("[data-confirm-yes]") ? elt : elt.querySelector("[data-confirm-yes]"));
  if (!question || !asker) {
    return;
  }
  event.preventDefault();
  askInDialog(question, asker.dataset.confirmYes, asker.dataset.confirmNo || "Keep it").then(
    (yes) => {
      if (yes) {
        event.detail.issueRequest(true);
      }
    },
  );
});
