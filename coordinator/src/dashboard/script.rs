//! The page script, our only JavaScript: it follows the page's event
//! stream (`data-events` on `<body>`) and replaces the inner HTML of the
//! element each `part` event names (first line: the id; the rest: the
//! HTML the server rendered). EventSource reconnects by itself; while it
//! cannot, the `stream` element says so.

/// The script, served at [`super::page::SCRIPT_PATH`].
pub const SCRIPT: &str = r#""use strict";
(function () {
  var url = document.body.getAttribute("data-events");
  if (!url || !window.EventSource) return;
  var note = document.createElement("div");
  note.id = "stream";
  note.className = "banner down";
  note.style.display = "none";
  note.textContent = "dashboard unreachable; reconnecting";
  document.body.insertBefore(note, document.body.children[1] || null);
  function down(yes) {
    note.style.display = yes ? "block" : "none";
    document.body.setAttribute("data-stream", yes ? "down" : "up");
  }
  function connect() {
    var es = new EventSource(url);
    es.addEventListener("open", function () { down(false); });
    es.addEventListener("part", function (e) {
      var cut = e.data.indexOf("\n");
      var id = cut < 0 ? e.data : e.data.slice(0, cut);
      var el = document.getElementById(id);
      if (el) el.innerHTML = cut < 0 ? "" : e.data.slice(cut + 1);
      down(false);
    });
    es.addEventListener("error", function () {
      down(true);
      if (es.readyState === 2) { es.close(); setTimeout(connect, 2000); }
    });
  }
  connect();
})();
"#;
