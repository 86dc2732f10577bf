// The account panel: change the password, delete the account (extensions
// of the protocol, see docs/protocol.md). Part of app.js's client: it uses
// its state and its REST helper.
"use strict";

function openAccount() {
  for (const id of ["#current-password", "#new-password", "#delete-password"]) $(id).value = "";
  $("#delete-confirm").checked = false;
  for (const id of ["#password-message", "#delete-message"]) tell($(id), "");
  $("#account").showModal();
}

// tell writes a form's outcome: a failure in red, a success (ok) not.
function tell(el, text, ok = false) {
  el.textContent = text;
  el.classList.toggle("ok", ok);
}

// accountError says why the server refused an account change.
function accountError(err) {
  if (err.status === 403) return "That is not your password.";
  if (err.status === 429) return `Too many attempts. Try again in ${formatWait(err.retryAfter)}.`;
  if (err.status === 404 || err.status === 405) return "This server cannot do that.";
  return err.message || "Could not reach the server.";
}

// onChangePassword changes the password. The server logs out the
// account's other sessions; this one goes on.
async function onChangePassword(event) {
  event.preventDefault();
  const password = $("#current-password").value;
  const next = $("#new-password").value;
  const msg = $("#password-message");
  if (next.length < 8 || next.length > 128) {
    tell(msg, "A password has 8 to 128 characters.");
    return;
  }
  try {
    await api("PUT", "/users/me/password", { password, new_password: next });
    $("#current-password").value = "";
    $("#new-password").value = "";
    tell(msg, "Password changed. Your other sessions are logged out.", true);
  } catch (err) {
    if (state.session) tell(msg, accountError(err));
  }
}

// onDeleteAccount deletes the account for good, once the person has
// ticked the box; the session ends with it.
async function onDeleteAccount(event) {
  event.preventDefault();
  const msg = $("#delete-message");
  if (!$("#delete-confirm").checked) {
    tell(msg, "Tick the box to confirm.");
    return;
  }
  try {
    await api("DELETE", "/users/me", { password: $("#delete-password").value });
    expire("Your account has been deleted.");
  } catch (err) {
    if (state.session) tell(msg, accountError(err));
  }
}
