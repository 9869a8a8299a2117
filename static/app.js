// Small behaviour for our pages. Loaded from this site only: the Content-Security-Policy
// allows no inline script and no eval, so htmx trigger filters live here instead.
"use strict";

// The status panel polls only as a fallback: not while the job page's event stream is open
// (the stream triggers its reloads), and not in a tab in the background (it catches up when
// shown again). A poll is a request with no triggering event from an element that polls.
var streamOpen = false;
document.addEventListener("htmx:sseOpen", function (event) {
  streamOpen = true;
  listenForStatus(event.detail.source);
});
document.addEventListener("htmx:sseError", function () { streamOpen = false; });
document.addEventListener("htmx:sseClose", function () { streamOpen = false; });

document.addEventListener("htmx:beforeRequest", function (event) {
  var trigger = event.detail.elt.getAttribute("hx-trigger") || "";
  var poll = trigger.indexOf("every ") !== -1 && !event.detail.requestConfig.triggeringEvent;
  if (poll && (streamOpen || document.hidden)) {
    event.preventDefault();
  }
});

// The stream sends an event each time the job's status changes (up to twice a second while a
// render runs). The panel reloads at most once a second, and always once more after the last
// event, so the final state is never skipped: htmx's own "throttle" drops trailing events.
var RELOAD_EVERY_MS = 1000;
var lastReload = 0;
var reloadTimer = null;
var listening = new WeakSet();

// A reload asked for while the panel's own request is under way waits for it and then goes to
// the panel in the page by then: sent meanwhile, htmx would queue it on the panel being replaced
// and its answer would go nowhere (the last change would never show). The request's end is taken
// from the request itself: when another answer (a button's) replaced the panel first, htmx has
// no element left to tell. The new panel is ready once htmx has settled it (20 ms).
var panelRequest = null;  // the panel's own request under way, and when it went out
var panelRequestSince = 0;
var reloadAfterRequest = false;
document.addEventListener("htmx:beforeSend", function (event) {
  if (event.detail.elt.id !== "status-panel") {
    return;
  }
  var xhr = event.detail.xhr;
  panelRequest = xhr;
  panelRequestSince = Date.now();
  xhr.addEventListener("loadend", function () {
    if (panelRequest !== xhr) {
      return;
    }
    panelRequest = null;
    if (reloadAfterRequest) {
      reloadAfterRequest = false;
      setTimeout(reloadStatusPanel, 50);
    }
  });
});

// An answer for the status panel that was asked for before the panel was replaced (a reload
// in flight when an upload's or a button's answer came first, or the other way round) still
// names the old panel, now out of the page. htmx would swap it into that detached panel, and its
// hx-preserve step would take every video out of the page with it (it looks them up by id in
// the document). Such an answer goes to the panel in the page instead, unless that one already
// shows a newer version. htmx tells only the target itself (the event does not bubble out of a
// detached element), so each panel a request aims at gets this listener.
var guardedPanels = new WeakSet();
function toPanelInPage(event) {
  var target = event.detail.target;
  if (!target || target.isConnected) {
    return;
  }
  var current = document.getElementById("status-panel");
  var shown = current && current.getAttribute("data-version");
  var answer = /data-version="(\d+)"/.exec(event.detail.serverResponse || "");
  if (!current || (shown && answer && Number(answer[1]) < Number(shown))) {
    event.detail.shouldSwap = false;
    return;
  }
  event.detail.target = current;
}
document.addEventListener("htmx:beforeSend", function (event) {
  var target = event.detail.target;
  if (target && target.id === "status-panel" && !guardedPanels.has(target)) {
    guardedPanels.add(target);
    target.addEventListener("htmx:beforeSwap", toPanelInPage);
  }
});

// A lesson's attempts opened by the user stay open across the panel's reloads (htmx keeps the
// focus on a control with the same id; an open <details> it does not keep).
// The attempts lists the user opened stay open across the panel's swaps (kept as they are
// opened and closed: two swaps close together would otherwise read the second from the first's
// new, still closed, panel).
var openLists = new Set();
document.addEventListener("toggle", function (event) {
  var details = event.target;
  if (details.id && details.closest && details.closest("#status-panel")) {
    if (details.open) openLists.add(details.id);
    else if (details.isConnected) openLists.delete(details.id);
  }
}, true);

