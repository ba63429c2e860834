// The two-factor set-up page: once a passkey is registered, show the page again with it in the
// list (django-otp-webauthn's script announces the end of the ceremony with this event).
document.addEventListener("otp_webauthn.register_complete", () => window.location.reload());
