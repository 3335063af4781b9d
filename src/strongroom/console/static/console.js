// Strongroom console: the one script of our own (served from this origin, as the CSP requires).
// Uploads a file with a progress bar: the bytes go as the request body to the console's upload
// route, with the session's CSRF token in a header.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.matches || !form.matches("form[data-upload]")) return;
  event.preventDefault();
  var file = form.querySelector("input[type=file]").files[0];
  var key = form.querySelector("input[name=key]").value || (file && file.name);
  var tags = form.querySelector("input[name=tags]").value;
  var bar = form.querySelector("progress");
  var status = form.querySelector("[role=status]");
  if (!file || !key) { status.textContent = "Choose a file and a key."; return; }
  var request = new XMLHttpRequest();
  request.open("POST", form.getAttribute("action") + "?key=" + encodeURIComponent(key));
  request.setRequestHeader("Content-Type", "application/octet-stream");
  request.setRequestHeader("X-CSRF-Token", form.querySelector("input[name=csrf_token]").value);
  if (tags) request.setRequestHeader("X-Sr-Tags", tags);
  request.upload.addEventListener("progress", function (e) {
    if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
  });
  request.addEventListener("load", function () {
    if (request.status === 200) {
      bar.value = bar.max;
      status.textContent = "Uploaded " + key + " (version " + request.responseText + ").";
    } else {
      status.textContent = "Upload refused (" + request.status + "): " + request.responseText;
    }
  });
  request.addEventListener("error", function () { status.textContent = "Upload failed."; });
  status.textContent = "Uploading…";
  request.send(file);
});
