// Printing shows every folded conversation; the page needs no script to be read.
(function () {
  "use strict";
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (element) {
      element.open = true;
      opened.push(element);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (element) { element.open = false; });
    opened = [];
  });
})();