// The status the panel showed last, for the notes of finished work: compared at each new panel,
// whatever brought it (a reload, or an answer that went to the panel in the page).
var shownStatus = null;

// The control last pressed in the panel (a form's button), for the focus once its answer is in.
var pressed = null;
document.addEventListener("htmx:beforeRequest", function (event) {
  var elt = event.detail.elt;
  var panel = document.getElementById("status-panel");
  if (panel && elt && elt.tagName === "FORM" && panel.contains(elt)) {
    var row = elt.closest("[data-lesson]");  // a lesson's row, or its render's progress row
    pressed = {lesson: row ? row.getAttribute("data-lesson") : null, at: Date.now()};
  }
});

// An action's note ("render queued.", "Stopping the render…") is about work that was going on:
// once nothing is (the job leaves "generating"), it is no longer true and goes, unless it came
// with that very change (it says what just happened). Warnings and errors stay until the next
// action replaces them.
function stampNotes() {  // the notes shown so far (one an answer brings is not stamped yet)
  document.querySelectorAll("#flashes .flash-info:not([data-since])").forEach(function (note) {
    note.setAttribute("data-since", String(Date.now()));
  });
}
function dropNotesOfFinishedWork(panel) {
  // A note about one render ("Stopping the render of …") goes once the panel no longer shows
  // that render under way, though other lessons still render.
  document.querySelectorAll("#flashes .flash-info[data-since][data-render]").forEach(function (note) {
    var row = '.progress-row[data-render-id="' + CSS.escape(note.getAttribute("data-render")) + '"]';
    if (!panel.querySelector(row)) note.remove();
  });
  var status = panel.getAttribute("data-status");
  var ended = shownStatus === "generating" && status !== "generating";
  shownStatus = status;
  if (!ended) return;
  document.querySelectorAll("#flashes .flash-info[data-since]").forEach(function (note) {
    note.remove();
  });
}

document.addEventListener("focusin", function (event) {  // the user has gone elsewhere
  var panel = document.getElementById("status-panel");
  if (pressed && panel && !panel.contains(event.target)) pressed = null;
});

// The control pressed in the panel went with it (a Generate button becomes "rendering…"): the
// focus goes to its lesson's row, or the panel's summary, not to the top of the page.
function keepFocusNear(panel) {
  var lost = !document.activeElement || document.activeElement === document.body;
  if (!pressed || Date.now() - pressed.at > 5000 || !lost) {
    return;
  }
  var lesson = pressed.lesson;  // kept a while: the next panel may be a reload, the answer after it
  var row = lesson && panel.querySelector('tr[data-lesson="' + CSS.escape(lesson) + '"]');
  // The row's own next action (Cancel for the render just queued), else the row: not the links
  // at its start (a second Enter left the page for the lesson's files).
  var target = (row && row.querySelector(".actions-cell button")) || row || panel.querySelector(".summary");
  if (target) {
    if (!target.matches("button, a")) target.setAttribute("tabindex", "-1");
    target.focus({preventScroll: true});  // the page stays where the user was
  }
}

document.addEventListener("htmx:load", function (event) {
  var panel = event.target;
  if (!panel || panel.id !== "status-panel") {
    return;
  }
  announceStatus();
  openLists.forEach(function (id) {
    var details = document.getElementById(id);
    if (details) details.open = true;
  });
  keepFocusNear(panel);
  dropNotesOfFinishedWork(panel);  // those shown before this panel came: not one it brought
  stampNotes();
});

