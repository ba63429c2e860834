// Live preview of a Markdown field in the admin: the server renders it exactly as the site will
// (markdown-it-py + nh3), and the frame shows it with the public site's stylesheet, as the
// article page does, so what the editor sees is what readers get. The frame runs no script.
(function () {
  "use strict";
  function page(html, stylesheet) {
    return '<!doctype html><html lang="ja"><head><meta charset="utf-8">' +
      '<link rel="stylesheet" href="' + stylesheet + '"></head>' +
      '<body><main id="main"><article><div class="article-body">' + html +
      "</div></article></main></body></html>";
  }
  function attach(textarea) {
    var form = textarea.form;
    var url = form.getAttribute("data-preview-url") || "preview/";
    var stylesheet = form.getAttribute("data-site-css") || "";
    var frame = document.createElement("iframe");
    frame.className = "markdown-preview";
    frame.title = textarea.getAttribute("aria-label") || "preview";
    frame.setAttribute("sandbox", "allow-same-origin");  // readable for its height, no script
    frame.style.cssText = "display:block;width:100%;max-width:50em;border:1px solid #ccc;margin:8px 0;min-height:4em;background:#fff";
    frame.addEventListener("load", function () {
      var body = frame.contentDocument && frame.contentDocument.documentElement;
      if (body) frame.style.height = body.scrollHeight + 4 + "px";
    });
    textarea.parentNode.appendChild(frame);
    var timer = null;
    function refresh() {
      var body = new URLSearchParams({ text: textarea.value });
      window.merumagaPostForHtml(form, url, body).then(function (html) {
        frame.srcdoc = page(html, stylesheet);
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
