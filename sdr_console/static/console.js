/* The console's one behaviour script: forms and buttons that call the JSON API (hx-post/put/patch/delete with
   hx-ext="json-enc" and hx-swap="none") get their outcome shown here, so no page needs inline script (the CSP
   forbids it).

   On the element that makes the request:
     data-refresh="#a, #b"   on success, sends the event "refresh" to these elements (give them
                             hx-get="..." hx-trigger="refresh" to re-render their HTML fragment);
     data-success="已保存"    on success, a message (in the element's data-feedback target or a toast);
     data-feedback="#id"     where messages go (else a toast at the page's corner);
     data-reset              on success, the form is cleared.
   On failure the API's one JSON error shape ({"message": ...}) is shown; a 401 sends the browser to sign in. */
(function () {
  "use strict";

  function toastArea() {
    var area = document.getElementById("lr-toasts");
    if (!area) {
      area = document.createElement("div");
      area.id = "lr-toasts";
      area.className = "lr-toasts";
      area.setAttribute("aria-live", "polite");
      document.body.appendChild(area);
    }
    return area;
  }

  function toast(text, ok) {
    var box = document.createElement("div");
    box.className = "alert py-2 px-3 mb-2 " + (ok ? "alert-success" : "alert-danger");
    box.setAttribute("role", ok ? "status" : "alert");
    box.textContent = text;  // text, never markup
    toastArea().appendChild(box);
    setTimeout(function () { box.remove(); }, ok ? 3000 : 8000);
  }

  // For the pages' own scripts (leads.js): one way to tell the user how a call went.
  window.LeadRelay = { toast: toast };

  function show(elt, text, ok) {
    var selector = elt.getAttribute("data-feedback");
    var target = selector ? document.querySelector(selector) : null;
    if (!target) { toast(text, ok); return; }
    var box = document.createElement("div");
    box.className = "alert py-2 px-3 mb-2 " + (ok ? "alert-success" : "alert-danger");
    box.setAttribute("role", ok ? "status" : "alert");
    box.textContent = text;  // text, never markup: messages may quote what a prospect wrote
    target.replaceChildren(box);
  }

  function errorText(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && typeof body.message === "string") { return body.message; }
    } catch (e) { /* not JSON: fall through */ }
    return "操作失败（HTTP " + xhr.status + "），请稍后重试。";
  }

  document.addEventListener("htmx:afterRequest", function (evt) {
    var elt = evt.detail.elt;
    var xhr = evt.detail.xhr;
    if (!elt || !xhr || !elt.closest) { return; }
    var form = elt.closest("form") || elt;
    var source = elt.hasAttribute("data-refresh") || elt.hasAttribute("data-success") ? elt : form;
    if (!source.hasAttribute("data-refresh") && !source.hasAttribute("data-success") &&
        !source.hasAttribute("data-feedback")) { return; }
    if (evt.detail.successful) {
      if (source.hasAttribute("data-success")) { show(source, source.getAttribute("data-success"), true); }
      if (source.hasAttribute("data-reset") && form.reset) { form.reset(); }
      var refresh = source.getAttribute("data-refresh");
      if (refresh) {
        document.querySelectorAll(refresh).forEach(function (target) { htmx.trigger(target, "refresh"); });
      }
    } else if (xhr.status === 401) {
      window.location.assign("/console/login?next=" + encodeURIComponent(window.location.pathname));
    } else {
      show(source, errorText(xhr), false);
    }
  });

  /* Pages may ask for a confirmation before a destructive call: data-confirm-text="确定要……吗？" on the element
     (htmx's own hx-confirm works too; this one keeps the wording in one place). */
  document.addEventListener("htmx:confirm", function (evt) {
    var text = evt.detail.elt && evt.detail.elt.getAttribute("data-confirm-text");
    if (!text) { return; }
    evt.preventDefault();
    if (window.confirm(text)) { evt.detail.issueRequest(true); }
  });
})();
