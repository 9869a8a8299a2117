// Small behaviour for our pages. Loaded from this site only: the Content-Security-Policy
// allows no inline script and no eval, so htmx trigger filters live here instead.
"use strict";

// A tab in the background does not poll: its status panel catches up when shown again.
document.addEventListener("htmx:beforeRequest", function (event) {
  var trigger = event.detail.elt.getAttribute("hx-trigger") || "";
  if (document.hidden && trigger.indexOf("every ") === 0) {
    event.preventDefault();
  }
});

// Forms that ask before they act: <form data-confirm="Really?">.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
}, true);