// The job's summary line, said by the page's live region when it changes (not the percentages
// of a progress bar: the panel is not a live region, it would be read out every second).
function announceStatus() {
  var announcer = document.getElementById("status-announcer");
  var summary = document.querySelector("#status-panel .summary");
  if (!announcer || !summary) return;
  var text = summary.textContent.replace(/\s+/g, " ").trim();
  if (announcer.dataset.last === undefined) {  // the page as loaded: nothing has changed yet
    announcer.dataset.last = text;
  } else if (text !== announcer.dataset.last) {
    announcer.dataset.last = text;
    announcer.textContent = text;
  }
}
document.addEventListener("DOMContentLoaded", function () {
  announceStatus();
  stampNotes();
  var panel = document.getElementById("status-panel");
  shownStatus = panel ? panel.getAttribute("data-status") : null;
});

function reloadStatusPanel() {
  reloadTimer = null;
  if (panelRequest !== null && Date.now() - panelRequestSince < 10000) {  // 10 s: one lost its end
    reloadAfterRequest = true;
    return;
  }
  lastReload = Date.now();
  var panel = document.getElementById("status-panel");
  if (panel) {
    htmx.trigger(panel, "status-changed");
  }
}

function listenForStatus(source) {
  if (!source || listening.has(source)) {
    return;  // the browser reopened the same stream: it already has our listener
  }
  listening.add(source);
  source.addEventListener("status", function (event) {
    // An event of a version the panel already shows (the stream's first, as the page was made
    // from it) needs no reload: nor a click on the panel's buttons lost to its replacement.
    var panel = document.getElementById("status-panel");
    var shown = panel && panel.getAttribute("data-version");
    if (shown !== null && shown !== "" && event.lastEventId !== "" && Number(event.lastEventId) <= Number(shown)) {
      return;
    }
    if (reloadTimer === null) {
      reloadTimer = setTimeout(reloadStatusPanel, Math.max(0, lastReload + RELOAD_EVERY_MS - Date.now()));
    }
  });
}

// Forms that ask before they act: <form data-confirm="Really?">.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
}, true);

// Lesson package uploads (the job page) and a lesson's files (its files page): refuse a file over
// the limit before sending it, show the upload's progress, and say why when the server refuses it.
function uploadParts(form) {
  return {
    bar: form.querySelector(".upload-progress"),
    error: form.querySelector(".upload-error"),
    done: form.querySelector(".upload-done"),
  };
}

// The sentence of the server's error page (error.html), as text; "" when there is none.
function serverMessage(xhr) {
  if (!xhr || !xhr.responseText || !/html/.test(xhr.getResponseHeader("Content-Type") || "")) {
    return "";
  }
  var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
  var message = page.querySelector(".error-message");
  return message ? message.textContent.trim() : "";
}

function showUploadError(form, message) {
  var parts = uploadParts(form);
  parts.bar.hidden = true;
  parts.done.hidden = true;
  parts.error.textContent = message;
  parts.error.hidden = false;
  parts.error.focus();  // said where the eyes (and a screen reader) are, not only at the page's top
}

// The sentence the panel's answer puts in the page's messages (#flashes), as text.
function panelNotice(xhr) {
  if (!xhr || !xhr.responseText) {
    return "";
  }
  var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
  var notice = page.querySelector("#flashes .flash");
  return notice ? notice.textContent.trim() : "";
}

document.addEventListener("htmx:beforeRequest", function (event) {
  var form = event.detail.elt;
  if (!form.classList || !form.classList.contains("upload-form")) {
    if (form.tagName === "FORM") {  // another action: the upload's sentence is about the one before
      document.querySelectorAll(".upload-done").forEach(function (done) { done.hidden = true; });
    }
    return;
  }
  var file = form.querySelector("input[type=file]").files[0];
  var most = Number(form.getAttribute("data-max-bytes"));
  if (file && most && file.size > most) {
    event.preventDefault();
    showUploadError(form, form.getAttribute("data-too-large") ||
      "This file is larger than the " + Math.round(most / 1048576) + " MiB a package may have.");
    return;
  }
  var parts = uploadParts(form);
  parts.error.hidden = true;
  parts.done.hidden = true;
  parts.bar.value = 0;
  parts.bar.hidden = false;
});

document.addEventListener("htmx:xhr:progress", function (event) {
  var form = event.target;
  if (form.classList && form.classList.contains("upload-form") && event.detail.lengthComputable) {
    uploadParts(form).bar.value = Math.round((100 * event.detail.loaded) / event.detail.total);
  }
});

