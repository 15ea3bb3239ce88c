// backupsvc: small progressive enhancements. No inline scripts anywhere (CSP: script-src 'self').
document.addEventListener("DOMContentLoaded", () => {
  // htmx requests carry the CSRF token from the <meta> tag.
  const token = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", (event) => {
    if (token) event.detail.headers["X-CSRFToken"] = token.content;
  });
});
