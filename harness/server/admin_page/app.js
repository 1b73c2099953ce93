// The admin page: the device attestation status report and the Attest device action, over the
// server's JSON API. Every string from the server is set as text, never parsed as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "harness-admin-token";
  const state = { offset: 0, limit: 50, total: 0, columns: [], rows: [], selected: new Set(), open: null };
  const $ = (id) => document.getElementById(id);

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + token() };
    const init = { method: method, headers: headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      return { status: 0, headers: new Headers(), data: { reason: "cannot reach the server: " + error } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    return { status: response.status, headers: response.headers, data: data };
  }

  function reason(result) {
    return result.data && result.data.reason ? result.data.reason : "HTTP " + result.status;
  }

  function showAuth(text) {
    $("auth-state").textContent = text;
  }

  // --- the report ----------------------------------------------------------------------------

  async function load() {
    if (!token()) {
      showAuth("Enter the admin bearer token to see the report.");
      renderEmpty();
      return;
    }
    const params = new URLSearchParams({ offset: String(state.offset), limit: String(state.limit) });
    const status = $("f-status").value;
    const ownership = $("f-ownership").value;
    if (status) params.set("status", status);
    if (ownership) params.set("ownership", ownership);
    const result = await api("GET", "reports/device-attestation?" + params.toString());
    if (result.status === 401) {
      showAuth("The server did not accept this token.");
      renderEmpty();
      return;
    }
    if (result.status !== 200) {
      $("count").textContent = "The report could not be read: " + reason(result);
      return;
    }
    showAuth("Token accepted (kept for this browser tab only).");
    const data = result.data;
    if (data.rows.length === 0 && data.total > 0 && state.offset > 0) {
      // The fleet shrank under a filter: go to the last page that has rows.
      state.offset = Math.max(0, Math.floor((data.total - 1) / state.limit) * state.limit);
      return load();
    }
    state.columns = data.columns;
    state.rows = data.rows;
    state.total = data.total;
    render();
  }

  function renderEmpty() {
    state.rows = [];
    state.total = 0;
    render();
  }

  function render() {
    const head = $("head");
    clear(head);
    const all = element("input");
    all.type = "checkbox";
    all.id = "select-page";
    all.title = "Select every device on this page";
    all.setAttribute("aria-label", "Select every device on this page");
    all.checked = state.rows.length > 0 && state.rows.every((row) => state.selected.has(row["Device ID"]));
    all.addEventListener("change", () => {
      for (const row of state.rows) {
        if (all.checked) state.selected.add(row["Device ID"]);
        else state.selected.delete(row["Device ID"]);
      }
      render();
    });
    const selectHead = element("th", "Select ");
    selectHead.appendChild(all);
    head.appendChild(selectHead);
    for (const column of state.columns) head.appendChild(element("th", column));

    const body = $("rows");
    clear(body);
    for (const row of state.rows) {
      const id = row["Device ID"];
      const tr = element("tr", null, "device" + (state.open === id ? " open" : ""));
      tr.dataset.id = id;
      const cell = element("td");
      const box = element("input");
      box.type = "checkbox";
      box.className = "select";
      box.checked = state.selected.has(id);
      box.setAttribute("aria-label", "Select " + row["Device name"]);
      box.addEventListener("change", () => {
        if (box.checked) state.selected.add(id);
        else state.selected.delete(id);
        updateSelection();
      });
      cell.appendChild(box);
      tr.appendChild(cell);
      for (const column of state.columns) {
        const td = element("td", row[column]);
        if (column === "Status detail" && row.retryRecommended) {
          td.appendChild(element("span", "retry recommended", "retry"));
        }
        tr.appendChild(td);
      }
      tr.addEventListener("click", (event) => {
        if (event.target.tagName !== "INPUT") showDetail(id);
      });
      body.appendChild(tr);
    }

    const first = state.total === 0 ? 0 : state.offset + 1;
    const last = state.offset + state.rows.length;
    $("count").textContent = token()
      ? "Showing " + first.toLocaleString("en-US") + "–" + last.toLocaleString("en-US") + " of " +
        state.total.toLocaleString("en-US") + " devices."
      : "";
    const pages = Math.max(1, Math.ceil(state.total / state.limit));
    $("page").textContent = "Page " + (Math.floor(state.offset / state.limit) + 1) + " of " + pages;
    $("prev").disabled = state.offset === 0;
    $("next").disabled = state.offset + state.limit >= state.total;
    updateSelection();
  }

  function updateSelection() {
    const count = state.selected.size;
    $("selected-count").textContent = count.toLocaleString("en-US") + " selected";
    $("attest").disabled = count === 0;
    const all = $("select-page");
    if (all) all.checked = state.rows.length > 0 && state.rows.every((r) => state.selected.has(r["Device ID"]));
  }

  // --- the Attest device action -----------------------------------------------------------------

  async function attest() {
    const ids = Array.from(state.selected);
    const out = $("action-result");
    out.className = "";
    out.textContent = "Sending the Attest device action for " + ids.length + " device(s)…";
    const result = await api("POST", "devices/attest", { deviceIds: ids });
    out.dataset.status = String(result.status);
    if (result.status === 202) {
      const data = result.data;
      const unknown = data.devices.filter((d) => d.result === "unknown").map((d) => d.deviceId);
      out.className = "ok";
      out.textContent =
        "Attest device accepted (action " + data.actionId + "): " + data.queued + " device(s) queued" +
        (unknown.length ? "; unknown: " + unknown.join(", ") : "") +
        ". Online devices are told by push and sync within minutes; offline ones pick it up at " +
        "their next check-in. It can take up to 15 minutes. " +
        "Generate the report again later to see their status.";
    } else if (result.status === 429) {
      const wait = result.headers.get("Retry-After") || "60";
      out.className = "wait";
      out.textContent = "Too soon: wait " + wait + " s before the next Attest device action. " + reason(result);
    } else if (result.status === 403) {
      out.className = "refused";
      out.textContent = "Not permitted: " + reason(result);
    } else if (result.status === 401) {
      out.className = "refused";
      out.textContent = "The server did not accept this token.";
    } else {
      out.className = "refused";
      out.textContent = "Refused (" + result.status + "): " + reason(result);
    }
  }

  // --- the device detail view ---------------------------------------------------------------

  function fact(list, name, value) {
    list.appendChild(element("dt", name));
    list.appendChild(element("dd", value === "" || value === null || value === undefined ? "—" : value));
  }

  function describeAction(action) {
    if (!action) return "No Attest device action was requested for this device.";
    let text = "Action " + action.id + " requested " + action.requestedAt + " by " + action.requestedBy +
      ": " + action.state;
    if (action.deliveredAt) text += "; delivered " + action.deliveredAt;
    if (action.completedAt) text += "; completed " + action.completedAt;
    return text + ".";
  }

  async function showDetail(id) {
    const result = await api("GET", "devices/" + encodeURIComponent(id));
    const panel = $("details");
    if (result.status !== 200) {
      $("d-title").textContent = id;
      clear($("d-facts"));
      clear($("d-attempts"));
      $("d-action").textContent = "The device could not be read: " + reason(result);
      panel.hidden = false;
      return;
    }
    const device = result.data;
    state.open = id;
    for (const tr of document.querySelectorAll("#rows tr.device")) {
      tr.classList.toggle("open", tr.dataset.id === id);
    }
    $("d-title").textContent = device["Device name"] + " (" + device["Device ID"] + ")";
    const facts = $("d-facts");
    clear(facts);
    fact(facts, "Device attestation status", device["Device attestation status"]);
    fact(facts, "Status detail", device["Status detail"]);
    fact(facts, "Retry recommended", device.retryRecommended ? "yes" : "no");
    fact(facts, "Decision", device.decision);
    fact(facts, "UPN", device.UPN);
    fact(facts, "Entra device ID", device.entraDeviceId);
    fact(facts, "Manufacturer / model", device.manufacturer + " " + device.Model);
    fact(facts, "Serial", device.serial);
    fact(facts, "OS version", device["OS version"]);
    fact(facts, "TPM", device["TPM manufacturer"] + " " + device["TPM version"]);
    fact(facts, "Last check-in", device["Last check-in"]);
    $("d-action").textContent = describeAction(device.action);

    const attempts = $("d-attempts");
    clear(attempts);
    if (!device.attempts.length) attempts.appendChild(element("p", "No attempts recorded."));
    device.attempts.slice().reverse().forEach((attempt, index) => {
      const block = element("div", null, "attempt");
      const number = device.attempts.length - index;
      block.appendChild(element("p",
        "Attempt " + number + ": started " + attempt.started_at +
        (attempt.finished_at ? ", finished " + attempt.finished_at : ", unfinished") +
        " — " + attempt.status + (attempt.detail ? " / " + attempt.detail : "") +
        (attempt.decision ? " — " + attempt.decision : "")));
      if (attempt.checks.length) {
        const list = element("ul");
        for (const check of attempt.checks) {
          list.appendChild(element("li", check.name + (check.detail ? ": " + check.detail : ""),
            "check " + (check.passed ? "passed" : "failed")));
        }
        block.appendChild(list);
      }
      attempts.appendChild(block);
    });
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  }

  // --- wiring -------------------------------------------------------------------------------------

  function reload(resetPage) {
    if (resetPage) state.offset = 0;
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    state.limit = Number($("page-size").value) || 50;
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      state.selected.clear();
      reload(true);
    });
    $("forget-token").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      state.selected.clear();
      $("details").hidden = true;
      reload(true);
    });
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      reload(true);
    });
    $("f-status").addEventListener("change", () => reload(true));
    $("f-ownership").addEventListener("change", () => reload(true));
    $("page-size").addEventListener("change", () => {
      state.limit = Number($("page-size").value) || 50;
      reload(true);
    });
    $("prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - state.limit);
      load();
    });
    $("next").addEventListener("click", () => {
      state.offset += state.limit;
      load();
    });
    $("attest").addEventListener("click", attest);
    $("d-close").addEventListener("click", () => {
      $("details").hidden = true;
      state.open = null;
      for (const tr of document.querySelectorAll("#rows tr.device.open")) tr.classList.remove("open");
    });
    load();
  });
})();
