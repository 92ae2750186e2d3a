// The reviewer page: one text at a time, decided with the keyboard alone.
// Plain JavaScript, no build step, no network beyond this API. User data is only ever set
// through textContent, never as HTML.
"use strict";

const TOKEN_KEY = "esk.review.token";
// Items leased per request: one, so the page holds no lease it does not show. The server hands
// back our own leases first (oldest first), so an item leased to us is always shown next.
const PREFETCH = 1;

// Keys that pick a domain in the list, in list order: digits, then the letter keys not used
// for actions (S skip, U undo, N "no"). Matched by physical key (event.code), so they work in
// either layout; the label shows the Russian letter on the same key too.
const DOMAIN_KEYS = [
  ..."1234567890".split("").map((digit) => ({ code: `Digit${digit}`, label: digit, alt: "" })),
  ...[..."QWERTYIOPADFGHJKLZXCVBM"].map((letter, i) => ({
    code: `Key${letter}`,
    label: letter,
    alt: "ЙЦУКЕНШЩЗФВАПРОЛДЯЧСМИЬ"[i],
  })),
];
const PRIORITY_NAMES = { low: "низкий", medium: "средний", high: "высокий", critical: "срочно" };
const REASON_NAMES = {
  audit: "контроль",
  second_opinion: "второе мнение",
  possible_label_error: "возможная ошибка",
  adjudication: "разбор разногласия",
};

