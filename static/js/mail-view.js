// The two tabs of an e-mail view (the HTML e-mail, its text version) and the preview's
// frame, which is filled by posting the compose form's values into it (a document of its
// own, with its own security policy). The tab a host picked stays picked while the live
// preview refreshes.
(() => {
  let chosen = null;

  const within = (root, selector) => [
    ...(root.matches?.(selector) ? [root] : []),
    ...(root.querySelectorAll?.(selector) ?? []),
  ];

  const select = (tab, focus = false) => {
    const tabs = tab.closest("[role=tablist]").querySelectorAll("[role=tab]");
    for (const each of tabs) {
      const on = each === tab;
      each.setAttribute("aria-selected", on ? "true" : "false");
      each.tabIndex = on ? 0 : -1;
      document.getElementById(each.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
  };

  document.addEventListener("click", (event) => {
    const tab = event.target.closest?.("[data-mail-view] [role=tab]");
    if (!tab) return;
    select(tab);
    chosen = tab.dataset.view;
  });

  document.addEventListener("keydown", (event) => {
    const tab = event.target.closest?.("[data-mail-view] [role=tab]");
    if (!tab) return;
    const tabs = [...tab.closest("[role=tablist]").querySelectorAll("[role=tab]")];
    const at = tabs.indexOf(tab);
    const next = {
      ArrowRight: tabs[(at + 1) % tabs.length],
      ArrowLeft: tabs[(at - 1 + tabs.length) % tabs.length],
      Home: tabs[0],
      End: tabs[tabs.length - 1],
    }[event.key];
    if (!next) return;
    event.preventDefault();
    select(next, true);
    chosen = next.dataset.view;
  });

  // One document at a time per frame: a new one waits until the last has loaded, so a
  // refresh never aborts a document still on its way (only the newest waiting one is kept).
  const busy = new Set();
  const waiting = new Map();
  const fill = (form) => {
    const frame = document.querySelector(`iframe[name="${form.target}"]`);
    if (!frame) return;
    if (!frame.dataset.watched) {
      frame.dataset.watched = "yes";
      frame.addEventListener("load", () => {
        busy.delete(frame);
        const next = waiting.get(frame);
        waiting.delete(frame);
        if (next?.isConnected) fill(next);
      });
    }
    if (busy.has(frame)) {
      waiting.set(frame, form);
      return;
    }
    busy.add(frame);
    form.submit();
  };

  const init = (root) => {
    for (const form of within(root, "form[data-mail-frame]")) fill(form);
    if (!chosen) return;
    for (const tab of within(root, `[data-mail-view] [role=tab][data-view="${chosen}"]`)) {
      select(tab);
    }
  };

  document.addEventListener("htmx:load", (event) => init(event.detail.elt));

  // Once the page is being left (a form submitted the ordinary way: saving the message),
  // it asks for no more previews: nobody would see them, and the browser would cut them
  // off half-way. htmx forms cancel their own submit event, so they do not count.
  let leaving = false;
  document.addEventListener("submit", (event) => {
    if (!event.defaultPrevented) leaving = true;
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (leaving && event.detail.elt.closest?.("#message-preview, #recipient-count")) {
      event.preventDefault();
    }
  });
  window.addEventListener("pageshow", () => {
    leaving = false;
  });
})();
