// The reviewer page: one text at a time, decided with the keyboard alone.
// Plain JavaScript, no build step, no network beyond this API. User data is only ever set
// through textContent, never as HTML.
"use strict";

const TOKEN_KEY = "esk.review.token";
// Items leased per request: one, so the page holds no lease it does not show. The server hands
// back our own leases first (oldest first), so an item leased to us is always shown next.
const PREFETCH = 1;

const state = {
  token: null,
  reviewer: null,
  domains: [], // [{id, name, description}] in taxonomy order
  byId: new Map(),
  queue: [], // leased items; queue[0] is on screen
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

function render() {
  const item = current();
  $("empty-state").hidden = item !== null;
  $("item-card").hidden = item === null;
  if (item === null) {
    $("refresh").focus();
    return;
  }
  $("item-card").dataset.itemId = item.id;
  $("item-text").textContent = item.text;
  $("item-priority").textContent = item.priority;
  $("item-priority").className = `badge ${item.priority}`;
  const predicted = item.predicted_domain ? state.byId.get(item.predicted_domain) : null;
  $("item-predicted").textContent = predicted ? predicted.name : "нет метки";
  $("item-confidence").textContent = `${Math.round((item.confidence || 0) * 100)}%`;
  $("item-error").textContent = item.error ? `ошибка разметки: ${item.error}` : "";
  state.candidateScores = new Map((item.top_candidates || []).map(([id, score]) => [id, score]));
  state.selectedId = item.predicted_domain && state.byId.has(item.predicted_domain)
    ? item.predicted_domain
    : null;
  $("domain-search").value = "";
  renderOptions();
  $("domain-list").focus();
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
  // The model's candidates first, best first, then the rest of the taxonomy in its order.
  const first = [...state.candidateScores.keys()].filter((id) => state.byId.has(id));
  const item = current();
  if (item && item.predicted_domain && state.byId.has(item.predicted_domain)
      && !first.includes(item.predicted_domain)) {
    first.unshift(item.predicted_domain);
  }
  const rest = state.domains.map((d) => d.id).filter((id) => !first.includes(id));
  return [...first, ...rest];
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
    li.setAttribute("aria-selected", String(id === state.selectedId));
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = index < 9 ? String(index + 1) : "";
    key.setAttribute("aria-hidden", "true");
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
    li.append(key, label, score);
    li.addEventListener("click", () => select(id));
    li.addEventListener("dblclick", () => decide());
    list.append(li);
  });
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
    if (!state.selectedId) {
      $("error").textContent = "Выберите домен: цифра, стрелки или поиск (/).";
      return;
    }
    const domain = state.selectedId;
    if (await postOnItem(item, "submit", { domain })) {
      const name = state.byId.get(domain).name;
      $("status").textContent = domain === item.predicted_domain
        ? `Подтверждено: ${name}`
        : `Исправлено: ${name}`;
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

function onKey(event) {
  if ($("review-view").hidden) return;
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
  const digit = /^(?:Digit|Numpad)([1-9])$/.exec(code) || /^([1-9])$/.exec(event.key);
  if (digit) {
    event.preventDefault();
    const id = state.options[Number(digit[1]) - 1];
    if (id) select(id);
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    moveSelection(event.key === "ArrowDown" ? 1 : -1);
  } else if (event.key === "Enter") {
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
    $("domain-search").focus();
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
  $("skip").addEventListener("click", () => skip());
  $("undo").addEventListener("click", () => undo());
  $("domain-search").addEventListener("input", () => renderOptions());
  document.addEventListener("keydown", onKey);

  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    login(saved).catch(() => logout("Сессия истекла: войдите снова."));
  }
});
