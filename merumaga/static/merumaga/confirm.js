// A button that acts on many readers asks first: its data-confirm holds the question. (A
// script file, not an onclick attribute: the admin's Content-Security-Policy runs no inline
// handlers.)
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });
})();
