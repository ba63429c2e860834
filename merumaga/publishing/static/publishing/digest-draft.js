// 「要約の下書きを作成」 under an article's digest: the server drafts one from the title and body
// typed so far, offline at once or, when a language model is configured and chosen, in the
// background while this polls for it (the panel says how far it got). The editor reads the
// draft, jumps to each sentence's place in the body, and uses it (it replaces the digest, to be
// edited and saved as usual) or discards it. Nothing is saved until the editor saves the article.
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
    row.append(make, " ", chars, " ", document.createTextNode(form.getAttribute("data-digest-chars-unit") || ""));
    var backend = null;
    if (form.getAttribute("data-digest-llm")) {
      backend = document.createElement("select");
      backend.className = "mm-digest-backend border rounded-default px-2 py-1";
      backend.setAttribute("aria-label", form.getAttribute("data-digest-backend-label") || "");
      [["llm", "data-digest-llm-label"], ["offline", "data-digest-offline-label"]].forEach(function (choice) {
        var option = document.createElement("option");
        option.value = choice[0];
        option.textContent = form.getAttribute(choice[1]) || choice[0];
        backend.appendChild(option);
      });
      row.append(" ", backend);
    }
    row.append(panel);
    digest.parentNode.appendChild(row);
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
    var failed = form.getAttribute("data-digest-failed-label") || "";
    var waiting = null;

    function show(request) {
      return fetch(request.url, request.init).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      }).then(function (html) {
        panel.innerHTML = html;
        var pending = panel.querySelector("[data-poll]");
        if (pending) {
          waiting = window.setTimeout(function () {
            show({ url: pending.getAttribute("data-poll"), init: { credentials: "same-origin" } });
          }, 1000);
        } else {
          make.disabled = false;
        }
      }).catch(function (error) {
        make.disabled = false;
        panel.innerHTML = "";
        var message = document.createElement("p");
        message.className = "mm-digest-notice warning";
        message.setAttribute("role", "alert");
        message.textContent = failed + " (" + error.message + ")";
        panel.appendChild(message);
      });
    }

    make.addEventListener("click", function () {
      var title = form.querySelector("input[name=title]");
      var data = new URLSearchParams({
        text: body.value,
        title: title ? title.value : "",
        chars: chars.value,
        backend: backend ? backend.value : "offline",
      });
      window.clearTimeout(waiting);
      make.disabled = true;
      show({
        url: url,
        init: {
          method: "POST",
          body: data,
          headers: { "X-CSRFToken": csrf ? csrf.value : "" },
          credentials: "same-origin",
        },
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
