"use strict";

// Reading the embedded payload is kept apart from the page so that it can be checked
// outside a browser (tests run it under Node.js against the Python encoder).
const AttestationReport = (() => {
  function fieldIndex(payload) {
    const ix = {};
    payload.fields.forEach((name, i) => { ix[name] = i; });
    return ix;
  }

  // Key, value pairs stay an array: a JS object would reorder keys that look like integers.
  function pairs(strings, flat) {
    const out = [];
    for (let i = 0; i < flat.length; i += 2) out.push([strings[flat[i]], strings[flat[i + 1]]]);
    return out;
  }

  function evidence(payload, ix, row) {
    const s = payload.strings;
    return {
      inventory: pairs(s, row[ix.inventory]),
      client_steps: row[ix.client_steps].map((x) => ({ step: s[x[0]], ok: x[1] === 1, detail: s[x[2]], seconds: x[3] })),
      request_items: pairs(s, row[ix.request_items]),
      checks: row[ix.checks].map((x) => ({ name: s[x[0]], passed: x[1] === 1, detail: s[x[2]] })),
      decision: s[row[ix.decision]],
      checkpoints: row[ix.checkpoints].map((x) => ({
        step: s[x[0]], expected: s[x[1]], actual: s[x[2]], matched: x[3] === 1, reason: s[x[4]],
      })),
      attempts: (row[ix.attempts] || []).map((x) => ({
        time: s[x[0]], status: s[x[1]], detail: s[x[2]], trigger: s[x[3]], decision: s[x[4]],
      })),
    };
  }

  // The device as results.json holds it.
  function decodeDevice(payload, ix, row) {
    const s = payload.strings;
    const ev = evidence(payload, ix, row);
    const actual = row[ix.actual_status] === null ? null
      : { status: s[row[ix.actual_status]], detail: s[row[ix.actual_detail]] };
    return {
      name: s[row[ix.name]],
      group: s[row[ix.group]],
      scenario: s[row[ix.scenario]],
      device_id: s[row[ix.device_id]],
      expected: { status: s[row[ix.expected_status]], detail: s[row[ix.expected_detail]] },
      actual: actual,
      matched: row[ix.matched] === 1,
      error: s[row[ix.error]],
      inventory: Object.fromEntries(ev.inventory),
      evidence: {
        client_steps: ev.client_steps,
        request_items: Object.fromEntries(ev.request_items),
        checks: ev.checks,
        decision: ev.decision,
      },
      tpm_seconds: row[ix.tpm_seconds],
      seconds: row[ix.seconds],
      checkpoints: ev.checkpoints,
      attempts: ev.attempts,
      engine: s[row[ix.engine]],
      not_applicable: ix.not_applicable === undefined ? "" : s[row[ix.not_applicable]],
      key: s[row[ix.key]],
      world: s[row[ix.world]],
      trace: traceOf(payload, ix, row),
    };
  }

  function traceOf(payload, ix, row) {
    const s = payload.strings;
    return (row[ix.trace] || []).map((x) => ({
      source: s[x[0]], command: s[x[1]], response: s[x[2]], rc: x[3], seconds: x[4],
      command_bytes: x[5], response_bytes: x[6],
    }));
  }

  function decodeAll(payload) {
    const ix = fieldIndex(payload);
    return payload.devices.map((row) => decodeDevice(payload, ix, row));
  }

  return { fieldIndex, evidence, decodeDevice, decodeAll, traceOf };
})();

