// PoTR portal: today's solar curve (uPlot), redrawn after each live update (htmx), and
// the inbox's, the dispatch board's and a rollout's live feeds (EventSource).
// No inline script anywhere (the Content Security Policy forbids it): this file is all.
"use strict";

(function () {
  const charts = new Map();

  function lastValue(data) {
    for (let s = 1; s < data.length; s++) {
      for (let i = data[s].length - 1; i >= 0; i--) {
        if (data[s][i] !== null) return { value: data[s][i], ts: data[0][i] };
      }
    }
    return null;
  }

  function options(box, answer) {
    const palette = ["#b35900", "#005a9c", "#2e7d32", "#6a1b9a"];
    // Times in the page's language and the site's zone (uPlot's own labels are English).
    const lang = document.documentElement.lang || "en";
    const hours = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", timeZone: answer.time_zone });
    const watts = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
    return {
      width: Math.max(280, box.clientWidth),
      height: 260,
      scales: {
        x: { time: true, range: () => answer.day },
        y: { range: (u, min, max) => [0, Math.max(1000, (max || 0) * 1.1)] },
      },
      axes: [
        { values: (u, splits) => splits.map((ts) => hours.format(new Date(ts * 1e3))) },
        { label: answer.unit, size: 70, values: (u, splits) => splits.map((v) => watts.format(v)) },
      ],
      series: [{
        label: box.dataset.timeLabel || "Time",
        value: (u, ts) => (ts == null ? "--" : hours.format(new Date(ts * 1e3))),
      }].concat(
        answer.labels.map((label, i) => ({
          label: label,
          stroke: palette[i % palette.length],
          width: 2,
          value: (u, v) => (v == null ? "--" : watts.format(v) + " " + answer.unit),
          spanGaps: false,
        }))
      ),
    };
  }

  async function draw(box) {
    const answer = await fetch(box.dataset.src, { credentials: "same-origin" }).then((r) => {
      if (!r.ok) throw new Error("chart data: " + r.status);
      return r.json();
    });
    const data = answer.data;
    const last = lastValue(data);
    box.dataset.points = String(data[0].length);
    box.dataset.last = last ? String(last.value) : "";
    box.dataset.lastTs = last ? String(last.ts) : "";
    let chart = charts.get(box);
    if (data[0].length === 0) {
      if (chart) { chart.destroy(); charts.delete(box); }
      box.textContent = box.dataset.empty || "";
      return;
    }
    if (chart && chart.series.length === data.length) {
      chart.setData(data);
    } else {
      if (chart) chart.destroy();
      box.textContent = "";
      chart = new uPlot(options(box, answer), data, box);
      charts.set(box, chart);
    }
    box.dataset.drawn = String(Date.now());
  }

  function drawAll() {
    document.querySelectorAll(".chart-box[data-src]").forEach((box) => {
      draw(box).catch((err) => { box.dataset.error = String(err); });
    });
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  // htmx:load fires on content htmx has just put in the page (the new #live section).
  document.addEventListener("htmx:load", (event) => {
    if (event.detail && event.detail.elt && event.detail.elt.id === "live") drawAll();
  });
  window.addEventListener("resize", () => {
    charts.forEach((chart, box) => chart.setSize({ width: Math.max(280, box.clientWidth), height: 260 }));
  });
  // The inbox's live feed (server-sent events): each entry comes rendered by the server
  // in the page's language; a known entry is replaced (marked read), a new one goes on top.
  function follow(list) {
    const feed = new EventSource(list.dataset.feed);
    const status = document.getElementById("inbox-status");
    feed.addEventListener("entry", (event) => {
      const entry = JSON.parse(event.data);
      const known = list.querySelector('[data-entry="' + CSS.escape(entry.id) + '"]');
      if (known) {
        known.outerHTML = entry.html;
        return;
      }
      list.insertAdjacentHTML("afterbegin", entry.html);
      const empty = document.getElementById("inbox-empty");
      if (empty) empty.hidden = true;
      const title = list.firstElementChild && list.firstElementChild.querySelector(".entry-title a, .entry-title");
      if (status && title && !entry.read) status.textContent = (list.dataset.newLabel || "") + " " + title.textContent.trim();
    });
    feed.addEventListener("unread", (event) => {
      const count = Number(event.data);
      document.querySelectorAll("[data-unread-badge]").forEach((badge) => {
        badge.hidden = count === 0;
        const number = badge.querySelector("[data-unread-count]");
        if (number) number.textContent = String(count);
      });
    });
    feed.addEventListener("reload", () => window.location.reload());
    feed.addEventListener("ready", () => { list.dataset.live = "true"; });
    window.addEventListener("pagehide", () => feed.close());
  }

  // The dispatch board's live feed (server-sent events): the whole board, rendered by the
  // server with the page's filter, replaces the one shown when a work order changed.
  function followBoard(board) {
    const feed = new EventSource(board.dataset.feed);
    const status = document.getElementById(board.dataset.status || "board-status");
    feed.addEventListener("board", (event) => {
      const update = JSON.parse(event.data);
      if (update.digest === board.dataset.digest) return;
      board.innerHTML = update.html;
      board.dataset.digest = update.digest;
      if (status) status.textContent = (status.dataset.updatedLabel || "") + " " + new Date().toLocaleTimeString(document.documentElement.lang || undefined);
    });
    feed.addEventListener("ready", () => { board.dataset.live = "true"; });
    window.addEventListener("pagehide", () => feed.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    const list = document.querySelector("#inbox[data-feed]");
    if (list && "EventSource" in window) follow(list);
    // The rollout page's progress follows the same way (its part, its status line).
    const board = document.querySelector("#board[data-feed], #rollout[data-feed]");
    if (board && "EventSource" in window) followBoard(board);
  });

  // Language switch: submit on change for mouse users; the button stays for keyboards.
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (select && select.id === "language-choice" && select.form) select.form.requestSubmit();
  });

  // The customer's signature: drawn with pointer events (finger, pen or mouse) on the
  // job page's canvas, sent as a PNG data URL in the form's hidden field.
  function signaturePad(form) {
    const pad = form.querySelector("[data-signature-pad]");
    const field = form.querySelector("[data-signature-drawn]");
    if (!pad || !field) return;
    const ink = pad.getContext("2d");
    ink.lineWidth = 2;
    ink.lineCap = "round";
    let drawing = false;
    let drawn = false;
    const at = (event) => {
      const box = pad.getBoundingClientRect();
      return [(event.clientX - box.left) * pad.width / box.width,
              (event.clientY - box.top) * pad.height / box.height];
    };
    pad.addEventListener("pointerdown", (event) => {
      drawing = true;
      pad.setPointerCapture(event.pointerId);
      ink.beginPath();
      ink.moveTo(...at(event));
      event.preventDefault();
    });
    pad.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      ink.lineTo(...at(event));
      ink.stroke();
      drawn = true;
    });
    const stop = () => { drawing = false; };
    pad.addEventListener("pointerup", stop);
    pad.addEventListener("pointercancel", stop);
    form.querySelector("[data-signature-clear]")?.addEventListener("click", () => {
      ink.clearRect(0, 0, pad.width, pad.height);
      drawn = false;
      field.value = "";
    });
    form.addEventListener("submit", () => {
      field.value = drawn ? pad.toDataURL("image/png") : "";
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-signature-form]").forEach(signaturePad);
  });
})();