document.addEventListener("htmx:afterRequest", function (event) {
  var form = event.detail.elt;
  if (!form.classList || !form.classList.contains("upload-form")) {
    return;
  }
  if (event.detail.successful && form.classList.contains("file-upload")) {
    return;  // the page comes back whole (below)
  } else if (event.detail.successful) {
    var parts = uploadParts(form);
    parts.bar.hidden = true;
    parts.done.textContent = panelNotice(event.detail.xhr);
    parts.done.hidden = !parts.done.textContent;
    form.reset();
    if (!parts.done.hidden) parts.done.focus();  // the button pressed is disabled meanwhile
  } else {
    var xhr = event.detail.xhr;
    var status = xhr && xhr.status;
    var said = serverMessage(xhr);
    showUploadError(form, said || (status === 413
      ? "The package is too large."
      : "The upload did not go through" + (status ? " (" + status + ")" : "") + ". Try again."));
  }
});

// A lesson's file sent (lesson_files.html): the page came back whole with its message at the top,
// where the keyboard and a screen reader go on from.
document.addEventListener("htmx:afterSettle", function (event) {
  var source = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (!source || !source.classList || !source.classList.contains("file-upload")) {
    return;
  }
  var note = document.querySelector("#flashes .flash");
  if (note) {
    note.setAttribute("tabindex", "-1");
    note.focus();
  }
});

// A form that asks before its edits are left behind (the words page): <form data-warn-unsaved>.
document.addEventListener("input", function (event) {
  var form = event.target.closest && event.target.closest("form[data-warn-unsaved]");
  if (form) form.setAttribute("data-edited", "");
});
document.addEventListener("submit", function (event) {
  if (!event.defaultPrevented && event.target.removeAttribute) event.target.removeAttribute("data-edited");
});
window.addEventListener("beforeunload", function (event) {
  if (document.querySelector("form[data-warn-unsaved][data-edited]")) {
    event.preventDefault();
    event.returnValue = "";  // browsers show their own words
  }
});

// A page waiting for a render to end (a lesson's files or words while it renders): asked again
// every few seconds and reloaded once the render has ended, so its buttons come back by themselves.
document.addEventListener("DOMContentLoaded", function () {
  var waiting = document.querySelector("[data-reload-when-idle]");
  if (!waiting) return;
  var timer = setInterval(function () {
    fetch(location.pathname, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html !== null && html.indexOf("data-reload-when-idle") === -1) {
          clearInterval(timer);
          location.reload();
        }
      })
      .catch(function () {});
  }, 1000 * Number(waiting.getAttribute("data-reload-when-idle") || 5));
});

// The main menu on narrow screens: a button that folds the links open and shut (base.html).
// Escape closes it and gives focus back to the button; so does a click elsewhere.
function setMenu(toggle, open) {
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
}

document.addEventListener("click", function (event) {
  var toggle = event.target.closest && event.target.closest(".menu-toggle");
  if (toggle) {
    setMenu(toggle, toggle.getAttribute("aria-expanded") !== "true");
    return;
  }
  var open = document.querySelector(".menu-toggle[aria-expanded='true']");
  var menu = open && document.getElementById(open.getAttribute("aria-controls"));
  if (open && !(menu && menu.contains(event.target))) {
    setMenu(open, false);
  }
});

document.addEventListener("keydown", function (event) {
  var open = event.key === "Escape" && document.querySelector(".menu-toggle[aria-expanded='true']");
  if (open) {
    setMenu(open, false);
    open.focus();
  }
});

// Copy buttons: <button data-copy="#id"> copies the text of that element (a new API token, a
// curl example) and says "Copied" for a moment. The Clipboard API needs a secure context
// (HTTPS or localhost); elsewhere the older copy command does the same from a selection.
function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text);
  }
  return new Promise(function (resolve, reject) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    document.body.removeChild(area);
    if (copied) {
      resolve();
    } else {
      reject(new Error("copy refused"));
    }
  });
}

