// Live preview of a Markdown field in the admin: the server renders it exactly as the site will
// (markdown-it-py + nh3), so what the editor sees is what readers get.
(function () {
  "use strict";
  function attach(textarea) {
    var url = textarea.form.getAttribute("data-preview-url") || "preview/";
    var box = document.createElement("div");
    box.className = "markdown-preview";
    box.setAttribute("aria-live", "polite");
    box.style.cssText = "border:1px solid #ccc;padding:8px 12px;margin:8px 0;max-width:46em;background:#fff;color:#1b1f24";
    textarea.parentNode.appendChild(box);
    var timer = null;
    function refresh() {
      var body = new URLSearchParams({ text: textarea.value });
      window.merumagaPostForHtml(textarea.form, url, body).then(function (html) {
        box.innerHTML = html;
      });
    }
    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    refresh();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea[data-markdown-preview]").forEach(attach);
  });
})();
