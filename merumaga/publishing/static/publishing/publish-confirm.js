// Publishing with 「公開時に購読者へ通知する」 mails readers at once: say how many, and ask first.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-notify-confirm]");
    if (!button || !button.form) {
      return;
    }
    var notify = button.form.querySelector("input[name=notify_subscribers]");
    if (notify && notify.checked && !window.confirm(button.getAttribute("data-notify-confirm"))) {
      event.preventDefault();
    }
  });
})();
