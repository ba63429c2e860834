// Drafts for an editor's field, made by the server: 「要約の下書きを作成」 under an article's
// digest (from the title and body typed so far, offline at once or, when a language model is
// configured and chosen, in the background while this polls for it), and 「前書きの下書きを
// 作成」 under a weekly report's preface (by the model, from the report's articles). The panel
// says how far a background draft got and, when done, shows it: each sentence, clicked, selects
// its passage in the body; unsupported parts are marked. 「この下書きを使う」 puts it in the field
// (to be edited and saved as usual); 「破棄する」 drops it. Nothing is saved until the editor saves.
(function () {
  "use strict";

  // target: the textarea the draft goes into; url: where to POST; fields(): what to send;
  // body: the textarea a sentence's place refers to (or null); origin: a hidden input told
  // which made the draft (or null); withLength: a length to choose; withChoice: offline or LLM.
  function attach(target, url, fields, body, origin, withLength, withChoice) {
    var form = target.form;
    var row = document.createElement("div");
    row.className = "mm mm-digest-tools";
    var make = document.createElement("button");
    make.type = "button";
    make.className = "button";
    make.textContent = form.getAttribute(withLength ? "data-digest-button-label" : "data-preface-button-label") || "";
    row.append(make);
    var chars = null;
    if (withLength) {
      chars = document.createElement("input");
      chars.type = "number";
      chars.min = "40";
      chars.max = "1000";
      chars.step = "10";
      chars.value = "200";
      chars.setAttribute("aria-label", form.getAttribute("data-digest-chars-label") || "");
      chars.className = "mm-digest-chars border rounded-default px-2 py-1";
      row.append(" ", chars, " ", document.createTextNode(form.getAttribute("data-digest-chars-unit") || ""));
    }
    var backend = null;
    if (withChoice) {
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
    var panel = document.createElement("div");
    panel.setAttribute("aria-live", "polite");
    row.append(panel);
    target.parentNode.appendChild(row);
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
      var data = new URLSearchParams(fields());
      if (chars) data.set("chars", chars.value);
      if (backend) data.set("backend", backend.value);
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
      if (sentence && body) {
        body.focus();
        body.setSelectionRange(Number(sentence.dataset.start), Number(sentence.dataset.end));
        return;
      }
      var draft = panel.querySelector(".mm-digest-draft");
      if (event.target.closest("[data-digest-use]") && draft) {
        target.value = panel.querySelector(".mm-digest-text").value;
        if (origin) origin.value = draft.getAttribute("data-origin");
        target.dispatchEvent(new Event("input", { bubbles: true }));
        panel.innerHTML = "";
        target.focus();
      } else if (event.target.closest("[data-digest-discard]")) {
        panel.innerHTML = "";
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var digest = document.querySelector("form textarea[name=digest]");
    if (digest && digest.form.getAttribute("data-digest-draft-url")) {
      var form = digest.form;
      var body = form.querySelector("textarea[name=body]");
      var title = form.querySelector("input[name=title]");
      attach(
        digest,
        form.getAttribute("data-digest-draft-url"),
        function () { return { text: body ? body.value : "", title: title ? title.value : "" }; },
        body,
        form.querySelector("input[name=digest_origin]"),
        true,
        Boolean(form.getAttribute("data-digest-llm"))
      );
    }
    var preface = document.querySelector("form textarea[name=intro]");
    if (preface && preface.form.getAttribute("data-preface-draft-url")) {
      attach(
        preface,
        preface.form.getAttribute("data-preface-draft-url"),
        function () { return {}; },
        null,
        null,
        false,
        false
      );
    }
  });
})();
