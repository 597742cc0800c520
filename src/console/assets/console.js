// Clearance console: progressive enhancement only. Every page works as plain
// forms without this script; with it, conditional questions appear and
// vanish as they are answered, and forms that change something serious ask
// for a confirmation first.
(function () {
  "use strict";

  // The current answer to question `id` in `form`, as the API would read it.
  function answer(form, id) {
    const fields = form.querySelectorAll('[name="q_' + CSS.escape(id) + '"]');
    if (fields.length === 0) return null;
    const first = fields[0];
    if (first.type === "radio") {
      const checked = [...fields].find((f) => f.checked);
      if (!checked) return null;
      if (checked.value === "true") return true;
      if (checked.value === "false") return false;
      return checked.value;
    }
    if (first.type === "checkbox") {
      const values = [...fields].filter((f) => f.checked).map((f) => f.value);
      return values.length ? values : null;
    }
    const text = first.value.trim();
    if (text === "") return null;
    return first.type === "number" ? Number(text) : text;
  }

  function meets(condition, value) {
    if (value === null || value === undefined) return false;
    const has = (v) => (Array.isArray(value) ? value.includes(v) : value === v);
    if ("equals" in condition) return has(condition.equals);
    if ("any_of" in condition) return condition.any_of.some(has);
    if ("above" in condition) return typeof value === "number" && value > condition.above;
    if ("below" in condition) return typeof value === "number" && value < condition.below;
    return false;
  }

  // Shows each question whose condition its earlier answer meets; a hidden
  // question's fields are disabled, so they are not sent.
  function refresh(form) {
    for (const question of form.querySelectorAll("[data-shown-when]")) {
      let shown = true;
      try {
        const when = JSON.parse(question.dataset.shownWhen);
        shown = meets(when, answer(form, when.question));
      } catch (e) {
        shown = true;
      }
      question.hidden = !shown;
      for (const field of question.querySelectorAll("input, select, textarea")) {
        field.disabled = !shown;
      }
    }
  }

  for (const form of document.querySelectorAll("form[data-questionnaire]")) {
    refresh(form);
    form.addEventListener("input", () => refresh(form));
    form.addEventListener("change", () => refresh(form));
  }

  // A form that came back with problems: their summary is read first.
  // Another form that came back: the first problem beside its field is
  // brought into view, and its field takes the focus.
  const summary = document.querySelector("[data-error-summary]");
  const problem = document.querySelector("p.error");
  if (summary) {
    summary.focus();
  } else if (problem) {
    const details = problem.closest("details");
    if (details) details.open = true;
    problem.scrollIntoView({ block: "center" });
    const field = problem.closest("form")?.querySelector('[aria-invalid="true"]');
    if (field) field.focus({ preventScroll: true });
  }

  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
})();
