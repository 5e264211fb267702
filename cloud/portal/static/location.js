// The jobs page's "share my location" control (pages_field.py): the browser's
// geolocation is asked for only when the MOSIE presses the button, which the page shows
// only once the location notice is acknowledged. Each fix is posted with its own
// idempotency key; the server stores it only while the MOSIE is on duty and says so.
(function () {
  function key() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function send(button, position) {
    const status = document.getElementById("location-status");
    const body = new URLSearchParams({
      [button.dataset.csrfField]: button.dataset.csrfToken,
      key: key(),
      latitude: String(position.coords.latitude),
      longitude: String(position.coords.longitude),
      accuracy_m: String(Math.max(position.coords.accuracy || 1, 0.1)),
      at: new Date(position.timestamp || Date.now()).toISOString(),
    });
    try {
      const answer = await fetch(button.dataset.post, {method: "POST", body});
      const said = await answer.json();
      status.textContent = said.message || said.reason || "";
      status.dataset.outcome = answer.ok ? "recorded" : said.code || "refused";
    } catch (error) {
      status.textContent = String(error);
      status.dataset.outcome = "error";
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-share-location]");
    if (!button || !("geolocation" in navigator)) return;
    const status = document.getElementById("location-status");
    navigator.geolocation.getCurrentPosition(
      (position) => send(button, position),
      (error) => {
        status.textContent = error.message;
        status.dataset.outcome = "unavailable";
      },
      {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000},
    );
  });
})();
