// A login URL may carry the token in its fragment (never sent to the server, never in
// its logs): fill the form with it and forget it. The reviewer still presses "Log in":
// a page that logged in by itself would let any site that opens such a URL log its
// visitor in under a token of the site's choosing. Opened from the login page itself,
// the URL changes only its fragment: no new page loads, so listen for that too.
"use strict";
function fillInFragmentToken() {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (!token) return;
  history.replaceState(null, "", window.location.pathname);
  document.getElementById("token").value = token;
  document.getElementById("filled").hidden = false;
  document.getElementById("log-in").focus();
}
document.addEventListener("DOMContentLoaded", fillInFragmentToken);
window.addEventListener("hashchange", fillInFragmentToken);
