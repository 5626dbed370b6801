// Lender Sandbox: the little the pages do with JavaScript (they work without it).
// - /docs: a link to #some-operation opens that operation's <details> and scrolls to it.
// - dashboard: forms with data-confirm ask first; a self-refreshing region (htmx, vendored
//   as htmx.min.js) keeps its open <details> open and waits while you type in it.
(function () {
  "use strict";

  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (!el) return;
    for (var d = el; d; d = d.parentElement) {
      if (d.tagName === "DETAILS") d.open = true;
    }
    el.scrollIntoView();
  }
  window.addEventListener("hashchange", openTarget);
  document.addEventListener("DOMContentLoaded", openTarget);

  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });

  var openBeforeSwap = [];
  document.addEventListener("htmx:beforeRequest", function (e) {
    var typing = document.activeElement;
    if (typing && typing.form && e.detail.elt.contains(typing)) e.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    openBeforeSwap = Array.prototype.map.call(
      e.detail.target.querySelectorAll("details[open][id]"),
      function (d) { return d.id; }
    );
  });
  document.addEventListener("htmx:afterSettle", function () {
    openBeforeSwap.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
  });
})();
