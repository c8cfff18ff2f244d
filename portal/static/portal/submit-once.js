// A form posts once: a double click, or a second click while the page is still loading,
// would otherwise send a second request (a second vendor call, or a second saved object).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  if ((form.getAttribute("method") || "get").toLowerCase() !== "post") {
    return;
  }
  if (form.dataset.submitted) {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "yes";
});
// Coming back with the browser's Back button shows the page as it was left: let it post again.
window.addEventListener("pageshow", () => {
  for (const form of document.querySelectorAll("form[data-submitted]")) {
    delete form.dataset.submitted;
  }
});