if (typeof document !== "undefined") {
  (() => {
    const PAGE = 500;
    const NO_RESULT = "(no result)";
    const NO_DETAIL = "(no detail)";
    const doc = document;
    const $ = (id) => doc.getElementById(id);

    const payload = JSON.parse($("report-data").textContent);
    const ix = AttestationReport.fieldIndex(payload);
    const s = payload.strings;
    const retry = new Set(payload.retry);
    const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
    const history = payload.history && payload.history.runs && payload.history.runs.length ? payload.history : null;
    const OUTCOME_NAMES = { m: "matched", x: "mismatched", e: "harness error" };

    function outcomeText(status, detail) {
      if (status === null) return NO_RESULT;
      return detail ? status + " / " + detail : status;
    }

    // Only what the table and the filters need; evidence is decoded when a device is opened.
    const devices = payload.devices.map((row, k) => {
      const actualStatus = row[ix.actual_status] === null ? null : s[row[ix.actual_status]];
      const actualDetail = row[ix.actual_detail] === null ? null : s[row[ix.actual_detail]];
      const notApplicable = ix.not_applicable === undefined ? "" : s[row[ix.not_applicable]];
      const error = s[row[ix.error]] || notApplicable;
      const matched = row[ix.matched] === 1;
      // Where a mismatch happened: the first checkpoint that missed (scenarios with steps).
      const missed = row[ix.checkpoints].find((x) => x[3] !== 1);
      const recent = history ? history.devices[k] : null;
      const d = {
        k: k,
        name: s[row[ix.name]],
        group: s[row[ix.group]],
        deviceId: s[row[ix.device_id]],
        expectedStatus: s[row[ix.expected_status]],
        expectedDetail: s[row[ix.expected_detail]],
        actualStatus: actualStatus,
        actualDetail: actualDetail,
        matched: matched,
        error: error,
        decision: s[row[ix.decision]],
        outcome: notApplicable ? "not-applicable" : error ? "error" : matched ? "matched" : "mismatched",
        statusKey: actualStatus === null ? NO_RESULT : actualStatus,
        detailKey: actualStatus === null ? NO_RESULT : actualDetail || NO_DETAIL,
        checkpoint: !matched && missed ? { step: s[missed[0]], expected: s[missed[1]], actual: s[missed[2]] } : null,
        label: recent ? recent[0] : "",
        recent: recent ? recent[1] : "",
      };
      d.hay = [d.name, d.group, d.deviceId, d.expectedDetail, actualDetail || "", d.decision, error, d.label]
        .join("\n").toLowerCase();
      return d;
    });

    // Sections: mismatches, then harness errors, then matched devices by actual status detail.
    const sectionCount = new Map();
    for (const d of devices) {
      if (d.outcome === "mismatched") { d.section = "mismatched"; d.sectionLabel = "Mismatches"; }
      else if (d.outcome === "error") { d.section = "error"; d.sectionLabel = "Harness errors"; }
      else if (d.outcome === "not-applicable") { d.section = "n/a"; d.sectionLabel = "Not applicable"; }
      else {
        d.section = "detail:" + d.statusKey + "\u0000" + d.detailKey;
        d.sectionLabel = d.actualDetail ? d.actualDetail : d.statusKey;
      }
      sectionCount.set(d.section, (sectionCount.get(d.section) || 0) + 1);
    }
    function sectionRank(d) {
      if (d.section === "mismatched") return [0, 0, 0];
      if (d.section === "error") return [1, 0, 0];
      if (d.section === "n/a") return [3, 0, 0];
      // Fully attested devices are rarely what an admin is looking for: put them last.
      return [2, d.actualStatus === "Attested" && !d.actualDetail ? 1 : 0, -sectionCount.get(d.section)];
    }
    for (const d of devices) d.rank = sectionRank(d);
    const byK = devices.slice();
    devices.sort((a, b) => {
      for (let i = 0; i < 3; i++) if (a.rank[i] !== b.rank[i]) return a.rank[i] - b.rank[i];
      return collator.compare(a.sectionLabel, b.sectionLabel) || collator.compare(a.name, b.name) || a.k - b.k;
    });

    function el(tag, className, text) {
      const node = doc.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined && text !== null) node.textContent = String(text);
      return node;
    }

    function fillSelect(select, keyOf) {
      const counts = new Map();
      for (const d of devices) counts.set(keyOf(d), (counts.get(keyOf(d)) || 0) + 1);
      const keys = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || collator.compare(a, b));
      for (const key of keys) {
        const option = el("option", null, key + " (" + counts.get(key) + ")");
        option.value = key;
        select.appendChild(option);
      }
    }

    const form = $("filters");
    const outcomeSel = $("f-outcome");
    const statusSel = $("f-status");
    const detailSel = $("f-detail");
    const search = $("f-search");
    const table = $("devices");
    const tbody = $("rows");
    const more = $("more");
    const count = $("count");
    const panel = $("details");
    const panelBody = $("details-body");
    fillSelect(statusSel, (d) => d.statusKey);
    fillSelect(detailSel, (d) => d.detailKey);
    form.hidden = false;
    table.hidden = false;

    let filtered = devices;
    let groupCounts = new Map();
    let shown = 0;
    let selected = null;

    function applyFilters() {
      const outcome = outcomeSel.value;
      const status = statusSel.value;
      const detail = detailSel.value;
      const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      filtered = devices.filter((d) =>
        (outcome === "" || (outcome.startsWith("label:") ? d.label === outcome.slice(6)
          : outcome === "mismatched" ? !d.matched && d.outcome !== "not-applicable" : d.outcome === outcome))
        && (status === "" || d.statusKey === status)
        && (detail === "" || d.detailKey === detail)
        && words.every((w) => d.hay.includes(w)));
      groupCounts = new Map();
      for (const d of filtered) groupCounts.set(d.section, (groupCounts.get(d.section) || 0) + 1);
      shown = 0;
      tbody.replaceChildren();
      renderMore();
    }

    function sectionRow(d) {
      const tr = el("tr", "section");
      const th = el("th", null, d.sectionLabel + " ");
      th.colSpan = history ? 8 : 7;
      th.scope = "colgroup";
      th.appendChild(el("span", "n", "(" + groupCounts.get(d.section) + ")"));
      if (d.section.startsWith("detail:") && retry.has(d.actualDetail)) {
        th.appendChild(doc.createTextNode(" "));
        th.appendChild(retryBadge());
      }
      tr.appendChild(th);
      return tr;
    }

    function retryBadge() {
      const badge = el("span", "badge retry", "retry recommended");
      badge.title = "Re-run the Attest device action for this device";
      return badge;
    }

    function outcomeCell(className, status, detail, withRetry) {
      const td = el("td", className);
      td.appendChild(el("span", "status", status === null ? NO_RESULT : status));
      if (detail || withRetry) {
        const line = td.appendChild(el("span", "detail", detail));
        if (withRetry) {
          line.appendChild(doc.createTextNode(" "));
          line.appendChild(retryBadge());
        }
      }
      return td;
    }

    function deviceRow(d) {
      const tr = el("tr", "device " + d.outcome);
      tr.dataset.k = String(d.k);
      tr.tabIndex = 0;
      if (selected === d.k) tr.classList.add("selected");
      tr.appendChild(el("td", null, d.name));
      tr.appendChild(el("td", null, d.group));
      if (d.checkpoint) {
        // A checkpoint before the last missed: the final statuses may well agree, so show where it went wrong.
        const expected = tr.appendChild(el("td", "expected"));
        expected.appendChild(el("span", "checkpoint", d.checkpoint.step));
        expected.appendChild(el("span", "status", d.checkpoint.expected));
        tr.appendChild(el("td", "actual")).appendChild(el("span", "status", d.checkpoint.actual));
      } else {
        tr.appendChild(outcomeCell("expected", d.expectedStatus, d.expectedDetail, false));
        tr.appendChild(outcomeCell("actual", d.actualStatus, d.actualDetail, retry.has(d.actualDetail)));
      }
      const mark = d.outcome === "matched" ? ["ok", "\u2713", "matched"]
        : d.outcome === "error" ? ["err", "!", "harness error"]
        : d.outcome === "not-applicable" ? ["na", "\u2013", "not applicable"] : ["bad", "\u2717", "mismatched"];
      const markCell = el("td", "mark " + mark[0], mark[1]);
      markCell.title = mark[2];
      tr.appendChild(markCell);
      if (history) tr.appendChild(recentCell(d));
      tr.appendChild(el("td", "id", d.deviceId));
      tr.appendChild(el("td", "cause", d.error ? d.error : d.decision));
      return tr;
    }

    function recentCell(d) {
      const td = el("td", "recent");
      const strip = td.appendChild(el("span", "strip"));
      strip.title = "oldest first: " + [...d.recent].map((c) => OUTCOME_NAMES[c] || c).join(", ");
      for (const c of d.recent) strip.appendChild(el("span", "run run-" + c));
      if (d.label) td.appendChild(el("span", "badge trend-" + d.label, d.label));
      return td;
    }

    function renderMore() {
      const frag = doc.createDocumentFragment();
      const end = Math.min(filtered.length, shown + PAGE);
      let previous = shown > 0 ? filtered[shown - 1].section : null;
      for (let i = shown; i < end; i++) {
        const d = filtered[i];
        if (d.section !== previous) {
          frag.appendChild(sectionRow(d));
          previous = d.section;
        }
        frag.appendChild(deviceRow(d));
      }
      tbody.appendChild(frag);
      shown = end;
      const fmt = (n) => n.toLocaleString();
      count.textContent = filtered.length === devices.length
        ? "Showing " + fmt(shown) + " of " + fmt(devices.length) + " devices."
        : "Showing " + fmt(shown) + " of " + fmt(filtered.length) + " devices matching the filters ("
          + fmt(devices.length) + " in total).";
      const rest = filtered.length - shown;
      more.hidden = rest <= 0;
      more.textContent = "Show " + fmt(Math.min(PAGE, rest)) + " more (" + fmt(rest) + " not shown)";
    }

    function dataTable(headers, rows, numeric = []) {
      const t = el("table");
      const head = el("tr");
      headers.forEach((h, i) => {
        const th = el("th", numeric.includes(i) ? "num" : null, h);
        th.scope = "col";
        head.appendChild(th);
      });
      t.appendChild(el("thead")).appendChild(head);
      const body = t.appendChild(el("tbody"));
      for (const cells of rows) {
        const tr = body.appendChild(el("tr"));
        cells.forEach((c, i) => {
          const td = c instanceof Node ? wrapCell(c) : el("td", null, c);
          if (numeric.includes(i)) td.className = "num";
          tr.appendChild(td);
        });
      }
      return t;
    }

    function wrapCell(node) {
      const td = el("td");
      td.appendChild(node);
      return td;
    }

    function passMark(ok, yes, no) {
      return el("span", ok ? "pass" : "fail", ok ? "\u2713 " + yes : "\u2717 " + no);
    }

    function section(title, content, emptyText) {
      const frag = doc.createDocumentFragment();
      frag.appendChild(el("h3", null, title));
      frag.appendChild(content === null ? el("p", "empty", emptyText) : content);
      return frag;
    }

    function kv(entries) {
      const dl = el("dl", "kv");
      for (const [k, v] of entries) {
        dl.appendChild(el("dt", null, k));
        const dd = el("dd");
        if (v instanceof Node) dd.appendChild(v); else dd.textContent = v;
        dl.appendChild(dd);
      }
      return dl;
    }

    function showDetails(d) {
      const row = payload.devices[d.k];
      const ev = AttestationReport.evidence(payload, ix, row);
      const body = doc.createDocumentFragment();
      const title = el("h2", null, d.name);
      title.id = "details-title";
      body.appendChild(title);
      const actual = el("span", null, outcomeText(d.actualStatus, d.actualDetail));
      if (retry.has(d.actualDetail)) {
        actual.appendChild(doc.createTextNode(" "));
        actual.appendChild(retryBadge());
      }
      body.appendChild(kv([
        ["Outcome", d.outcome === "error" ? "harness error" : d.outcome],
        ["Expected", outcomeText(d.expectedStatus, d.expectedDetail)],
        ["Actual", actual],
        ...(d.checkpoint ? [["Failed checkpoint", d.checkpoint.step + ": expected " + d.checkpoint.expected
          + ", actual " + d.checkpoint.actual]] : []),
        ...(history ? [["Recent runs", (d.label ? d.label + "; " : "")
          + [...d.recent].map((c) => OUTCOME_NAMES[c] || c).join(", ") + " (oldest first)"]] : []),
        ["Group", d.group],
        ["Scenario", s[row[ix.scenario]]],
        ["Device ID", d.deviceId || "(none)"],
        ...(s[row[ix.engine]] ? [["TPM engine", s[row[ix.engine]]]] : []),
        ["Time", row[ix.seconds].toFixed(3) + " s, of which " + row[ix.tpm_seconds].toFixed(3) + " s in TPM commands"],
      ]));
      if (d.error) body.appendChild(section("Harness error", el("pre", null, d.error)));
      body.appendChild(section("Cause found by the server", ev.decision ? el("pre", null, ev.decision) : null, "none recorded"));
      if (ev.checkpoints.length) body.appendChild(section("Scenario steps", dataTable(
        ["Checkpoint", "Matched", "Expected", "Actual", "Reason"],
        ev.checkpoints.map((x) => [x.step, passMark(x.matched, "yes", "no"), x.expected, x.actual, x.reason]),
      )));
      body.appendChild(section("Inventory", ev.inventory.length ? kv(ev.inventory) : null, "none recorded"));
      const triggers = { "first-enrollment": "first enrollment", "device-retry": "device retry", "attest-action": "Attest device action" };
      body.appendChild(section("Attestation attempts", ev.attempts.length ? dataTable(
        ["Time", "Status", "Detail", "Triggered by", "Cause found by the server"],
        ev.attempts.map((x) => [x.time, x.status, x.detail, triggers[x.trigger] || x.trigger || "not stated", x.decision]),
      ) : null, "none recorded"));
      body.appendChild(section("Client steps", ev.client_steps.length ? dataTable(
        ["Step", "OK", "Detail", "Seconds"],
        ev.client_steps.map((x) => [x.step, passMark(x.ok, "ok", "failed"), x.detail, x.seconds.toFixed(3)]),
        [3],
      ) : null, "none recorded"));
      const trace = AttestationReport.traceOf(payload, ix, row);
      if (trace.length) body.appendChild(section("TPM command trace", dataTable(
        ["#", "Sent by", "Command", "Response", "ms", "Command bytes", "Response bytes"],
        trace.map((x, i) => [String(i + 1), x.source, x.command,
          el("span", x.rc === 0 ? "pass" : "fail", x.response), (x.seconds * 1000).toFixed(3),
          String(x.command_bytes), String(x.response_bytes)]),
        [0, 4, 5, 6],
      )));
      body.appendChild(section("Request items", ev.request_items.length ? dataTable(
        ["Item", "Summary"], ev.request_items,
      ) : null, "none recorded"));
      body.appendChild(section("Server checks", ev.checks.length ? dataTable(
        ["Check", "Passed", "Detail"],
        ev.checks.map((x) => [x.name, passMark(x.passed, "passed", "failed"), x.detail]),
      ) : null, "none recorded"));
      panelBody.replaceChildren(body);
      panel.hidden = false;
      panel.scrollTop = 0;
      selected = d.k;
      for (const tr of tbody.querySelectorAll("tr.selected")) tr.classList.remove("selected");
      const tr = tbody.querySelector('tr[data-k="' + d.k + '"]');
      if (tr) tr.classList.add("selected");
    }

    function closeDetails() {
      panel.hidden = true;
      const tr = selected === null ? null : tbody.querySelector('tr[data-k="' + selected + '"]');
      selected = null;
      for (const row of tbody.querySelectorAll("tr.selected")) row.classList.remove("selected");
      if (tr) tr.focus();
    }

    function openFrom(target) {
      const tr = target.closest("tr.device");
      if (tr) showDetails(byK[Number(tr.dataset.k)]);
    }

    tbody.addEventListener("click", (e) => openFrom(e.target));
    tbody.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        openFrom(e.target);
      }
    });
    $("details-close").addEventListener("click", closeDetails);
    doc.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !panel.hidden) closeDetails();
    });
    more.addEventListener("click", renderMore);
    for (const select of [outcomeSel, statusSel, detailSel]) select.addEventListener("change", applyFilters);
    let timer = 0;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(applyFilters, 150);
    });
    form.addEventListener("submit", (e) => e.preventDefault());
    // The reset event fires before the fields are cleared.
    form.addEventListener("reset", () => setTimeout(applyFilters, 0));

    if (history) {
      $("recent-head").hidden = false;
      drawTrends(history);
    }
    applyFilters();
  })();
}

