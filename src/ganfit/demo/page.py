"""The demo's single HTML page (upload or example, preset, progress, results with the 3D view, download)."""

from __future__ import annotations

from ganfit.report.html import STYLE

DEMO_STYLE = """
form.fit { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin-bottom: 14px; }
form.fit button { padding: 6px 14px; font: inherit; cursor: pointer; }
progress { width: 360px; height: 14px; }
#status { margin: 8px 0; }
#message.error { color: var(--bad); font-family: ui-monospace, monospace; white-space: pre-wrap; }
#results[hidden] { display: none; }
a.download { display: inline-block; margin-top: 8px; padding: 6px 14px; background: #1d5fbf; color: #fff;
             border-radius: 4px; text-decoration: none; }
"""

SCRIPT = r"""
const $ = (id) => document.getElementById(id);
let polling = null;

function setBusy(busy) {
  for (const id of ["fit-upload", "fit-example"]) $(id).disabled = busy;
}

function showMessage(text, isError) {
  $("message").textContent = text || "";
  $("message").className = isError ? "error" : "";
}

async function submit(url, body) {
  setBusy(true);
  showMessage("");
  $("results").hidden = true;
  $("viewer").innerHTML = "";
  delete $("viewer").dataset.viewerState;
  const reply = await fetch(url, { method: "POST", body: body });
  const job = await reply.json();
  if (!reply.ok) {
    showMessage(job.error || ("HTTP " + reply.status), true);
    setBusy(false);
    return;
  }
  poll(job.id);
}

function uploadPhoto() {
  const file = $("photo").files[0];
  if (!file) { showMessage("choose a photo file first", true); return; }
  const preset = $("preset").value;
  submit("/api/fit?preset=" + encodeURIComponent(preset) + "&filename=" + encodeURIComponent(file.name), file);
}

function fitExample() {
  submit("/api/fit?preset=" + encodeURIComponent($("preset").value) + "&example=astronaut", null);
}

function poll(id) {
  clearTimeout(polling);
  fetch("/api/jobs/" + id).then((r) => r.json()).then((job) => {
    $("progress").value = job.progress;
    $("status").dataset.state = job.state;
    if (job.state === "queued") {
      $("status").textContent = "queued: " + job.position + " fit(s) ahead (one fit runs at a time)";
    } else if (job.state === "running") {
      $("status").textContent = "fitting " + job.name + " (" + job.preset + ")… " + job.elapsed.toFixed(0) +
        " s (the bar is an estimate from earlier fits)";
    } else if (job.state === "failed") {
      $("status").textContent = "failed after " + job.elapsed.toFixed(1) + " s";
      showMessage(job.message, true);
      setBusy(false);
    } else if (job.state === "done") {
      $("status").textContent = "done in " + job.elapsed.toFixed(1) + " s";
      showResults(job);
      setBusy(false);
    }
    if (job.state === "queued" || job.state === "running") polling = setTimeout(() => poll(id), 500);
  }).catch((error) => { showMessage("lost the server: " + error, true); setBusy(false); });
}

function showResults(job) {
  const base = "/jobs/" + job.id + "/files/";
  const shown = [["overlay.png", "overlay"], ["render.png", "render alone"]];
  for (const name of job.files) if (/^texture.*\.png$/.test(name)) shown.push([name, name.replace(".png", "")]);
  $("images").innerHTML = "";
  for (const [name, caption] of shown) {
    if (!job.files.includes(name)) continue;
    const figure = document.createElement("figure");
    const url = base + name;
    figure.innerHTML = '<a href="' + url + '"><img src="' + url + '" alt=""></a><figcaption></figcaption>';
    figure.querySelector("figcaption").textContent = caption;
    $("images").appendChild(figure);
  }
  const m = job.metrics || {};
  const rows = [["identity cosine", m.identity_cosine], ["landmark error (IOD)", m.landmark_error_iod],
                ["photometric L1", m.pixel_l1], ["seconds (optimisation)", m.seconds]];
  $("metrics").innerHTML = rows.filter((r) => typeof r[1] === "number")
    .map((r) => "<tr><td>" + r[0] + '</td><td class="value">' + r[1].toPrecision(4) + "</td></tr>").join("");
  $("download").href = "/jobs/" + job.id + "/bundle.zip";
  $("download").textContent = "download " + job.name + ".zip (GLB, OBJ/MTL, PNG, JSON)";
  $("results").hidden = false;
  $("viewer").dataset.glbUrl = base + "mesh.glb";
  GanfitViewer.mount($("viewer"));
}

$("fit-upload").onclick = uploadPhoto;
$("fit-example").onclick = fitExample;
"""


def demo_page() -> str:
    """The page's HTML (it loads the viewer bundle from ``/static/``; everything else is inline)."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>ganfit demo</title><style>{STYLE}{DEMO_STYLE}</style>
<script src="/static/ganfit-viewer.min.js"></script></head>
<body><header class="page"><h1>ganfit demo</h1>
<p>A textured 3D face from one photo, fitted on this computer's CPU (nothing leaves it).</p></header>
<main><section class="card">
<form class="fit" onsubmit="return false">
  <label>photo <input type="file" id="photo" accept="image/*"></label>
  <button type="button" id="fit-upload">fit my photo</button>
  <span>or</span>
  <button type="button" id="fit-example">fit the example (astronaut)</button>
  <label>preset <select id="preset"><option value="fast">fast</option>
  <option value="default">default</option></select></label>
</form>
<progress id="progress" max="1" value="0"></progress>
<div id="status">choose a photo or the example</div>
<div id="message"></div>
</section>
<section class="card" id="results" hidden>
<div class="body"><div class="ganfit-viewer" id="viewer" title="drag to turn, wheel to zoom"></div>
<div class="details"><div class="thumbs" id="images"></div><table class="metrics" id="metrics"></table>
<a class="download" id="download" href="#">download</a></div></div>
</section></main>
<script>{SCRIPT}</script></body></html>
"""
