// Account Backups: dialogs, confirmation, clipboard, type-to-filter lists and the data-set picker.
// No inline scripts (CSP script-src 'self'): everything hangs off data attributes, with event
// delegation so that content htmx swaps in (dialogs, rows) works without re-binding.
(() => {
  "use strict";

  const $all = (root, selector) => Array.from(root.querySelectorAll(selector));
  const hide = (el, hidden) => el && el.classList.toggle("d-none", hidden);
  const isHidden = (el) => el.classList.contains("d-none");

  // ---------------------------------------------------------------------------------------
  // Confirmation: forms with data-confirm ask in the #confirm-modal before they submit.
  let pendingForm = null;

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    const modalEl = document.getElementById("confirm-modal");
    if (!modalEl || !window.bootstrap) return; // no modal: submit as is (the server decides)
    event.preventDefault();
    pendingForm = form;
    modalEl.querySelector("[data-confirm-message]").textContent = form.dataset.confirm;
    modalEl.querySelector("[data-confirm-accept]").textContent = form.dataset.confirmButton || "Confirm";
    window.bootstrap.Modal.getOrCreateInstance(modalEl).show();
  });

  document.addEventListener("click", (event) => {
    const accept = event.target.closest("[data-confirm-accept]");
    if (!accept || !pendingForm) return;
    const form = pendingForm;
    pendingForm = null;
    accept.disabled = true;
    if (!form.isConnected) {
      // The live refresh replaced the row the form was in (a detached form does not submit):
      // send it from the page itself; the server decides whether the action still applies.
      form.classList.add("d-none");
      document.body.appendChild(form);
    }
    form.submit(); // bypasses the submit listener: no second confirmation
  });

  // The confirmation closed without confirming: forget the form, re-enable the button.
  document.addEventListener("hidden.bs.modal", (event) => {
    if (event.target.id !== "confirm-modal") return;
    pendingForm = null;
    const accept = event.target.querySelector("[data-confirm-accept]");
    if (accept) accept.disabled = false;
  });

  // A row's live refresh waits while the user is deciding something about it: a confirmation
  // is open, or its ⋮ menu is. Replacing the row then would close the menu under the pointer.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const elt = event.detail && event.detail.elt;
    if (!elt || !elt.matches || !elt.matches('tr[data-testid="backup-row"]')) return;
    const confirming = document.getElementById("confirm-modal")?.classList.contains("show");
    if (confirming || elt.querySelector(".dropdown-menu.show")) event.preventDefault();
  });

  // Tab wraps around inside an open dialog. Bootstrap's focus trap pulls the focus back only
  // when it lands elsewhere in the page; the dialogs are the page's last elements, so Tab on
  // their last control would otherwise leave the document for the browser's own controls.
  const FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    const modal = document.querySelector(".modal.show");
    if (!modal) return;
    const stops = $all(modal, FOCUSABLE).filter((el) => el.offsetParent !== null || el === document.activeElement);
    if (!stops.length) return;
    const first = stops[0];
    const last = stops[stops.length - 1];
    if (event.shiftKey && (document.activeElement === first || document.activeElement === modal)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });

  // ---------------------------------------------------------------------------------------
  // Copy password
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    const field = document.querySelector(button.dataset.copyTarget);
    const status = button.closest("[data-password-panel]")?.querySelector("[data-copy-status]");
    if (!field) return;
    try {
      await navigator.clipboard.writeText(field.value);
      button.innerHTML = '<i class="bi bi-clipboard-check"></i> Copied';
      button.classList.replace("btn-outline-primary", "btn-success");
      if (status) status.textContent = "Password copied. Keep it somewhere safe: it is needed to open the file and is not shown again.";
    } catch (err) {
      field.select();
      if (status) status.textContent = "Your browser did not allow copying: the password is selected, copy it with Ctrl+C.";
    }
  });

  // Password choice: show the panel of the chosen option.
  document.addEventListener("change", (event) => {
    const radio = event.target;
    if (!(radio instanceof HTMLInputElement) || radio.name !== "password_choice") return;
    const fieldset = radio.closest("[data-password-choice]");
    if (!fieldset) return;
    $all(fieldset, "[data-password-panel]").forEach((panel) => hide(panel, panel.dataset.passwordPanel !== radio.value));
  });

  // ---------------------------------------------------------------------------------------
  // Type-to-filter checkbox lists (OUs, facilities)
  function updateChecklist(box) {
    const filter = box.querySelector("[data-checklist-filter]");
    const query = (filter?.value || "").trim().toLowerCase();
    let shown = 0;
    $all(box, "[data-checklist-item]").forEach((item) => {
      const match = !query || item.textContent.toLowerCase().includes(query);
      hide(item, !match);
      if (match) shown += 1;
    });
    hide(box.querySelector("[data-checklist-none]"), shown > 0 || !$all(box, "[data-checklist-item]").length);
    const count = box.querySelector("[data-checklist-count]");
    if (count) {
      const n = $all(box, "[data-checklist-item] input:checked").length;
      count.textContent = n ? `${n} selected.` : "";
    }
  }

  document.addEventListener("input", (event) => {
    const box = event.target.closest("[data-checklist]");
    if (box && event.target.matches("[data-checklist-filter]")) updateChecklist(box);
  });
  document.addEventListener("change", (event) => {
    const box = event.target.closest("[data-checklist]");
    if (box) updateChecklist(box);
  });
  // Enter in a filter field must not submit the dialog.
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.matches("[data-checklist-filter], [data-picker-search]")) {
      event.preventDefault();
    }
  });

  // ---------------------------------------------------------------------------------------
  // Data-set picker: search, Select visible, Invert visible, Clear, Cancel, dependencies note
  const snapshots = new WeakMap();

  function parse(json, fallback) {
    try {
      return JSON.parse(json || "");
    } catch (err) {
      return fallback;
    }
  }

  function closure(selected, depends) {
    const result = new Set(selected);
    const stack = Array.from(selected);
    while (stack.length) {
      for (const dep of depends[stack.pop()] || []) {
        if (!result.has(dep)) {
          result.add(dep);
          stack.push(dep);
        }
      }
    }
    return result;
  }

  function updatePicker(picker) {
    const depends = parse(picker.dataset.depends, {});
    const labels = parse(picker.dataset.labels, {});
    const boxes = $all(picker, "[data-picker-item] input[type=checkbox]");
    const selected = new Set(boxes.filter((b) => b.checked).map((b) => b.value));
    const all = closure(selected, depends);
    const pulled = Array.from(all).filter((key) => !selected.has(key));
    $all(picker, "[data-picker-item]").forEach((item) => {
      hide(item.querySelector("[data-picker-pulled]"), !pulled.includes(item.dataset.key));
    });
    const summary = picker.querySelector("[data-picker-summary]");
    if (summary) {
      summary.textContent = selected.size === boxes.length
        ? `All ${boxes.length} data sets selected.`
        : `${selected.size} of ${boxes.length} data sets selected.`;
    }
    const note = picker.querySelector("[data-picker-deps]");
    if (note) {
      const parts = pulled.map((key) => {
        const by = Array.from(all).filter((k) => (depends[k] || []).includes(key)).map((k) => labels[k] || k);
        return `${labels[key] || key} (needed by ${by.join(", ")})`;
      });
      note.textContent = parts.length ? `Also included as dependencies: ${parts.join("; ")}.` : "";
      hide(note, !parts.length);
    }
  }

  function searchPicker(picker) {
    const query = (picker.querySelector("[data-picker-search]")?.value || "").trim().toLowerCase();
    let shown = 0;
    $all(picker, "[data-picker-item]").forEach((item) => {
      const match = !query || (item.dataset.search || item.textContent.toLowerCase()).includes(query);
      hide(item, !match);
      if (match) shown += 1;
    });
    hide(picker.querySelector("[data-picker-none]"), shown > 0);
  }

  function setPanel(picker, open) {
    const panel = picker.querySelector("[data-picker-panel]");
    const toggle = picker.querySelector('[data-picker-action="open"]');
    hide(panel, !open);
    if (toggle) toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      snapshots.set(picker, $all(picker, "[data-picker-item] input").map((b) => b.checked));
      picker.querySelector("[data-picker-search]")?.focus();
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-picker-action]");
    const picker = button?.closest("[data-dataset-picker]");
    if (!picker) return;
    const visible = $all(picker, "[data-picker-item]").filter((item) => !isHidden(item)).map((item) => item.querySelector("input"));
    const boxes = $all(picker, "[data-picker-item] input");
    switch (button.dataset.pickerAction) {
      case "open":
        setPanel(picker, isHidden(picker.querySelector("[data-picker-panel]")));
        break;
      case "select-visible":
        visible.forEach((b) => { b.checked = true; });
        break;
      case "invert-visible":
        visible.forEach((b) => { b.checked = !b.checked; });
        break;
      case "clear":
        boxes.forEach((b) => { b.checked = false; });
        break;
      case "cancel": {
        const before = snapshots.get(picker);
        if (before) boxes.forEach((b, i) => { b.checked = before[i]; });
        setPanel(picker, false);
        break;
      }
      case "done":
        setPanel(picker, false);
        break;
      default:
        return;
    }
    updatePicker(picker);
  });

  document.addEventListener("input", (event) => {
    const picker = event.target.closest("[data-dataset-picker]");
    if (picker && event.target.matches("[data-picker-search]")) searchPicker(picker);
  });
  document.addEventListener("change", (event) => {
    const picker = event.target.closest("[data-dataset-picker]");
    if (picker) updatePicker(picker);
  });

  // ---------------------------------------------------------------------------------------
  // Schedules: the weekday only matters for weekly schedules.
  function updateSchedule(form) {
    const frequency = form.querySelector('[name="frequency"]');
    const weekday = form.querySelector("[data-show-when-weekly]");
    if (frequency && weekday) hide(weekday, frequency.value !== "weekly");
  }
  document.addEventListener("change", (event) => {
    const form = event.target.closest("[data-schedule-form]");
    if (form) updateSchedule(form);
  });

  // ---------------------------------------------------------------------------------------
  // htmx responses that are not content for their target.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const { xhr, requestConfig } = event.detail;
    const loginUrl = document.getElementById("backup-modal")?.dataset.loginUrl;
    if (loginUrl && xhr.responseURL && new URL(xhr.responseURL).pathname === loginUrl) {
      // The session ended while the page was open: sign in again rather than show the login
      // form inside a table row or a dialog.
      event.detail.shouldSwap = false;
      window.location.assign(xhr.responseURL);
      return;
    }
    const elt = requestConfig && requestConfig.elt;
    if (xhr.status === 404 && elt && elt.matches && elt.matches('tr[data-testid="backup-row"]')) {
      // A polled backup that is gone (or no longer visible to this user): drop its row.
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      event.detail.serverResponse = "";
    }
  });

  // ---------------------------------------------------------------------------------------
  // Initialise whatever is on the page, and whatever htmx swaps in later.
  function init(root) {
    $all(root, "[data-dataset-picker]").forEach(updatePicker);
    $all(root, "[data-checklist]").forEach(updateChecklist);
    $all(root, "[data-schedule-form]").forEach(updateSchedule);
    if (root.matches?.("[data-schedule-form]")) updateSchedule(root);
  }

  document.addEventListener("DOMContentLoaded", () => {
    init(document);
    if (window.htmx) window.htmx.onLoad((el) => init(el));

    // The shared dialog: back to "Loading…" when closed, so old content never flashes.
    const modal = document.getElementById("backup-modal");
    const content = document.getElementById("backup-modal-content");
    if (modal && content) {
      const placeholder = content.innerHTML;
      modal.addEventListener("hidden.bs.modal", () => { content.innerHTML = placeholder; });
      // The focus goes to the dialog's first field (its first invalid one after a refused
      // submit) once both the dialog is shown and its content has arrived, whichever is last.
      const focusFirstField = () => {
        if (!modal.classList.contains("show")) return;
        const field = content.querySelector(".is-invalid, [aria-invalid=true]")
          || content.querySelector(".modal-body input:not([type=hidden]):not([disabled]):not([readonly]), .modal-body select, .modal-body textarea");
        if (field) field.focus();
      };
      modal.addEventListener("shown.bs.modal", focusFirstField);
      document.body.addEventListener("htmx:afterSettle", (event) => {
        if (event.detail.target === content) focusFirstField();
      });
    }
  });
})();
