// Page-wide behaviour that every page shares: the phone menu, tables that stack on a phone,
// Space on links that look like buttons, and the "connection lost" banner with the retry of
// live parts. Loaded from base.html; without JavaScript the pages work as plain links/forms.
(() => {
  const PHONE = window.matchMedia("(max-width: 768px)");
  document.documentElement.classList.add("js");

  // --- The main menu folds behind a "Menu" button on a phone --------------------------------
  const setUpMenu = () => {
    const toggle = document.querySelector(".nav-toggle");
    const menu = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
    if (!toggle || !menu) return;
    toggle.hidden = false;
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        toggle.setAttribute("aria-expanded", "false");
        toggle.focus();
      }
    });
  };

  // --- Tables stack into labelled rows on a phone (each cell says its column) ---------------
  const labelCells = (root) => {
    const tables = [
      ...(root.matches?.("main table") ? [root] : []),
      ...(root.querySelectorAll?.("main table") ?? []),
      ...(root.closest?.("main table") ? [root.closest("main table")] : []),
    ];
    for (const table of tables) {
      const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
      if (!heads.length) continue;
      table.classList.add("stacked");
      for (const row of table.querySelectorAll("tbody tr")) {
        [...row.children].forEach((cell, i) => {
          if (heads[i] && !cell.hasAttribute("data-label")) cell.dataset.label = heads[i];
        });
      }
    }
  };

  // --- Space presses a link that is styled and announced as a button -----------------------
  document.addEventListener("keydown", (event) => {
    const link = event.target.closest?.("a[role=button]");
    if (link && (event.key === " " || event.key === "Spacebar")) {
      event.preventDefault(); // no page scroll; the link is followed on keyup, as a button is
    }
  });
  document.addEventListener("keyup", (event) => {
    const link = event.target.closest?.("a[role=button]");
    if (link && (event.key === " " || event.key === "Spacebar")) {
      event.preventDefault();
      link.click();
    }
  });

  // --- Connection lost: a banner, stale live parts marked, GETs retried with backoff --------
  const MAX_DELAY_MS = 30_000;
  let failures = 0;
  let retryTimer = null;
  let retrying = false;
  const pending = new Map(); // element -> {verb, path}: the live GETs that failed

  const banner = () => document.getElementById("connection-banner");
  const say = (text) => {
    const box = banner();
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
  };

  const markStale = (target) => {
    if (!target || target === document.body || target.querySelector(":scope > .stale-note")) return;
    target.classList.add("is-stale");
    const note = document.createElement("p");
    note.className = "stale-note small";
    note.textContent = "Out of date: the server is not answering. Retrying…";
    target.prepend(note);
  };

  const clearStale = (target) => {
    if (!target) return;
    target.classList.remove("is-stale");
    target.querySelectorAll(":scope > .stale-note").forEach((note) => note.remove());
  };

  const retryNow = (probe = true) => {
    retryTimer = null;
    const todo = [...pending.entries()].filter(([elt]) => elt.isConnected);
    pending.clear();
    if (!todo.length && probe) {
      // Nothing of this page to fetch again: ask the server whether it is back at all.
      fetch(window.location.href, { method: "HEAD", cache: "no-store" }).then(
        (answer) => (answer.ok ? recovered() : lost()),
        () => lost()
      );
      return;
    }
    retrying = true;
    try {
      for (const [elt, request] of todo) {
        // A retry that fails again is reported by htmx:sendError like the first one.
        window.htmx.ajax(request.verb, request.path, { source: elt }).catch(() => {});
      }
    } finally {
      retrying = false;
    }
  };

  const lost = () => {
    if (retryTimer !== null) return; // one more failure of the same round: the wait stands
    failures += 1;
    const delay = Math.min(MAX_DELAY_MS, 1000 * 2 ** (failures - 1));
    say(`Connection lost. Retrying in ${Math.round(delay / 1000)} s…`);
    retryTimer = window.setTimeout(retryNow, delay);
  };

  const recovered = () => {
    if (!failures) return;
    failures = 0;
    if (retryTimer !== null) window.clearTimeout(retryTimer);
    retryTimer = null;
    say("Connection restored.");
    window.setTimeout(() => failures || say(""), 4000);
    retryNow(false); // the other live parts that failed, at once
  };

  const failed = (event) => {
    const { elt, requestConfig, target } = event.detail;
    markStale(target);
    // Only what fetches a view again is repeated by itself: GETs, and live parts that post
    // only to compute a view (data-live, e.g. the preview). A host's action is never resent.
    if (requestConfig && (requestConfig.verb === "get" || elt.hasAttribute("data-live"))) {
      pending.set(elt, { verb: requestConfig.verb.toUpperCase(), path: requestConfig.path });
    }
    lost();
  };

  document.addEventListener("htmx:sendError", failed);
  document.addEventListener("htmx:responseError", (event) => {
    if (event.detail.xhr && event.detail.xhr.status >= 500) failed(event);
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    // While the server is away, polling waits for the backoff instead of failing every second.
    if (failures && !retrying && (event.detail.elt.getAttribute("hx-trigger") || "").includes("every")) {
      pending.set(event.detail.elt, { verb: "GET", path: event.detail.requestConfig.path });
      event.preventDefault();
    }
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful || (event.detail.xhr && event.detail.xhr.status < 500 && event.detail.xhr.status > 0)) {
      clearStale(event.detail.target);
      recovered();
    }
  });

  // --- Screen readers: one polite announcer for what changed, focus kept in the page -------
  // Live parts themselves are not live regions (a progress bar or a preview would be re-read
  // on every refresh); what is worth hearing is said once here.
  const announce = (text) => {
    const box = document.getElementById("announcer");
    if (!box || !text) return;
    box.textContent = "";
    window.setTimeout(() => { box.textContent = text.replace(/\s+/g, " ").trim(); }, 50);
  };
  const finishing = new Set(); // ids of live progress parts that showed a running bar
  const focusInSwap = new Set(); // parts being replaced that held the focus (a row's button)
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (target?.id && target.querySelector?.("[role=progressbar]")) finishing.add(target.id);
    const active = document.activeElement;
    if (active && active !== document.body && target?.contains(active)) focusInSwap.add(target);
  });

  document.addEventListener("htmx:load", (event) => {
    const elt = event.detail.elt;
    labelCells(elt);
    if (elt === document.body) return; // the page as loaded: nothing changed yet
    if (elt.id && finishing.has(elt.id) && !elt.querySelector("[role=progressbar]")) {
      finishing.delete(elt.id);
      announce(`Sending finished. ${elt.textContent}`);
    }
    const notes = "[data-announce], .flash[role=status]";
    for (const note of [...(elt.matches?.(notes) ? [elt] : []), ...(elt.querySelectorAll?.(notes) ?? [])]) {
      announce(note.textContent);
    }
  });

  // After a row action the button that was pressed is gone: focus goes to what the answer
  // says (its alert or status) or to the part that changed, never back to the top of the page.
  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.target;
    const lost = focusInSwap.delete(target);
    if (!target || !target.isConnected || !lost) return; // a poll never moves the focus
    if (focusFirstError(target)) return;
    if (document.activeElement && document.activeElement !== document.body && document.activeElement.isConnected) return;
    const focusable = target.querySelector("[role=alert], .flash[role=status]") || target;
    if (!focusable.hasAttribute("tabindex")) focusable.setAttribute("tabindex", "-1");
    focusable.focus({ preventScroll: false });
  });
  // --- Errors and results in sight ---------------------------------------------------------
  // A refused form comes back with its fields marked aria-invalid: the first one gets the
  // focus (and so the scroll), wherever the form is on the page.
  const focusFirstError = (root) => {
    const invalid = root.querySelector?.("[aria-invalid=true]");
    if (!invalid) return false;
    invalid.focus({ preventScroll: true });
    invalid.scrollIntoView({ block: "center" });
    return true;
  };
  // A filter form whose changes are pushed into the URL shows what the URL says: htmx's
  // history keeps the page as first loaded, so Back would show a list filtered by "ito"
  // under an empty search box.
  const syncFilters = () => {
    const params = new URLSearchParams(window.location.search);
    for (const form of document.querySelectorAll("main form[method=get]")) {
      if (!form.querySelector("[hx-push-url]")) continue;
      for (const field of form.elements) {
        if (!field.name || field.type === "submit" || field.type === "hidden") continue;
        const value = params.get(field.name) ?? "";
        if (field.value !== value) field.value = value;
      }
    }
  };
  document.addEventListener("htmx:historyRestore", syncFilters);
  window.addEventListener("pageshow", syncFilters);

  // A tab switched in place is another view: the flash of the last full page is over.
  document.addEventListener("htmx:pushedIntoHistory", () => {
    document.querySelectorAll("main > .flashes").forEach((flashes) => flashes.remove());
  });

  document.addEventListener("DOMContentLoaded", () => {
    setUpMenu();
    labelCells(document);
    if (!focusFirstError(document.querySelector("main") || document)) {
      // What an action created or changed is the URL's #fragment: app.css highlights it.
      const changed = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
      changed?.scrollIntoView({ block: "center" });
    }
  });
  PHONE.addEventListener?.("change", () => labelCells(document));
})();
