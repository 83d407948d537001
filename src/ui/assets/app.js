// dag web UI: progressive enhancement of server-rendered pages. Every page
// works without this file; with it, task states and logs follow live over
// server-sent events. Text from the server is only ever set through
// textContent or attributes, never parsed as HTML from strings.
"use strict";

(function () {
  const STATUS_WORDS = {
    up_to_date: "up to date",
    upstream_failed: "upstream failed",
  };
  const word = (status) => STATUS_WORDS[status] || status;

  function setTaskState(root, taskId, state) {
    for (const el of root.querySelectorAll("[data-task]")) {
      if (el.getAttribute("data-task") !== taskId) continue;
      el.setAttribute("data-status", state.status);
      const label = el.querySelector("[data-role=state]");
      if (label) label.textContent = word(state.status);
      const reason = el.querySelector("[data-role=reason]");
      if (reason) reason.textContent = state.reason || "";
      const title = el.querySelector("title");
      if (title) {
        title.textContent = taskId + ": " + word(state.status) + (state.reason ? " — " + state.reason : "");
      }
    }
    refreshLevelCounts(root);
  }

  function refreshLevelCounts(root) {
    for (const level of root.querySelectorAll("[data-level-counts]")) {
      const n = level.getAttribute("data-level-counts");
      const counts = {};
      for (const chip of root.querySelectorAll('[data-level="' + n + '"]')) {
        const s = chip.getAttribute("data-status") || "pending";
        counts[s] = (counts[s] || 0) + 1;
      }
      const parts = Object.keys(counts).sort().map((s) => counts[s] + " " + word(s));
      if (parts.length) level.textContent = parts.join(", ");
    }
  }

  function setRunState(root, status, finished) {
    for (const el of root.querySelectorAll("[data-run-status]")) {
      el.setAttribute("data-status", status);
      el.textContent = word(status);
    }
    for (const el of root.querySelectorAll("[data-live-note]")) {
      el.textContent = finished ? "finished" : "following live";
    }
  }

  // Reloads the parts of the page marked data-refresh (metrics, outputs,
  // timeline) once a run ends, keeping the document itself.
  // Only the newest request's answer is applied: an older one finishing
  // later would put back a state the run has left.
  let refreshes = 0;
  async function refreshDetails() {
    const mine = ++refreshes;
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const text = await response.text();
      if (mine !== refreshes) return;
      const doc = new DOMParser().parseFromString(text, "text/html");
      for (const fresh of doc.querySelectorAll("[data-refresh]")) {
        const current = document.getElementById(fresh.id);
        if (current) current.replaceWith(document.importNode(fresh, true));
      }
    } catch (e) {
      // The page as it is stays correct up to the last event.
    }
  }

  function followRun(container) {
    const runId = container.getAttribute("data-live-run");
    const source = new EventSource("/runs/" + encodeURIComponent(runId) + "/events");
    // A page rendered before the run started reloads once it has.
    const reloadOnStart = container.hasAttribute("data-reload-on-start");
    const started = () => {
      if (!reloadOnStart) return false;
      source.close();
      location.reload();
      return true;
    };
    source.addEventListener("snapshot", (event) => {
      if (started()) return;
      const data = JSON.parse(event.data);
      for (const [task, state] of Object.entries(data.tasks)) setTaskState(container, task, state);
      if (data.status) setRunState(container, data.status, data.finished);
      // Finished between the page and the stream: draw the end.
      if (data.finished) finish();
    });
    // When tasks settle, the timeline and task table (drawn by the server)
    // are fetched again, at most once a second.
    let refreshing = null;
    let ended = false;
    const refreshSoon = () => {
      if (refreshing || ended) return;
      refreshing = setTimeout(() => { refreshing = null; refreshDetails(); }, 1000);
    };
    const finish = () => {
      source.close();
      ended = true;
      clearTimeout(refreshing);
      refreshDetails();
    };
    source.addEventListener("task", (event) => {
      const data = JSON.parse(event.data);
      setTaskState(container, data.task_id, data);
      refreshSoon();
    });
    source.addEventListener("run", (event) => {
      if (started()) return;
      const data = JSON.parse(event.data);
      setRunState(container, data.status, data.finished);
      if (data.finished) finish();
    });
    source.addEventListener("end", () => source.close());
  }

  function followDag(container) {
    const dag = container.getAttribute("data-live-dag");
    const source = new EventSource("/dags/" + encodeURIComponent(dag) + "/events");
    const reset = (runId) => {
      container.setAttribute("data-run", runId);
      for (const el of container.querySelectorAll("[data-task]")) {
        setTaskState(container, el.getAttribute("data-task"), { status: "pending" });
      }
      for (const link of container.querySelectorAll("[data-run-link]")) {
        link.setAttribute("href", "/runs/" + encodeURIComponent(runId));
        link.textContent = runId;
      }
    };
    source.addEventListener("run", (event) => {
      const data = JSON.parse(event.data);
      if (data.run_id !== container.getAttribute("data-run") && !data.finished) reset(data.run_id);
      if (data.run_id === container.getAttribute("data-run")) setRunState(container, data.status, data.finished);
    });
    source.addEventListener("task", (event) => {
      const data = JSON.parse(event.data);
      if (data.run_id === container.getAttribute("data-run")) setTaskState(container, data.task_id, data);
    });
  }

  function followLog(pre) {
    const source = new EventSource(pre.getAttribute("data-log-stream"));
    const note = document.querySelector("[data-log-note]");
    source.addEventListener("chunk", (event) => {
      const data = JSON.parse(event.data);
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(data.text));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", (event) => {
      source.close();
      if (note) note.textContent = "attempt finished: " + JSON.parse(event.data).status;
      pre.setAttribute("data-finished", "true");
    });
  }

  function init() {
    for (const el of document.querySelectorAll("[data-live-run]")) followRun(el);
    for (const el of document.querySelectorAll("[data-live-dag]")) followDag(el);
    for (const el of document.querySelectorAll("[data-log-stream]")) followLog(el);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
