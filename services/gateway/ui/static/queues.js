// Case queues: "select all on this page" for the bulk action (CSP: no inline handlers).
"use strict";

document.addEventListener("change", function (event) {
  if (event.target.id !== "select-all") {
    return;
  }
  document.querySelectorAll("input.select-case").forEach(function (box) {
    box.checked = event.target.checked;
  });
});
