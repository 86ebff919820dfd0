// The demo page: a tus (Uppy), a flow.js and a resumable.js uploader, and the
// list of files the app behind tus_filter has received.  The server puts its
// settings on <body data-...>: the upload URL and the chunk sizes.
"use strict";

(function () {
  const config = document.body.dataset;
  const endpoint = config.uploadPath;
  const tusChunkSize = Number(config.tusChunkSize);
  const chunkSize = Number(config.chunkSize);
  const POLL_MS = 2000;

  function formatBytes(bytes) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit === 0 ? String(value) : value.toFixed(1)) + " " + units[unit];
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The filter answers errors as JSON {"error": "..."}; a failed connection has no body.
  function errorText(message) {
    try {
      return JSON.parse(message).error || message;
    } catch (ignored) {
      return message || "the connection failed";
    }
  }

  // -- received files: the app's JSON list, polled ---------------------------------------

  const rows = document.getElementById("received-rows");
  let shown = "";

  function showReceived(files) {
    const key = JSON.stringify(files);
    if (key === shown) return;
    const known = new Set(Array.from(rows.children, (row) => row.dataset.id));
    const firstTime = shown === "";
    shown = key;
    rows.replaceChildren(...files.map((file) => {
      const row = element("tr");
      row.dataset.id = file.id;
      row.dataset.sha256 = file.sha256;
      if (!firstTime && !known.has(file.id)) row.className = "new";
      const name = element("td", "name", file.name);
      name.title = "stored as " + file.stored_as;
      row.append(
        name,
        element("td", "number", formatBytes(file.size)),
        element("td", null),
        element("td", "sha256", file.sha256),
        element("td", "time", new Date(file.received * 1000).toLocaleTimeString()),
      );
      row.children[2].append(element("span", "badge " + file.protocol, file.protocol));
      return row;
    }));
    document.getElementById("received-count").textContent = files.length ? String(files.length) : "";
    document.getElementById("received-empty").hidden = files.length > 0;
  }

  function refreshReceived() {
    fetch("/received", { cache: "no-store" })
      .then((response) => response.json())
      .then((answer) => showReceived(answer.files))
      .catch(() => { /* the server is restarting: the next poll will tell */ });
  }

  refreshReceived();
  setInterval(refreshReceived, POLL_MS);

  // -- tus: Uppy's Dashboard shows progress, speed, pause/resume and errors itself -----

  new Uppy.Uppy({ id: "tus", autoProceed: true })
    .use(Uppy.Dashboard, {
      inline: true,
      target: "#tus-dashboard",
      width: "100%",
      height: 380,
      proudlyDisplayPoweredByUppy: false,
      note: "Uploads start as soon as files are added",
    })
    .use(Uppy.Tus, {
      endpoint: endpoint + "/",
      // Without a chunk size a tus client sends the whole file in one PATCH,
      // and waitress refuses request bodies over 1 GB.
      chunkSize: tusChunkSize,
      retryDelays: [0, 1000, 3000, 5000],
      removeFingerprintOnSuccess: true,
    })
    .on("upload-success", refreshReceived);

  // -- flow.js and resumable.js: one small file list for both ---------------------------

  // Rows of files with a progress bar, speed, pause/resume and errors.
  // `controls` knows how to pause, resume and retry a file of this library.
  class FileList {
    constructor(panel, controls) {
      this.list = panel.querySelector(".files");
      this.controls = controls;
      this.rows = new Map();
      const zone = panel.querySelector(".drop");
      for (const type of ["dragenter", "dragover"]) {
        zone.addEventListener(type, () => zone.classList.add("over"));
      }
      for (const type of ["dragleave", "drop"]) {
        zone.addEventListener(type, () => zone.classList.remove("over"));
      }
    }

    add(file, name, size) {
      const item = element("li", "file");
      const bar = element("div", "bar");
      const fill = element("div", "fill");
      bar.append(fill);
      const top = element("div", "line");
      top.append(element("span", "name", name), element("span", "size", formatBytes(size)));
      const status = element("span", "status", "Waiting");
      const button = element("button", "action", "Pause");
      button.type = "button";
      button.addEventListener("click", () => this.act(file));
      const bottom = element("div", "line");
      bottom.append(status, button);
      item.append(top, bar, bottom);
      item.dataset.state = "uploading";
      this.list.prepend(item);
      this.rows.set(file, { item, fill, status, button, size, fraction: 0, bytes: 0, time: performance.now(), speed: 0 });
    }

    act(file) {
      const row = this.rows.get(file);
      const state = row.item.dataset.state;
      if (state === "uploading") {
        this.controls.pause(file);
        this.set(row, "paused", "Paused at " + Math.floor(row.fraction * 100) + "%", "Resume");
      } else if (state === "paused") {
        this.controls.resume(file);
        this.set(row, "uploading", "Resuming", "Pause");
      } else if (state === "error") {
        this.controls.retry(file);
        this.set(row, "uploading", "Retrying", "Pause");
      }
    }

    set(row, state, status, action) {
      row.item.dataset.state = state;
      row.status.textContent = status;
      row.button.textContent = action || "";
      row.button.hidden = !action;
    }

    progress(file, fraction) {
      const row = this.rows.get(file);
      if (!row || row.item.dataset.state !== "uploading") return;
      row.fraction = fraction;
      row.fill.style.width = (fraction * 100).toFixed(1) + "%";
      // Speed: bytes since the last sample, smoothed over a few seconds.
      const now = performance.now();
      const bytes = fraction * row.size;
      const seconds = (now - row.time) / 1000;
      if (seconds >= 0.5) {
        const current = Math.max(0, bytes - row.bytes) / seconds;
        row.speed = row.speed ? 0.7 * row.speed + 0.3 * current : current;
        row.bytes = bytes;
        row.time = now;
      }
      const speed = row.speed ? " · " + formatBytes(row.speed) + "/s" : "";
      row.status.textContent = Math.floor(fraction * 100) + "%" + speed;
    }

    done(file) {
      const row = this.rows.get(file);
      row.fill.style.width = "100%";
      this.set(row, "done", "Complete");
    }

    failed(file, message) {
      this.set(this.rows.get(file), "error", "Failed: " + errorText(message), "Retry");
    }
  }

  function startFlow(panel) {
    const flow = new Flow({
      target: endpoint,
      chunkSize: chunkSize,
      simultaneousUploads: 3,
      // flow.js fails a file on its first unsuccessful request unless told to
      // retry; a 503 (another request holds the upload's lock) is worth one.
      maxChunkRetries: 5,
      chunkRetryInterval: 1000,
      allowDuplicateUploads: true,
    });
    const files = new FileList(panel, {
      pause: (file) => file.pause(),
      resume: (file) => file.resume(),
      retry: (file) => file.retry(),
    });
    flow.assignBrowse(panel.querySelector("input[type=file]"));
    flow.assignDrop(panel.querySelector(".drop"));
    flow.on("fileAdded", (file) => { files.add(file, file.name, file.size); });
    flow.on("filesSubmitted", () => flow.upload());
    flow.on("fileProgress", (file) => files.progress(file, file.progress()));
    flow.on("fileSuccess", (file) => {
      files.done(file);
      flow.removeFile(file);
      refreshReceived();
    });
    flow.on("fileError", (file, message) => files.failed(file, message));
  }

  function startResumable(panel) {
    const resumable = new Resumable({
      target: endpoint,
      chunkSize: chunkSize,
      simultaneousUploads: 3,
      minFileSize: 0, // the server takes empty files; resumable.js refuses them by default
      chunkRetryInterval: 1000,
      maxChunkRetries: 5,
    });
    const files = new FileList(panel, {
      // resumable.js pauses by not starting new chunks; abort the running ones too.
      pause: (file) => { file.pause(true); file.abort(); },
      resume: (file) => { file.pause(false); resumable.upload(); },
      retry: (file) => file.retry(),
    });
    resumable.assignBrowse(panel.querySelector("input[type=file]"));
    resumable.assignDrop(panel.querySelector(".drop"));
    // resumable.js cuts a file into chunks asynchronously and fires fileAdded after that.
    resumable.on("fileAdded", (file) => {
      files.add(file, file.fileName, file.size);
      resumable.upload();
    });
    resumable.on("fileProgress", (file) => files.progress(file, file.progress()));
    resumable.on("fileSuccess", (file) => {
      files.done(file);
      // resumable.js skips a file it still lists: let the same file be sent again.
      resumable.removeFile(file);
      refreshReceived();
    });
    resumable.on("fileError", (file, message) => files.failed(file, message));
  }

  startFlow(document.getElementById("flowjs"));
  startResumable(document.getElementById("resumablejs"));
})();
