// A login URL may carry the token in its fragment (never sent to the server, never in
// its logs): fill the form with it, forget it, and log in. Opened from the login page
// itself, the URL changes only its fragment: no new page loads, so listen for that too.
"use strict";
function logInWithFragmentToken() {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (!token) return;
  history.replaceState(null, "", window.location.pathname);
  document.getElementById("token").value = token;
  document.getElementById("login").submit();
}
document.addEventListener("DOMContentLoaded", logInWithFragmentToken);
window.addEventListener("hashchange", logInWithFragmentToken);
