// The set-password page: the invited person opens the emailed link
// (…/auth/set-password?token=…&email=…), the page checks it with the public API, and the
// person chooses a password. Plain JavaScript, no build step, no dependencies.
//
// The API (openapi.yaml, docs/set-password.md):
//   POST {api}/api/auth/set-password/verify {token, email}
//     200 {email, tenantName, role, expiresAt} | 400 INVALID_LINK | 410 LINK_EXPIRED
//   POST {api}/api/auth/set-password {token, email, password}
//     200 {email, tenantName, message} | 400 WEAK_PASSWORD (Auth0's policy message)
//     | 400 INVALID_LINK | 410 LINK_EXPIRED | 5xx with `userFriendly` (the link still works)
"use strict";

(function () {
  const byId = (id) => document.getElementById(id);
  const setting = (name) => {
    const meta = document.querySelector('meta[name="' + name + '"]');
    return meta ? meta.content : "";
  };
  const apiBase = setting("set-password-api").replace(/\/+$/, "");
  const signInUrl = setting("sign-in-url");
  const query = new URLSearchParams(window.location.search);
  const link = { token: query.get("token") || "", email: query.get("email") || "" };

  const screens = ["form-screen", "done-screen", "expired-screen", "invalid-screen", "error-screen"];
  const NETWORK_PROBLEM =
    "We could not reach the server. Check your connection and try again; your link still works.";

  // Shows one screen and moves the focus to its heading, so a screen reader announces it.
  function show(screen) {
    for (const id of screens) {
      byId(id).hidden = id !== screen;
    }
    byId("status").textContent = "";
    const heading = byId(screen).querySelector("h1");
    if (heading) {
      heading.focus();
    }
  }

  // POSTs JSON to the public API: {status, data}, or {network: true} when the call failed
  // (no connection, or the browser refused the answer, e.g. for CORS).
  async function call(path, body) {
    let response;
    try {
      response = await fetch(apiBase + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        referrerPolicy: "no-referrer",
      });
    } catch (error) {
      return { network: true };
    }
    let data = {};
    try {
      data = (await response.json()) || {};
    } catch (error) {
      data = {};
    }
    return { status: response.status, data: data };
  }

  // An answer about the link itself (unknown, used, expired): its own screen, in the page's
  // words (the API's code decides which). True if shown.
  function showLinkProblem(answer) {
    const code = answer.data.code;
    if (answer.status === 410 || code === "LINK_EXPIRED") {
      show("expired-screen");
      return true;
    }
    if (code === "INVALID_LINK") {
      show("invalid-screen");
      return true;
    }
    return false;
  }

  let retry = null;
  function showError(message, again) {
    byId("error-message").textContent = message;
    retry = again;
    show("error-screen");
  }

  async function verify() {
    byId("status").textContent = "Checking your invitation link…";
    for (const id of screens) {
      byId(id).hidden = true;
    }
    if (!link.token || !link.email) {
      byId("invalid-message").textContent =
        "This link is incomplete. Open the link in your invitation email again.";
      show("invalid-screen");
      return;
    }
    const answer = await call("/api/auth/set-password/verify", link);
    if (answer.network) {
      showError(NETWORK_PROBLEM, verify);
      return;
    }
    if (answer.status === 200) {
      const who = answer.data.email || link.email;
      const where = answer.data.tenantName ? " at " + answer.data.tenantName : "";
      byId("form-intro").textContent = "Choose the password for " + who + where + ".";
      show("form-screen");
      return;
    }
    if (showLinkProblem(answer)) {
      return;
    }
    showError(answer.data.userFriendly || answer.data.message || "The link could not be checked.", verify);
  }

  // A problem with one field: shown under it, the field marked invalid and focused (its
  // description, read with it, holds the message).
  function fieldError(field, message) {
    const input = byId(field);
    const error = byId(field + "-error");
    error.textContent = message;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function clearErrors() {
    for (const field of ["password", "confirm"]) {
      byId(field + "-error").hidden = true;
      byId(field + "-error").textContent = "";
      byId(field).removeAttribute("aria-invalid");
    }
    byId("form-error").textContent = "";
  }

  // Auth0's policy message without the API's field prefix and the rule's name
  // ("password: PasswordStrengthError: Password is too weak" → "Password is too weak").
  function policyMessage(message) {
    return String(message || "")
      .replace(/^password:\s*/i, "")
      .replace(/^Password\w*Error:\s*/, "");
  }

  function setBusy(busy) {
    byId("submit").disabled = busy;
    byId("password-form").setAttribute("aria-busy", busy ? "true" : "false");
    byId("status").textContent = busy ? "Setting your password…" : "";
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    const password = byId("password").value;
    if (!password) {
      fieldError("password", "Enter a new password.");
      return;
    }
    if (password !== byId("confirm").value) {
      fieldError("confirm", "The two passwords are not the same.");
      return;
    }
    setBusy(true);
    const answer = await call("/api/auth/set-password", {
      token: link.token,
      email: link.email,
      password: password,
    });
    setBusy(false);
    if (answer.network) {
      byId("form-error").textContent = NETWORK_PROBLEM;
      return;
    }
    if (answer.status === 200) {
      byId("password-form").reset();
      byId("done-message").textContent =
        "Sign in with " + (answer.data.email || link.email) + " and your new password.";
      byId("sign-in").href = signInUrl || "/";
      show("done-screen");
      return;
    }
    const code = answer.data.code;
    if (code === "WEAK_PASSWORD") {
      fieldError("password", "This password is not accepted: " + policyMessage(answer.data.message));
      return;
    }
    if (code === "VALIDATION_ERROR" && answer.data.field === "password") {
      fieldError("password", policyMessage(answer.data.message));
      return;
    }
    if (showLinkProblem(answer)) {
      return;
    }
    // A dependency failed: nothing was kept and the link still works.
    byId("form-error").textContent =
      answer.data.userFriendly || answer.data.message || "The password could not be set. Try again.";
  }

  document.addEventListener("DOMContentLoaded", function () {
    byId("password-form").addEventListener("submit", submit);
    byId("retry").addEventListener("click", function () {
      if (retry) {
        retry();
      }
    });
    verify();
  });
})();
