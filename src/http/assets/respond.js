// The supplier's questionnaire page: reads the stage with the invitation
// token from the link, renders every question, saves drafts and submits.
(function () {
  "use strict";
  const token = decodeURIComponent(location.pathname.split("/").pop() || "");
  const $ = (id) => document.getElementById(id);
  let stage = null;

  function notice(text, kind) {
    const el = $("notice");
    el.textContent = text;
    el.className = kind || "";
  }

  function claims() {
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
    } catch (e) {
      return null;
    }
  }

  const scope = claims();
  if (!scope || !scope.review || !scope.stage) {
    $("title").textContent = "This link is not valid";
    return;
  }
  const base = "/v1/reviews/" + encodeURIComponent(scope.review) + "/stages/" + encodeURIComponent(scope.stage);

  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    return { ok: response.ok, status: response.status, data };
  }

  function meets(condition, answer) {
    if (answer === undefined || answer === null) return false;
    const contains = (v) => (Array.isArray(answer) ? answer.includes(v) : answer === v);
    if ("equals" in condition) return contains(condition.equals);
    if ("any_of" in condition) return condition.any_of.some(contains);
    if ("above" in condition) return typeof answer === "number" && answer > condition.above;
    if ("below" in condition) return typeof answer === "number" && answer < condition.below;
    return false;
  }

  function input(question, value) {
    const name = "q_" + question.id;
    const wrap = document.createElement("div");
    const make = (tag, attrs) => Object.assign(document.createElement(tag), attrs);
    switch (question.type) {
      case "yes_no":
        for (const [label, v] of [["Yes", true], ["No", false]]) {
          const l = make("label", { className: "choice" });
          l.append(make("input", { type: "radio", name, value: String(v), checked: value === v }), " " + label);
          wrap.append(l);
        }
        break;
      case "single_choice":
      case "multi_choice":
        for (const option of question.options) {
          const l = make("label", { className: "choice" });
          const checked = Array.isArray(value) ? value.includes(option.value) : value === option.value;
          l.append(make("input", { type: question.type === "single_choice" ? "radio" : "checkbox", name, value: option.value, checked }), " " + option.label);
          wrap.append(l);
        }
        break;
      case "text":
        wrap.append(make("textarea", { name, value: value || "", maxLength: question.max_length || 5000 }));
        break;
      case "number":
        wrap.append(make("input", { type: "number", name, value: value ?? "", min: question.min ?? "", max: question.max ?? "", step: "any" }));
        break;
      case "date":
        wrap.append(make("input", { type: "date", name, value: value || "" }));
        break;
      default:
        wrap.append(make("input", { type: "url", name, value: value || "", placeholder: "https://" }));
    }
    return wrap;
  }

  function read(question) {
    const form = $("form");
    const name = "q_" + question.id;
    switch (question.type) {
      case "yes_no": {
        const el = form.querySelector(`input[name="${name}"]:checked`);
        return el ? el.value === "true" : null;
      }
      case "single_choice": {
        const el = form.querySelector(`input[name="${name}"]:checked`);
        return el ? el.value : null;
      }
      case "multi_choice": {
        const values = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((el) => el.value);
        return values.length ? values : null;
      }
      case "number": {
        const text = form.elements[name].value.trim();
        return text === "" ? null : Number(text);
      }
      default: {
        const text = form.elements[name].value.trim();
        return text === "" ? null : text;
      }
    }
  }

  function questions() {
    return stage.questionnaire.sections.flatMap((s) => s.questions);
  }

  function answers() {
    const out = {};
    for (const q of questions()) {
      const el = document.querySelector(`[data-question="${q.id}"]`);
      out[q.id] = el && el.hidden ? null : read(q);
    }
    return out;
  }

  function refreshVisibility() {
    const current = {};
    for (const q of questions()) current[q.id] = read(q);
    for (const q of questions()) {
      const el = document.querySelector(`[data-question="${q.id}"]`);
      el.hidden = q.shown_when ? !meets(q.shown_when, current[q.shown_when.question]) : false;
    }
  }

  function showErrors(problem) {
    document.querySelectorAll(".question").forEach((el) => {
      el.classList.remove("invalid");
      el.querySelector(".error").textContent = "";
    });
    for (const error of problem.errors || []) {
      const el = document.querySelector(`[data-question="${error.field}"]`);
      if (el) {
        el.classList.add("invalid");
        el.querySelector(".error").textContent = error.message;
      }
    }
    notice(problem.detail || problem.title || "Something went wrong.", "bad");
  }

  function render() {
    $("title").textContent = stage.questionnaire.title + " — " + stage.subject;
    const due = stage.due_at ? " · due " + new Date(stage.due_at).toLocaleDateString() : "";
    $("meta").textContent = stage.title + due;
    const sections = $("sections");
    sections.textContent = "";
    for (const section of stage.questionnaire.sections) {
      const h = document.createElement("h2");
      h.textContent = section.title;
      sections.append(h);
      for (const q of section.questions) {
        const box = document.createElement("div");
        box.className = "question";
        box.dataset.question = q.id;
        const label = document.createElement("label");
        label.className = "text";
        label.textContent = q.text;
        if (q.required) {
          const star = document.createElement("span");
          star.className = "required";
          star.textContent = " *";
          label.append(star);
        }
        box.append(label);
        if (q.help) {
          const help = document.createElement("p");
          help.className = "help";
          help.textContent = q.help;
          box.append(help);
        }
        box.append(input(q, stage.answers[q.id]));
        const error = document.createElement("p");
        error.className = "error";
        box.append(error);
        sections.append(box);
      }
    }
    refreshVisibility();
    const open = stage.state === "awaiting_answers";
    $("form").hidden = false;
    $("form").querySelectorAll("input, textarea, button").forEach((el) => (el.disabled = !open));
    if (!open) notice("These answers have been submitted. Thank you — the review team will be in touch.", "ok");
  }

  async function save() {
    const result = await call("PUT", base + "/answers", { answers: answers() });
    if (!result.ok) {
      showErrors(result.data);
      return false;
    }
    stage = result.data;
    notice("Draft saved.", "ok");
    return true;
  }

  $("form").addEventListener("change", refreshVisibility);
  $("save").addEventListener("click", save);
  $("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!(await save())) return;
    const result = await call("POST", base + "/submit", {});
    if (!result.ok) {
      showErrors(result.data);
      return;
    }
    stage = result.data;
    render();
  });

  call("GET", base).then((result) => {
    if (!result.ok) {
      $("title").textContent = result.status === 401 ? "This link has expired or been revoked" : "This questionnaire cannot be opened";
      notice(result.data.detail || "", "bad");
      return;
    }
    stage = result.data;
    render();
  });
})();
