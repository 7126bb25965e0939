// The client portal's one script: a person reading a deliverable records that they opened it.
// The page's GET changes nothing (link checkers and mail scanners fetch pages too); this posts
// the page's "mark as read" form once the page is in front of someone, and says so. Without
// JavaScript the form's button does the same.
(function () {
  "use strict";
  var form = document.querySelector("form[data-record-open]");
  if (!form) return;

  var sent = false;
  function record() {
    if (sent || document.visibilityState !== "visible") return;
    sent = true;
    fetch(form.action, {
      method: "POST",
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) { sent = false; return; }
      var done = document.createElement("p");
      done.className = "muted";
      done.setAttribute("role", "status");
      done.textContent = "Marked as read.";
      form.replaceWith(done);
    }, function () { sent = false; });
  }

  record();
  document.addEventListener("visibilitychange", record);
})();