// The trend charts, drawn by Chart.js (inlined beside this script when the report has a history).
function drawTrends(history) {
  if (typeof Chart === "undefined") return;
  const runs = history.runs;
  const labels = runs.map((r, i) => "#" + (i + 1) + " " + r.started_at.replace("T", " ").slice(0, 16));
  const common = {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    plugins: { legend: { position: "bottom" } },
  };
  const stacked = { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } };
  new Chart(document.getElementById("chart-outcomes"), {
    type: "bar",
    data: {
      labels: labels,
      datasets: [
        { label: "matched", data: runs.map((r) => r.matched), backgroundColor: "#2e7d32" },
        { label: "mismatched", data: runs.map((r) => r.mismatched), backgroundColor: "#c62828" },
        { label: "harness errors", data: runs.map((r) => r.errors), backgroundColor: "#ef6c00" },
      ],
    },
    options: { ...common, scales: stacked },
  });
  const details = [...new Set(runs.flatMap((r) => Object.keys(r.mix)))].sort();
  const palette = ["#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#283593", "#f9a825",
    "#00695c", "#d84315", "#37474f", "#9e9d24", "#5d4037", "#0277bd", "#7b1fa2"];
  new Chart(document.getElementById("chart-mix"), {
    type: "bar",
    data: {
      labels: labels,
      datasets: details.map((name, i) => ({
        label: name, data: runs.map((r) => r.mix[name] || 0), backgroundColor: palette[i % palette.length],
      })),
    },
    options: { ...common, scales: stacked },
  });
  new Chart(document.getElementById("chart-time"), {
    type: "line",
    data: {
      labels: labels,
      datasets: [
        { label: "wall time per device (s)", data: runs.map((r) => r.device_seconds), borderColor: "#1565c0", backgroundColor: "#1565c0" },
        { label: "TPM time per device (s)", data: runs.map((r) => r.device_tpm_seconds), borderColor: "#ef6c00", backgroundColor: "#ef6c00" },
      ],
    },
    options: { ...common, scales: { y: { beginAtZero: true } } },
  });
}
