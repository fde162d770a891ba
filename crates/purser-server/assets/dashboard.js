// Purser dashboard: the little the pages need from script. Everything works
// without it; with it, sign-in learns the viewer's time zone (so times and the
// chart's days are the viewer's own) and destructive forms ask to confirm.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var offset = String(-new Date().getTimezoneOffset());
  document.querySelectorAll("input.zone-offset").forEach(function (input) {
    input.value = offset;
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
});
