// Small behaviour for our pages. Loaded from this site only: the Content-Security-Policy
// allows no inline script and no eval, so htmx trigger filters live here instead.
"use strict";

// The status panel polls only as a fallback: not while the job page's event stream is open
// (the stream triggers its reloads), and not in a tab in the background (it catches up when
// shown again). A poll is a request with no triggering event from an element that polls.
var streamOpen = false;
document.addEventListener("htmx:sseOpen", function () { streamOpen = true; });
document.addEventListener("htmx:sseError", function () { streamOpen = false; });
document.addEventListener("htmx:sseClose", function () { streamOpen = false; });

document.addEventListener("htmx:beforeRequest", function (event) {
  var trigger = event.detail.elt.getAttribute("hx-trigger") || "";
  var poll = trigger.indexOf("every ") !== -1 && !event.detail.requestConfig.triggeringEvent;
  if (poll && (streamOpen || document.hidden)) {
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
