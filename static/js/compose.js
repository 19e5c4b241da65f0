// The compose form says what it will do: the submit button is labelled by the chosen mode,
// "Send at" is only editable for "Schedule", the chosen time is repeated in 24-hour form with
// its UTC offset and the host's own time, and placeholder buttons insert at the cursor.
// The event form's time zone starts at the browser's zone for a new event.
(() => {
  const browserZone = () => {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch {
      return "";
    }
  };

  // Milliseconds a zone's wall clock is ahead of UTC at the instant ``utc``.
  const zoneOffset = (zone, utc) => {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-US", {
        timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
      }).formatToParts(new Date(utc)).map((p) => [p.type, p.value])
    );
    const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return wall - utc;
  };

  const offsetText = (ms) => {
    const minutes = Math.round(ms / 60000);
    const sign = minutes >= 0 ? "+" : "−";
    const abs = Math.abs(minutes);
    return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  };

  // The same 24-hour form as the lists: "Thu 24 Dec 2026, 09:00".
  const shown = (utc, zone) => {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-GB", {
        timeZone: zone, hourCycle: "h23", weekday: "short", day: "2-digit", month: "short",
        year: "numeric", hour: "2-digit", minute: "2-digit",
      }).formatToParts(new Date(utc)).map((p) => [p.type, p.value])
    );
    return `${parts.weekday} ${parts.day} ${parts.month} ${parts.year}, ${parts.hour}:${parts.minute}`;
  };

  const echoSendAt = (form) => {
    const input = form.querySelector("input[data-event-zone]");
    const echo = form.querySelector("#send-at-echo");
    if (!input || !echo) return;
    const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(input.value);
    if (!match || input.disabled) {
      echo.hidden = true;
      echo.textContent = "";
      return;
    }
    const zone = input.dataset.eventZone;
    const wall = Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5]);
    let utc = wall - zoneOffset(zone, wall);
    utc = wall - zoneOffset(zone, utc); // the offset in force at that moment (summer time)
    const mine = browserZone();
    let text = `Sends ${shown(utc, zone)} ${zone} (${offsetText(zoneOffset(zone, utc))})`;
    if (mine && mine !== zone) {
      text += ` = ${shown(utc, mine)} your time (${mine}, ${offsetText(zoneOffset(mine, utc))}).`;
    } else {
      text += ", which is your time zone too.";
    }
    echo.textContent = text;
    echo.hidden = false;
  };

  const followMode = (form) => {
    const mode = form.querySelector("input[name=mode]:checked")?.value;
    const button = form.querySelector(".compose-submit");
    const label = mode && button?.dataset[`label${mode[0].toUpperCase()}${mode.slice(1)}`];
    if (label) button.textContent = label;
    const sendAt = form.querySelector("input[name=send_at]");
    if (sendAt) {
      sendAt.disabled = mode !== "schedule";
      const help = sendAt.closest("label")?.parentElement?.querySelector(`#${sendAt.id}-help`);
      help?.classList.toggle("muted", sendAt.disabled);
    }
    echoSendAt(form);
  };

  const setUp = (root) => {
    for (const form of root.querySelectorAll?.("#compose-form") ?? []) {
      form.querySelector(".placeholder-buttons")?.removeAttribute("hidden");
      followMode(form);
    }
    for (const input of root.querySelectorAll?.("input[data-browser-zone]") ?? []) {
      const zone = browserZone();
      const known = [...(input.list?.options ?? [])].some((option) => option.value === zone);
      if (zone && known && input.value === input.dataset.browserZone) input.value = zone;
    }
  };

  document.addEventListener("change", (event) => {
    const form = event.target.closest?.("#compose-form");
    if (form && (event.target.name === "mode" || event.target.name === "send_at")) followMode(form);
  });
  // A draft keeps the time it had: the field is only greyed out, its value still goes with
  // the form (the server ignores it for "Send now").
  document.addEventListener("submit", (event) => {
    const form = event.target.closest?.("#compose-form");
    const sendAt = form?.querySelector("input[name=send_at]");
    if (!sendAt || !sendAt.disabled) return;
    sendAt.disabled = false;
    window.setTimeout(() => followMode(form)); // still greyed out if the submit was cancelled
  });
  document.addEventListener("input", (event) => {
    const form = event.target.closest?.("#compose-form");
    if (form && event.target.name === "send_at") echoSendAt(form);
  });

  // Placeholder buttons insert into the subject or the message, where the cursor last was.
  let lastField = null;
  document.addEventListener("focusin", (event) => {
    if (event.target.matches?.("#compose-form #subject, #compose-form #body")) lastField = event.target;
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest?.("#compose-form [data-insert]");
    if (!button) return;
    const form = button.closest("form");
    const field = lastField && form.contains(lastField) ? lastField : form.querySelector("#body");
    const start = field.selectionStart ?? field.value.length;
    const end = field.selectionEnd ?? start;
    field.setRangeText(button.dataset.insert, start, end, "end");
    field.focus();
    field.dispatchEvent(new Event("input", { bubbles: true })); // the preview follows
  });

  document.addEventListener("DOMContentLoaded", () => setUp(document));
  document.addEventListener("htmx:load", (event) => setUp(event.detail.elt));
})();
