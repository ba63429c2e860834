// While the editor writes: which characters readers of ISO-2022-JP mail (old phones, carrier
// mail) would not get as written, where they are, and what to write instead. The server checks
// (merumaga.charset.jis_problems), so the list is exactly what sending will do.
(function () {
  "use strict";
  function attach(form) {
    var url = form.getAttribute("data-jis-check-url");
    var box = document.createElement("div");
    box.setAttribute("aria-live", "polite");
    box.className = "jis-check-box";
    form.insertBefore(box, form.firstChild);
    var timer = null;
    function refresh() {
      var body = new URLSearchParams();
      form.querySelectorAll("input[type=text], textarea").forEach(function (field) {
        if (field.name) {
          body.append(field.name, field.value);
        }
      });
      window.merumagaPostForHtml(form, url, body).then(function (html) {
        box.innerHTML = html;
      });
    }
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 500);
    });
    refresh();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-jis-check-url]").forEach(attach);
  });
})();
