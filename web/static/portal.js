// The client portal's one script: it records what a person does, never what a GET does (link
// checkers and mail scanners fetch pages too). Once the page is in front of someone, it posts
// - the page's "mark as read" form: the person opened the month's deliverable (and says so);
//   without JavaScript the form's button does the same;
// - the page's click form, on a page opened from an email's link: the email's link was
//   clicked (then the email's id leaves the address bar, so a bookmark does not carry it).
(function () {
  "use strict";

  // Post `form` once, when the page is visible; `done` runs after the server took it.
  function whenSeen(form, done) {
    if (!form) return;
    var sent = false;
    function record() {
      if (sent || document.visibilityState !== "visible") return;
      sent = true;
      fetch(form.action, {
        method: "POST",
        headers: { "X-Requested-With": "fetch" },
        body: new FormData(form),
        credentials: "same-origin",
      }).then(function (response) {
        if (!response.ok) { sent = false; return; }
        done();
      }, function () { sent = false; });
    }
    record();
    document.addEventListener("visibilitychange", record);
  }

  var opened = document.querySelector("form[data-record-open]");
  whenSeen(opened, function () {
    var said = document.createElement("p");
    said.className = "muted";
    said.setAttribute("role", "status");
    said.textContent = "Marked as read.";
    opened.replaceWith(said);
  });

  var clicked = document.querySelector("form[data-record-click]");
  whenSeen(clicked, function () {
    clicked.remove();
    var url = new URL(window.location.href);
    url.searchParams.delete("e");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  });
})();
