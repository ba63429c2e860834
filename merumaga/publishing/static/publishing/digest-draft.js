// 「要約の下書きを作成」 under an article's digest: the server drafts one from the body typed so
// far (publishing.digest, offline); the editor reads it, jumps to each sentence's place in the
// body, and uses it (it replaces the digest, to be edited and saved as usual) or discards it.
// Nothing is saved until the editor saves the article.
(function () {
  "use strict";
  function attach(digest) {
    var form = digest.form;
    var body = form.querySelector("textarea[name=body]");
    var origin = form.querySelector("input[name=digest_origin]");
    var url = form.getAttribute("data-digest-draft-url");
    if (!body || !url) return;
    var row = document.createElement("div");
    row.className = "mm mm-digest-tools";
    var chars = document.createElement("input");
    chars.type = "number";
    chars.min = "40";
    chars.max = "1000";
    chars.step = "10";
    chars.value = "200";
    chars.setAttribute("aria-label", form.getAttribute("data-digest-chars-label") || "");
    chars.className = "mm-digest-chars border rounded-default px-2 py-1";
    var make = document.createElement("button");
    make.type = "button";
    make.className = "button";
    make.textContent = form.getAttribute("data-digest-button-label") || "";
    var panel = document.createElement("div");
    panel.setAttribute("aria-live", "polite");
    row.append(make, " ", chars, " ", document.createTextNode(form.getAttribute("data-digest-chars-unit") || ""), panel);
    digest.parentNode.appendChild(row);
    make.addEventListener("click", function () {
      var data = new URLSearchParams({ text: body.value, chars: chars.value });
      window.merumagaPostForHtml(form, url, data).then(function (html) {
        panel.innerHTML = html;
      });
    });
    panel.addEventListener("click", function (event) {
      var sentence = event.target.closest("[data-start]");
      if (sentence) {
        body.focus();
        body.setSelectionRange(Number(sentence.dataset.start), Number(sentence.dataset.end));
        return;
      }
      var draft = panel.querySelector(".mm-digest-draft");
      if (event.target.closest("[data-digest-use]") && draft) {
        digest.value = panel.querySelector(".mm-digest-text").value;
        if (origin) origin.value = draft.getAttribute("data-origin");
        digest.dispatchEvent(new Event("input", { bubbles: true }));
        panel.innerHTML = "";
        digest.focus();
      } else if (event.target.closest("[data-digest-discard]")) {
        panel.innerHTML = "";
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var digest = document.querySelector("form textarea[name=digest]");
    if (digest) attach(digest);
  });
})();
