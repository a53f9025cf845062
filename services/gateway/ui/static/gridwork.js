// The command centre's own script (CSP: script-src 'self', so no inline handlers).
// htmx requests carry the session's CSRF token in a header, from the page's meta tag.
"use strict";

document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRFToken"] = meta.getAttribute("content");
  }
});

// <form data-confirm="..."> asks before it is sent (a replacement for onsubmit=).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