document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("button[data-copy]");
  if (!button) {
    return;
  }
  var source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) {
    return;
  }
  var label = button.getAttribute("data-label") || button.textContent;
  button.setAttribute("data-label", label);
  function show(text, state) {
    button.textContent = text;
    button.setAttribute("data-copy-state", state);
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(function () {
      button.textContent = label;
      button.removeAttribute("data-copy-state");
    }, 2000);
  }
  copyText(source.textContent.trim()).then(
    function () { show("Copied", "copied"); },
    function () {
      window.getSelection().selectAllChildren(source);  // selected, for the keyboard's copy
      show("Selected: copy it", "failed");  // a phone has no Ctrl+C: its own Copy shows for a selection
    }
  );
});

// Chapters: the player's chapters track (one cue per titled segment), listed under it as
// buttons that seek there. Built from the track's cues, as text (never markup); again when the
// status panel is swapped in (the video itself is kept by hx-preserve, with its cues).
function formatTime(seconds) {
  var whole = Math.floor(seconds);
  var mins = Math.floor(whole / 60), secs = whole % 60;
  return mins + ":" + (secs < 10 ? "0" : "") + secs;
}

function fillChapters(nav) {
  var video = document.getElementById(nav.dataset.player);
  if (!video) return;
  var element = video.querySelector("track[kind=chapters]");
  if (!element) return;
  var track = element.track;
  function build() {
    if (!track.cues || !track.cues.length || nav.childElementCount) return;
    var list = document.createElement("ol");
    Array.prototype.forEach.call(track.cues, function (cue, index) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.id = nav.dataset.player + "-chapter-" + index;
      button.className = "secondary outline";
      button.textContent = formatTime(cue.startTime) + " " + cue.text;
      button.addEventListener("click", function () {
        video.currentTime = cue.startTime;
        video.play().catch(function () {});
      });
      item.appendChild(button);
      list.appendChild(item);
    });
    nav.appendChild(list);
    // The panel reloaded under a chapter button the keyboard was on: back to the same one.
    var again = chapterFocused && document.getElementById(chapterFocused.id);
    var lost = !document.activeElement || document.activeElement === document.body;
    if (again && lost && Date.now() - chapterFocused.at < 5000) again.focus();
  }
  if (track.mode === "disabled") track.mode = "hidden";  // loads the cues without showing them
  if (element.readyState === 2) build();
  else element.addEventListener("load", build);
}

// The chapter button focused when the panel was swapped (its buttons come after the swap, once
// the chapters track has loaded, too late for htmx to keep the focus by id).
var chapterFocused = null;
document.addEventListener("htmx:beforeSwap", function (event) {
  var focused = document.activeElement;
  if (event.detail.target && event.detail.target.id === "status-panel" && focused &&
      focused.closest && focused.closest("nav.chapters")) {
    chapterFocused = {id: focused.id, at: Date.now()};
  }
});

function fillAllChapters(root) {
  var scope = root && root.querySelectorAll ? root : document;
  Array.prototype.forEach.call(scope.querySelectorAll("nav.chapters[data-player]"), fillChapters);
}
document.addEventListener("DOMContentLoaded", function () { fillAllChapters(document); });
document.addEventListener("htmx:load", function (event) { fillAllChapters(event.detail.elt); });

// A form sent back refused: the keyboard (and a screen reader) starts at what is wrong, the alert
// above the form, not at the top of the page; the next Tab goes on to the form's fields.
document.addEventListener("DOMContentLoaded", function () {
  var refused = document.querySelector("main .form-alert");
  var untouched = !document.activeElement || document.activeElement === document.body;
  if (refused && untouched && !location.hash) refused.focus({preventScroll: false});
});

// A page reached at a part of it (the webhooks page after Send test: #webhook-3) starts the
// keyboard there too, not at the top: the next Tab goes on from the webhook acted on.
document.addEventListener("DOMContentLoaded", function () {
  var target = location.hash && document.getElementById(location.hash.slice(1));
  if (target && target.getAttribute("tabindex") === "-1") target.focus({preventScroll: true});
});
