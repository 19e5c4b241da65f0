// Asks before a form whose choice sends something at once, for the choices that do:
// <form data-confirm="Question?" data-confirm-field="mode" data-confirm-value="send_now">.
// A form without a matching choice submits as usual; without JavaScript it submits at once.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
    return;
  }
  const field = form.dataset.confirmField;
  if (field && form.elements.namedItem(field)?.value !== form.dataset.confirmValue) {
    return;
  }
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
