/* The mobile inbox's one script (the CSP forbids inline script): the lead page's 接受 / 退回 and content sharing,
   which call the console's JSON API with the session's CSRF token (<body data-csrf>), and the chat toolbar page,
   which asks WeCom's JS-SDK (global wx, loaded by the page from Tencent) for the chat's external contact.
   Outcomes are shown as a WeUI toast; texts are set as text, never as markup. */
(function () {
  "use strict";

  var toastTimer = null;

  function toast(text, ok) {
    var box = document.getElementById("lr-toast");
    if (!box) { return; }
    box.querySelector("[data-toast-text]").textContent = text;
    box.querySelector("[data-toast-icon]").className =
      (ok ? "weui-icon-success-no-circle" : "weui-icon-warn") + " weui-icon_toast";
    box.setAttribute("data-ok", ok ? "true" : "false");
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, ok ? 1500 : 3000);
  }

  function api(method, url, body) {
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    var csrf = document.body.getAttribute("data-csrf");
    if (csrf) { headers["X-CSRF-Token"] = csrf; }
    return fetch(url, { method: method, headers: headers, credentials: "same-origin",
                        body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (resp) {
        return resp.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!resp.ok) {
            var message = data && typeof data.message === "string" ? data.message
              : "操作失败（HTTP " + resp.status + "），请稍后重试。";
            throw new Error(message);
          }
          return data;
        });
      });
  }

  function busy(button, on) {
    button.disabled = on;
    button.classList.toggle("weui-btn_loading", on);
  }

  /* ---- the lead page ---------------------------------------------------------------------------------- */

  function leadPage(root) {
    var leadId = root.getAttribute("data-lead-id");
    var dialog = document.getElementById("lr-return");

    var accept = root.querySelector("[data-accept]");
    if (accept) {
      accept.addEventListener("click", function () {
        busy(accept, true);
        api("POST", "/api/leads/" + leadId + "/accept", {}).then(function () {
          toast("已接受", true);
          setTimeout(function () { window.location.reload(); }, 1200);
        }).catch(function (err) { busy(accept, false); toast(err.message, false); });
      });
    }

    function openDialog(open) {
      if (!dialog) { return; }
      dialog.hidden = !open;
      document.body.classList.toggle("lr-m-locked", open);
    }
    root.querySelectorAll("[data-return-open]").forEach(function (b) {
      b.addEventListener("click", function () { openDialog(true); });
    });
    root.querySelectorAll("[data-return-close]").forEach(function (b) {
      b.addEventListener("click", function () { openDialog(false); });
    });
    // The card's 退回 button opens /m/leads/{id}?return=1 (bot/handoff/cards.py): the dialog opens at once when
    // the lead can still be decided (the dialog is there only then). The flag then leaves the address, so a
    // reload shows the page itself.
    var params = new URLSearchParams(window.location.search);
    if (dialog && params.get("return") === "1") {
      openDialog(true);
      params.delete("return");
      var query = params.toString();
      history.replaceState(history.state, "", window.location.pathname + (query ? "?" + query : "") +
                           window.location.hash);
    }
    var confirm = root.querySelector("[data-return-confirm]");
    if (confirm) {
      confirm.addEventListener("click", function () {
        var chosen = dialog.querySelector("input[name=reason]:checked");
        if (!chosen) { toast("请选择退回原因", false); return; }
        var text = dialog.querySelector("textarea[name=text]").value.trim();
        busy(confirm, true);
        api("POST", "/api/leads/" + leadId + "/return", { reason: chosen.value, text: text }).then(function () {
          openDialog(false);
          toast("已退回", true);
          setTimeout(function () { window.location.href = "/m/?tab=returned"; }, 1200);
        }).catch(function (err) { busy(confirm, false); toast(err.message, false); });
      });
    }

    root.querySelectorAll("[data-share]").forEach(function (button) {
      button.addEventListener("click", function () {
        var contentId = button.getAttribute("data-share");
        busy(button, true);
        api("POST", "/api/leads/" + leadId + "/content-links", { content_id: contentId }).then(function (data) {
          busy(button, false);
          var box = root.querySelector('[data-link-for="' + CSS.escape(contentId) + '"]');
          box.querySelector("input").value = data.url;
          box.hidden = false;
          copy(data.url, box.querySelector("input"));
        }).catch(function (err) { busy(button, false); toast(err.message, false); });
      });
    });
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = button.parentNode.querySelector("input");
        copy(input.value, input);
      });
    });
  }

  function copy(text, input) {
    function fallback() {
      input.focus();
      input.select();
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      toast(done ? "链接已复制，可粘贴给客户" : "请长按链接手动复制", done);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        toast("链接已复制，可粘贴给客户", true);
      }, fallback);
    } else {
      fallback();
    }
  }

  /* ---- the chat toolbar page -------------------------------------------------------------------------- */

  function chatFailed(page, title, desc) {
    page.querySelector("[data-chat-title]").textContent = title;
    page.querySelector("[data-chat-desc]").textContent = desc;
    var loading = page.querySelector("[data-chat-loading]");
    if (loading) { loading.hidden = true; }
    page.setAttribute("data-chat-state", "failed");
  }

  function chatPage(page) {
    if (typeof window.wx === "undefined") {
      chatFailed(page, "请在企业微信中打开", "未检测到企业微信 JS-SDK：请从与客户的聊天工具栏打开本页面。");
      return;
    }
    var url = window.location.href.split("#")[0];
    api("GET", "/m/api/jssdk-signature?url=" + encodeURIComponent(url)).then(function (cfg) {
      window.wx.agentConfig({
        corpid: cfg.corpid, agentid: cfg.agentid, timestamp: cfg.timestamp, nonceStr: cfg.nonceStr,
        signature: cfg.signature, jsApiList: cfg.jsApiList,
        success: function () {
          window.wx.invoke("getCurExternalContact", {}, function (res) {
            if (res && res.err_msg === "getCurExternalContact:ok" && res.userId) {
              window.location.replace("/m/chat/lead?external_userid=" + encodeURIComponent(res.userId));
            } else {
              chatFailed(page, "无法识别客户", "请在与外部联系人的单聊中打开聊天工具栏。");
            }
          });
        },
        fail: function (res) {
          chatFailed(page, "企业微信授权失败", (res && res.errMsg) || "JS-SDK 签名校验失败，请稍后重试。");
        }
      });
    }).catch(function (err) { chatFailed(page, "无法识别客户", err.message); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var lead = document.querySelector("[data-lead-id]");
    if (lead) { leadPage(lead); }
    var chat = document.querySelector("[data-chat]");
    if (chat) { chatPage(chat); }
  });
})();
