// A login URL may carry the token in its fragment (never sent to the server, never in
// its logs): fill the form with it, forget it, and log in.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (!token) return;
  history.replaceState(null, "", window.location.pathname);
  document.getElementById("token").value = token;
  document.getElementById("login").submit();
});