const state = {
  token: null,
  reviewer: null,
  domains: [], // [{id, name, description}] in taxonomy order
  byId: new Map(),
  queue: [], // leased items; queue[0] is on screen
  mode: "choose", // "verify": asks "is it X?"; "choose": the full list
  options: [], // domain ids listed for the current item, in display order
  candidateScores: new Map(),
  selectedId: null,
  done: [], // [{itemId, decisionId}] of this session's decisions and skips, newest last (undo)
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch (_) {
    payload = null;
  }
  if (response.status === 401) {
    logout("Токен не принят: войдите снова.");
    throw new ApiError(401, payload);
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

// ----- session -----

async function login(token) {
  state.token = token;
  const me = await api("GET", "/api/me");
  sessionStorage.setItem(TOKEN_KEY, token);
  state.reviewer = me.reviewer_id;
  $("reviewer-name").textContent = me.reviewer_id;
  const taxonomy = await api("GET", "/api/taxonomy");
  state.domains = taxonomy.domains;
  state.byId = new Map(taxonomy.domains.map((d) => [d.id, d]));
  $("login-view").hidden = true;
  $("session").hidden = false;
  $("review-view").hidden = false;
  await Promise.all([refreshStats(), showNext()]);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  Object.assign(state, { token: null, reviewer: null, queue: [], selectedId: null, done: [] });
  $("review-view").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message || "";
  $("token-input").value = "";
  $("token-input").focus();
}

// ----- queue -----

async function showNext() {
  if (state.queue.length === 0) {
    state.queue = await api("GET", `/api/review/next?count=${PREFETCH}`);
  }
  render();
}

async function refreshStats() {
  const stats = await api("GET", "/api/review/stats");
  $("done-today").textContent = String(stats.reviewer_done_today ?? 0);
  $("left-in-queue").textContent = String(stats.queue_length);
  $("available").textContent = String(stats.available_for_reviewer ?? stats.available);
}

function current() {
  return state.queue[0] || null;
}

// ----- rendering -----

function isAudit(item) {
  return item.reason === "audit";
}

// The model's guess, when the page may show it: audit items come without one (the API leaves
// it out) and are always decided from the full list in taxonomy order.
function proposal(item) {
  if (isAudit(item) || !item.predicted_domain || !state.byId.has(item.predicted_domain)) return null;
  return item.predicted_domain;
}

function render() {
  const item = current();
  $("empty-state").hidden = item !== null;
  $("item-card").hidden = item === null;
  if (item === null) {
    $("refresh").focus();
    return;
  }
  $("item-card").dataset.itemId = item.id;
  $("item-card").dataset.reason = item.reason || "";
  $("item-text").textContent = item.text;
  $("item-priority").textContent = PRIORITY_NAMES[item.priority] || item.priority;
  $("item-priority").className = `badge ${item.priority}`;
  // Why it was queued, and what a decision on it waits for (a second opinion, a re-check,
  // the decision between two reviewers who disagreed).
  const waitsFor = item.needs_adjudication ? "adjudication" : item.waiting_for;
  const reasons = [item.reason, waitsFor].map((r) => REASON_NAMES[r]).filter(Boolean);
  $("item-reason").textContent = reasons.join(" · ");
  $("item-reason").hidden = reasons.length === 0;
  $("item-model").hidden = isAudit(item);
  const predicted = item.predicted_domain ? state.byId.get(item.predicted_domain) : null;
  $("item-predicted").textContent = predicted ? predicted.name : "нет метки";
  $("item-confidence").textContent = `${Math.round((item.confidence || 0) * 100)}%`;
  $("item-error").textContent = item.error ? `ошибка разметки: ${item.error}` : "";
  state.candidateScores = isAudit(item)
    ? new Map()
    : new Map((item.top_candidates || []).map(([id, score]) => [id, score]));
  state.selectedId = null;
  $("domain-search").value = "";
  setMode(proposal(item) ? "verify" : "choose");
}

function setMode(mode) {
  state.mode = mode;
  const item = current();
  $("verify").hidden = mode !== "verify";
  $("chooser").hidden = mode !== "choose";
  $("submit").hidden = mode !== "choose";
  if (mode === "verify") {
    $("verify-name").textContent = state.byId.get(proposal(item)).name;
    showGuideline(proposal(item));
    $("item-card").focus();
  } else {
    renderOptions();
    $("domain-list").focus();
  }
}

// The guideline beside the text: the description of the domain proposed or selected.
function showGuideline(id) {
  const domain = id ? state.byId.get(id) : null;
  $("guideline-name").textContent = domain ? domain.name : "";
  $("guideline-text").textContent = domain
    ? domain.description || "(описания нет)"
    : "Выберите домен — здесь появится его описание.";
}

function normalise(text) {
  return text.toLocaleLowerCase("ru").replaceAll("ё", "е");
}

function matches(domain, query) {
  const q = normalise(query.trim());
  return [domain.id, domain.name, domain.description].some((f) => normalise(f || "").includes(q));
}

function listedIds() {
  const query = $("domain-search").value;
  if (query.trim()) return state.domains.filter((d) => matches(d, query)).map((d) => d.id);
  const item = current();
  if (!item || isAudit(item)) return state.domains.map((d) => d.id);
  // The model's candidates first, best first, then the rest of the taxonomy in its order.
  const first = [...state.candidateScores.keys()].filter((id) => state.byId.has(id));
  const proposed = proposal(item);
  if (proposed && !first.includes(proposed)) first.unshift(proposed);
  const rest = state.domains.map((d) => d.id).filter((id) => !first.includes(id));
  return [...first, ...rest];
}

function kbd(text) {
  const element = document.createElement("kbd");
  element.textContent = text;
  return element;
}

function keyLabel(index) {
  const span = document.createElement("span");
  span.className = "key";
  span.setAttribute("aria-hidden", "true");
  const key = DOMAIN_KEYS[index];
  if (key) {
    span.textContent = key.label;
    if (key.alt) {
      const alt = document.createElement("small");
      alt.textContent = key.alt;
      span.append(alt);
    }
  }
  return span;
}

function renderOptions() {
  state.options = listedIds();
  const list = $("domain-list");
  list.replaceChildren();
  state.options.forEach((id, index) => {
    const domain = state.byId.get(id);
    const li = document.createElement("li");
    li.id = `option-${id}`;
    li.setAttribute("role", "option");
    li.dataset.domain = id;
    li.dataset.key = DOMAIN_KEYS[index] ? DOMAIN_KEYS[index].code : "";
    li.setAttribute("aria-selected", String(id === state.selectedId));
    if (DOMAIN_KEYS[index]) li.setAttribute("aria-keyshortcuts", DOMAIN_KEYS[index].label);
    const label = document.createElement("span");
    label.textContent = domain.name;
    const idText = document.createElement("span");
    idText.className = "domain-id";
    idText.textContent = id;
    label.append(idText);
    const score = document.createElement("span");
    score.className = "score";
    const value = state.candidateScores.get(id);
    score.textContent = value === undefined ? "" : `${Math.round(value * 100)}%`;
    li.append(keyLabel(index), label, score);
    li.addEventListener("click", () => select(id));
    li.addEventListener("dblclick", () => decide());
    list.append(li);
  });
  const count = state.options.length;
  const item = current();
  const hint = [`Доменов в списке: ${count}. Клавиша слева от названия выбирает домен, `,
    kbd("Enter"), " — подтверждает."];
  if (count > DOMAIN_KEYS.length) {
    hint.push(` Клавиши есть у первых ${DOMAIN_KEYS.length}, остальные — `, kbd("↑"), "/",
      kbd("↓"), " или поиск ", kbd("/"), ".");
  }
  if (item && isAudit(item)) {
    hint.push(" Контрольный текст: догадка модели скрыта, домены в постоянном порядке.");
  }
  $("list-hint").replaceChildren(...hint);
  showGuideline(state.selectedId);
  if (state.selectedId) {
    list.setAttribute("aria-activedescendant", `option-${state.selectedId}`);
    const selected = document.getElementById(`option-${state.selectedId}`);
    if (selected) selected.scrollIntoView({ block: "nearest" });
  } else {
    list.removeAttribute("aria-activedescendant");
  }
}

function select(id) {
  state.selectedId = id;
  renderOptions();
}

function moveSelection(step) {
  if (state.options.length === 0) return;
  const index = state.options.indexOf(state.selectedId);
  const next = index === -1 ? 0 : (index + step + state.options.length) % state.options.length;
  select(state.options[next]);
}

// ----- actions -----

// Actions run one after another in key-press order: a key pressed while a request is in flight
// waits for it instead of being lost, and each action works on the item on screen when it runs.
let pending = Promise.resolve();

function act(work) {
  pending = pending.then(async () => {
    if (!state.token) return;
    document.body.setAttribute("aria-busy", "true");
    $("error").textContent = "";
    try {
      await work();
    } catch (error) {
      if (error.status !== 401) $("error").textContent = error.message;
    } finally {
      document.body.setAttribute("aria-busy", "false");
    }
  });
  return pending;
}

function decide() {
  return act(async () => {
    const item = current();
    if (!item) return;
    const domain = state.mode === "verify" ? proposal(item) : state.selectedId;
    if (!domain) {
      $("error").textContent = "Выберите домен: клавиша слева от названия, стрелки или поиск (/).";
      return;
    }
    if (await postOnItem(item, "submit", { domain })) {
      const name = state.byId.get(domain).name;
      const approved = domain === proposal(item);
      $("status").textContent = `${approved ? "Подтверждено" : "Записано"}: ${name}`;
    }
    await Promise.all([refreshStats(), refreshQueue(item.id)]);
  });
}

function skip() {
  return act(async () => {
    const item = current();
    if (!item) return;
    if (await postOnItem(item, "skip")) $("status").textContent = "Пропущено.";
    await Promise.all([refreshStats(), refreshQueue(item.id)]);
  });
}

// Submit or skip the item and remember its decision id for undo; false when the server says
// it is no longer ours (404/409: the lease expired and someone else took it, it was decided
// already, or it is gone). Such an item is dropped with a note instead of leaving the page
// stuck on it.
async function postOnItem(item, action, body) {
  try {
    const answer = await api(
      "POST", `/api/review/items/${encodeURIComponent(item.id)}/${action}`, body,
    );
    state.done.push({ itemId: item.id, decisionId: answer.decision_id });
    return true;
  } catch (error) {
    if (error.status !== 404 && error.status !== 409) throw error;
    $("status").textContent = "Этот текст больше не закреплён за вами, показан следующий.";
    return false;
  }
}

// After each decision the queue is leased again: the server hands back (and renews) our own
// leases first, so the prefetched items never expire while they wait on this page.
async function refreshQueue(doneId) {
  const leased = await api("GET", `/api/review/next?count=${PREFETCH}`);
  state.queue = leased.filter((queued) => queued.id !== doneId);
  render();
}

// Undo names the decision it takes back, so a retried or repeated request changes nothing more.
function undo() {
  return act(async () => {
    const last = state.done.at(-1);
    if (!last) {
      $("status").textContent = "Нечего отменять.";
      return;
    }
    let item;
    try {
      item = await api(
        "POST",
        `/api/review/items/${encodeURIComponent(last.itemId)}/undo`,
        { decision_id: last.decisionId },
      );
    } catch (error) {
      // Refused for good (someone else has worked on the item since): U moves on to the one
      // before. Anything else (a lost connection) keeps it, so U tries the same undo again.
      if (error.status === 404 || error.status === 409) state.done.pop();
      throw error;
    }
    state.done.pop();
    state.queue = [item, ...state.queue.filter((queued) => queued.id !== item.id)];
    $("status").textContent = "Последнее решение отменено.";
    render();
    await refreshStats();
  });
}

// ----- keyboard -----

function onSearchKey(event) {
  if (event.key === "Enter") {
    event.preventDefault();
    if (state.options.length > 0) {
      state.selectedId = state.options[0];
      $("domain-search").value = "";
      renderOptions();
      $("domain-list").focus();
    }
  } else if (event.key === "Escape") {
    event.preventDefault();
    $("domain-search").value = "";
    renderOptions();
    $("domain-list").focus();
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    moveSelection(event.key === "ArrowDown" ? 1 : -1);
  }
}

// The list position a domain key stands for, or -1.
function domainKeyIndex(event) {
  const code = event.code.replace(/^Numpad(\d)$/, "Digit$1");
  return DOMAIN_KEYS.findIndex((key) => key.code === code);
}

function openList(focusSearch) {
  setMode("choose");
  if (focusSearch) $("domain-search").focus();
}

function onKey(event) {
  if ($("review-view").hidden || !current()) return;
  const target = event.target;
  if (target === $("domain-search")) {
    onSearchKey(event);
    return;
  }
  // Buttons handle their own Enter and Space: never act twice.
  const onButton = target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement;
  if (onButton && (event.key === "Enter" || event.key === " ")) return;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
  if (event.altKey || event.metaKey) return;
  const code = event.code;
  if (event.ctrlKey) {
    if (code === "KeyZ") {
      event.preventDefault();
      undo();
    }
    return;
  }
  if (event.key === "Enter") {
    event.preventDefault();
    if (!event.repeat) decide();
  } else if (code === "KeyS") {
    event.preventDefault();
    skip();
  } else if (code === "KeyU") {
    event.preventDefault();
    undo();
  } else if (event.key === "/" || code === "Slash") {
    event.preventDefault();
    openList(true);
  } else if (state.mode === "verify") {
    if (code === "KeyN" || event.key === "ArrowDown") {
      event.preventDefault();
      openList(false);
    }
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    moveSelection(event.key === "ArrowDown" ? 1 : -1);
  } else if (event.key === "Escape" && proposal(current())) {
    event.preventDefault();
    setMode("verify");
  } else if (domainKeyIndex(event) !== -1) {
    event.preventDefault();
    const id = state.options[domainKeyIndex(event)];
    if (id) select(id);
  }
}

// ----- wiring -----

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    $("login-error").textContent = "";
    login(token).catch((error) => {
      if (error.status !== 401) $("login-error").textContent = error.message;
    });
  });
  $("logout").addEventListener("click", () => logout(""));
  $("refresh").addEventListener("click", () => act(async () => {
    await Promise.all([refreshStats(), showNext()]);
  }));
  $("submit").addEventListener("click", () => decide());
  $("approve").addEventListener("click", () => decide());
  $("open-list").addEventListener("click", () => openList(false));
  $("skip").addEventListener("click", () => skip());
  $("undo").addEventListener("click", () => undo());
  $("domain-search").addEventListener("input", () => renderOptions());
  document.addEventListener("keydown", onKey);

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    login(saved).catch(() => logout("Сессия истекла: войдите снова."));
  }
});
