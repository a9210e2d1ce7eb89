/* The delivery screen: the site field only for "at the site", a list entry fills the code, an optional camera
 * scan (BarcodeDetector where the browser has it; typing always works) and a finger signature drawn on a
 * canvas, sent as a PNG data URL in a hidden field. Everything works without this script except the two extras. */
(function () {
  "use strict";

  var form = document.getElementById("deliver-form");
  if (!form) return;
  var code = form.querySelector("[name=code]");
  var labels = document.getElementById("deliver-labels").dataset;

  // Site only matters for deliveries at a site.
  var siteField = document.getElementById("site-field");
  function syncMode() {
    var checked = form.querySelector("[name=mode]:checked");
    siteField.hidden = !!checked && checked.value !== "site";
  }
  var modes = form.querySelectorAll("[name=mode]");
  for (var i = 0; i < modes.length; i++) modes[i].addEventListener("change", syncMode);
  syncMode();

  // What the code is (block, campaign, site) or why it cannot be delivered, as one types; the site follows.
  var check = document.getElementById("code-check"), siteSelect = form.querySelector("[name=site]");
  var checkTimer = null, lastChecked = null;
  function runCheck() {
    var value = code.value.replace(/[^0-9a-z]/gi, "");
    if (value === lastChecked) return;
    lastChecked = value;
    if (value.length < 8) { check.innerHTML = ""; return; }
    fetch(labels.checkUrl + "?code=" + encodeURIComponent(value), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        if (value !== lastChecked) return;
        check.innerHTML = html;
        var ok = check.querySelector("[data-site]");
        if (ok && ok.dataset.site && siteSelect && siteSelect.querySelector('option[value="' + ok.dataset.site + '"]')) {
          siteSelect.value = ok.dataset.site;
        }
      })
      .catch(function () { check.innerHTML = ""; });
  }
  function soon() { clearTimeout(checkTimer); checkTimer = setTimeout(runCheck, 250); }
  code.addEventListener("input", soon);
  code.addEventListener("change", soon);
  if (code.value) soon();

  // Picking an entry of the list fills the code without a page load.
  var picks = document.querySelectorAll("[data-code]");
  for (var j = 0; j < picks.length; j++) {
    picks[j].addEventListener("click", function (event) {
      event.preventDefault();
      code.value = this.getAttribute("data-code");
      form.scrollIntoView({ behavior: "smooth", block: "start" });
      code.focus();
      soon();
    });
  }

  // Camera scan (a bonus: only where BarcodeDetector exists).
  var scan = document.getElementById("scan"), scanner = document.getElementById("scanner");
  var video = document.getElementById("scan-video"), status = document.getElementById("scan-status");
  var stream = null, timer = null;
  function stopScan() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    scanner.hidden = true;
  }
  if ("BarcodeDetector" in window && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    scan.hidden = false;
    scan.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      scanner.hidden = false;
      status.textContent = labels.scanning;
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      }).then(function () {
        function tick() {
          detector.detect(video).then(function (codes) {
            if (codes.length) {
              code.value = codes[0].rawValue.trim().toUpperCase();
              stopScan();
              code.focus();
              soon();
            } else {
              timer = setTimeout(tick, 250);
            }
          }).catch(function () { timer = setTimeout(tick, 500); });
        }
        tick();
      }).catch(function () {
        status.textContent = labels.noCamera;
        if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
      });
    });
    document.getElementById("scan-stop").addEventListener("click", stopScan);
  }

  // Signature: a finger or mouse drawing on the canvas.
  var canvas = document.getElementById("signature-pad");
  var hidden = form.querySelector("[name=signature]");
  if (canvas && canvas.getContext) {
    var ctx = canvas.getContext("2d"), drawing = false, drawn = false;
    ctx.lineWidth = 2.5; ctx.lineCap = "round"; ctx.strokeStyle = "#1b2227";
    function point(e) {
      var r = canvas.getBoundingClientRect();
      return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
    }
    canvas.addEventListener("pointerdown", function (e) {
      drawing = true; var p = point(e); ctx.beginPath(); ctx.moveTo(p.x, p.y);
      canvas.setPointerCapture(e.pointerId); e.preventDefault();
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!drawing) return; var p = point(e); ctx.lineTo(p.x, p.y); ctx.stroke(); drawn = true; e.preventDefault();
    });
    function end() { if (drawing) { drawing = false; if (drawn) hidden.value = canvas.toDataURL("image/png"); } }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    document.getElementById("signature-clear").addEventListener("click", function () {
      ctx.clearRect(0, 0, canvas.width, canvas.height); hidden.value = ""; drawn = false;
    });
  }
})();
