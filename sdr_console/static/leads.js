/* The lead list page (sdr_console/templates/leads.html): saved filters (apply, delete, refresh after a save)
   and the CSV export with a progress bar. No inline script anywhere (the CSP forbids it). */
(function () {
  "use strict";

  function csrfToken() {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      return headers["X-CSRF-Token"] || "";
    } catch (e) { return ""; }
  }

  function toast(text, ok) { window.LeadRelay.toast(text, ok); }  // console.js

  function errorText(resp, body) {
    if (body && typeof body.message === "string") { return body.message; }
    return "操作失败（HTTP " + resp.status + "），请稍后重试。";
  }

  /* Saved filters: the dropdown is rebuilt from GET /api/saved-filters (names are text, never markup). */
  function refreshSaved() {
    var select = document.getElementById("saved-filter-select");
    if (!select) { return; }
    fetch("/api/saved-filters", { credentials: "same-origin" })
      .then(function (resp) { return resp.ok ? resp.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        var first = select.options[0];
        select.replaceChildren(first);
        body.items.forEach(function (item) {
          var option = document.createElement("option");
          option.value = item.href;
          option.textContent = item.name;
          option.setAttribute("data-id", String(item.id));
          select.appendChild(option);
        });
      });
  }

  function setupSaved() {
    var select = document.getElementById("saved-filter-select");
    var remove = document.getElementById("saved-filter-delete");
    if (select) {
      select.addEventListener("change", function () {
        if (select.value && select.value.indexOf("/console/leads") === 0) { window.location.assign(select.value); }
      });
    }
    if (remove && select) {
      remove.addEventListener("click", function () {
        var option = select.options[select.selectedIndex];
        var id = option && option.getAttribute("data-id");
        if (!id) { toast("请先在列表中选择要删除的筛选", false); return; }
        if (!window.confirm(remove.getAttribute("data-confirm-text") || "确定删除吗？")) { return; }
        fetch("/api/saved-filters/" + encodeURIComponent(id), {
          method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() }
        }).then(function (resp) {
          return resp.json().catch(function () { return null; }).then(function (body) {
            if (resp.ok) { toast("筛选已删除", true); refreshSaved(); } else { toast(errorText(resp, body), false); }
          });
        });
      });
    }
    document.addEventListener("htmx:afterRequest", function (evt) {
      var elt = evt.detail.elt;
      if (elt && elt.hasAttribute && elt.hasAttribute("data-saved-filters") && evt.detail.successful) { refreshSaved(); }
    });
  }

  /* The export: streamed, counted by its lines against X-Total-Rows, then saved as a file. */
  function setupExport() {
    var button = document.getElementById("export-button");
    if (!button) { return; }
    var panel = document.getElementById("export-panel");
    var bar = document.getElementById("export-bar");
    var progress = document.getElementById("export-progress");
    var status = document.getElementById("export-status");
    var count = document.getElementById("export-count");

    function show(done, total) {
      var pct = total > 0 ? Math.min(100, Math.round(done * 100 / total)) : 100;
      bar.style.width = pct + "%";
      progress.setAttribute("aria-valuenow", String(pct));
      count.textContent = done + " / " + total + " 行";
    }

    function filename(resp) {
      var header = resp.headers.get("Content-Disposition") || "";
      var match = /filename="([^"]+)"/.exec(header);
      return match ? match[1] : "leads.csv";
    }

    button.addEventListener("click", function () {
      button.disabled = true;
      panel.classList.remove("d-none");
      bar.classList.add("progress-bar-animated");
      bar.classList.remove("bg-success", "bg-danger");
      status.textContent = "正在导出……";
      show(0, 0);
      fetch(button.getAttribute("data-export-url"), { credentials: "same-origin" }).then(function (resp) {
        if (!resp.ok) {
          return resp.json().catch(function () { return null; }).then(function (body) {
            throw new Error(errorText(resp, body));
          });
        }
        var total = parseInt(resp.headers.get("X-Total-Rows") || "0", 10) || 0;
        var reader = resp.body.getReader();
        var chunks = [];
        var lines = 0;
        function pump() {
          return reader.read().then(function (step) {
            if (step.done) { return; }
            chunks.push(step.value);
            for (var i = 0; i < step.value.length; i++) { if (step.value[i] === 10) { lines++; } }
            show(Math.min(total, Math.max(0, lines - 1)), total);  // the first line is the header row
            return pump();
          });
        }
        return pump().then(function () {
          show(total, total);
          var url = URL.createObjectURL(new Blob(chunks, { type: "text/csv;charset=utf-8" }));
          var link = document.createElement("a");
          link.href = url;
          link.download = filename(resp);
          document.body.appendChild(link);
          link.click();
          link.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
          bar.classList.remove("progress-bar-animated");
          bar.classList.add("bg-success");
          status.textContent = "导出完成，共 " + total + " 行";
          panel.setAttribute("data-done", "true");
        });
      }).catch(function (err) {
        bar.classList.remove("progress-bar-animated");
        bar.classList.add("bg-danger");
        status.textContent = "导出失败：" + err.message;
      }).finally(function () { button.disabled = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSaved();
    setupExport();
  });
})();
