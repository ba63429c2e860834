// POST a form's text to one of the admin's own views and get back the HTML it renders: the live
// Markdown preview and the ISO-2022-JP check share this, with the form's CSRF token.
window.merumagaPostForHtml = function (form, url, body) {
  "use strict";
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
  return fetch(url, {
    method: "POST",
    body: body,
    headers: { "X-CSRFToken": csrf ? csrf.value : "" },
    credentials: "same-origin",
  }).then(function (response) { return response.ok ? response.text() : ""; });
};
