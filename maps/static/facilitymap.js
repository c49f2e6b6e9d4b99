/*
 * Facility map (maps.webmap.facility_map) on a Leaflet map built by folium: one clustering of
 * every kind (supercluster) whose badges show their mix of kinds and never overlap, lazy popups
 * with the hours in words, a folding legend, a "locate me" control and a panel listing the
 * facilities nearest to the viewer (asked of the service's /nearest), with kind tabs, an
 * "open now" toggle and a search over the loaded names and addresses.
 *
 * Every text from the data is put into the page with textContent / DOM attributes, never as
 * HTML, so a facility called "<img src=x onerror=alert(1)>" shows as that text.
 *
 * Coordinates in the payload are WGS-84 micro-degrees. When the base map is drawn in GCJ-02
 * (Amap), markers and the user's position are shifted with wgs84ToGcj02 below, a port of
 * geodata.crs (the tests check both agree to 1e-9 degree).
 */
(function () {
  "use strict";

  // ---- coordinate systems (the GCJ-02 and BD-09 forward formulas of geodata/crs.py) ----
  var AXIS = 6378245.0;
  var EE = 0.00669342162296594323;
  var PI = Math.PI;
  var X_PI = (PI * 3000.0) / 180.0;

  // Mainland China, where GCJ-02 / BD-09 are shifted: the polygons geodata/crs.py uses (an
  // "include" outline less Hong Kong, Macau and Taiwan), handed over in the payload.
  var region = { include: [], exclude: [] };

  function inPolygons(lon, lat, polygons) {
    for (var p = 0; p < polygons.length; p++) {
      var inside = false;
      var rings = polygons[p];
      for (var r = 0; r < rings.length; r++) {
        var ring = rings[r];
        for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
          if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) {
            inside = !inside;
          }
        }
      }
      if (inside) {
        return true;
      }
    }
    return false;
  }

  /** Whether a WGS-84 point is in mainland China (even-odd rule on the payload's polygons). */
  function inMainland(lon, lat) {
    return inPolygons(lon, lat, region.include) && !inPolygons(lon, lat, region.exclude);
  }

  function transformLat(x, y) {
    var ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    ret += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
    ret += ((20.0 * Math.sin(y * PI) + 40.0 * Math.sin((y / 3.0) * PI)) * 2.0) / 3.0;
    ret += ((160.0 * Math.sin((y / 12.0) * PI) + 320.0 * Math.sin((y * PI) / 30.0)) * 2.0) / 3.0;
    return ret;
  }

  function transformLon(x, y) {
    var ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    ret += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
    ret += ((20.0 * Math.sin(x * PI) + 40.0 * Math.sin((x / 3.0) * PI)) * 2.0) / 3.0;
    ret += ((150.0 * Math.sin((x / 12.0) * PI) + 300.0 * Math.sin((x / 30.0) * PI)) * 2.0) / 3.0;
    return ret;
  }

  /**
   * WGS-84 -> GCJ-02, degrees; [lon, lat]. Outside mainland China the position is unchanged.
   * `mainland` may be given when known (the payload flags each facility); else it is tested.
   */
  function wgs84ToGcj02(lon, lat, mainland) {
    if (!(mainland === undefined ? inMainland(lon, lat) : mainland)) {
      return [lon, lat];
    }
    var dLat = transformLat(lon - 105.0, lat - 35.0);
    var dLon = transformLon(lon - 105.0, lat - 35.0);
    var radLat = (lat / 180.0) * PI;
    var magic = 1.0 - EE * Math.pow(Math.sin(radLat), 2);
    var sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180.0) / (((AXIS * (1 - EE)) / (magic * sqrtMagic)) * PI);
    dLon = (dLon * 180.0) / ((AXIS / sqrtMagic) * Math.cos(radLat) * PI);
    return [lon + dLon, lat + dLat];
  }

  /** GCJ-02 -> BD-09, degrees; [lon, lat]. */
  function gcj02ToBd09(lon, lat) {
    var z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
    var theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
    return [z * Math.cos(theta) + 0.0065, z * Math.sin(theta) + 0.006];
  }

  /** WGS-84 -> BD-09, degrees; [lon, lat]. Outside mainland China the position is unchanged. */
  function wgs84ToBd09(lon, lat, mainland) {
    if (!(mainland === undefined ? inMainland(lon, lat) : mainland)) {
      return [lon, lat];
    }
    var gcj = wgs84ToGcj02(lon, lat, true);
    return gcj02ToBd09(gcj[0], gcj[1]);
  }

  /** The same links as geodata.navigation.navigation_links (Amap GCJ-02, Baidu BD-09, geo: WGS-84). */
  function navigationLinks(lon, lat, name, source, mainland) {
    var known = mainland === undefined ? inMainland(lon, lat) : mainland;
    var gcj = wgs84ToGcj02(lon, lat, known);
    var bd = wgs84ToBd09(lon, lat, known);
    var label = encodeURIComponent(name);
    var src = encodeURIComponent(source);
    var wgs = lat.toFixed(6) + "," + lon.toFixed(6);
    return {
      amap:
        "https://uri.amap.com/marker?position=" + gcj[0].toFixed(6) + "," + gcj[1].toFixed(6) +
        "&name=" + label + "&src=" + src + "&coordinate=gaode&callnative=1",
      baidu:
        "https://api.map.baidu.com/marker?location=" + bd[1].toFixed(6) + "," + bd[0].toFixed(6) +
        "&title=" + label + "&content=" + label + "&output=html&coord_type=bd09ll&src=" + src,
      geo: "geo:" + wgs + "?q=" + wgs + "(" + label + ")",
    };
  }

  // ---- payload ----
  function base64ToBytes(text) {
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes;
  }

  /** Read the JSON payload element; a gzip+base64 "data" member is inflated. Returns a Promise. */
  function readPayload(elementId) {
    var doc = JSON.parse(document.getElementById(elementId).textContent);
    if (doc.encoding !== "gzip+base64") {
      return Promise.resolve(doc);
    }
    var stream = new Blob([base64ToBytes(doc.data)])
      .stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(function (text) {
      doc.data = JSON.parse(text);
      return doc;
    });
  }

  // ---- DOM helpers (text only) ----
  /** The classes of a kind's marker or swatch: its colour (fm-k-KEY) and its shape. */
  function kindClasses(kind) {
    return "fm-k-" + kind.key + " fm-shape-" + kind.shape;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function button(className, text) {
    var node = el("button", className, text);
    node.type = "button";
    return node;
  }

  function row(parent, label, value, className) {
    if (value === undefined || value === null || value === "") {
      return null;
    }
    var line = el("div", "fm-row " + (className || ""));
    line.appendChild(el("span", "fm-label", label));
    var content = el("span", "fm-value");
    if (typeof value === "string") {
      content.textContent = value;
    } else {
      content.appendChild(value);
    }
    line.appendChild(content);
    parent.appendChild(line);
    return line;
  }

  function fill(template, value) {
    return template.replace("{}", value);
  }

  var STATE_CLASSES = ["fm-unknown", "fm-open", "fm-closed"];
  var STATE_OPEN = 1;
  var STATE_CLOSED = 2;
  // payload "flags": bits 0-1 the open state (0 unknown, 1 open, 2 closed), bit 2 mainland China,
  // bit 3 the open state rests on the provisional holiday calendar, bit 4 temporarily closed
  function stateOf(flags) {
    return flags & 3;
  }
  function isMainland(flags) {
    return (flags & 4) !== 0;
  }

  /** The open state now and its next change ("营业中 18:00 关门") of facility i. */
  function stateLine(doc, i) {
    var d = doc.data;
    var state = stateOf(d.flags[i]);
    var line = el("span", "fm-state-line");
    line.appendChild(el("span", "fm-state " + STATE_CLASSES[state], doc.states[state]));
    var next = d.hours[i] >= 0 && (d.flags[i] & 16) === 0 ? d.hours_next[d.hours[i]] : "";
    if (next) {
      line.appendChild(el("span", "fm-next", next));
    }
    return line;
  }

  /** How to get in: the method ("电话联系管理员开门"), the number to call as a link, the note. */
  function entryBox(doc, code, phone, note) {
    if (code < 0 && !note) {
      return null;
    }
    var box = el("span", "fm-entry");
    if (code >= 0) {
      box.appendChild(el("span", "fm-entry-method", doc.entry_methods[code]));
    }
    if (phone) {
      var call = el("a", "fm-entry-phone", phone);
      call.href = "tel:" + phone.replace(/[^0-9+]/g, "");
      box.appendChild(document.createTextNode(" "));
      box.appendChild(call);
    }
    if (note) {
      box.appendChild(el("div", "fm-entry-note", note));
    }
    return box;
  }

  /** The URL of a facility's route under the service's /facilities. */
  function facilityUrl(doc, id, path) {
    return doc.facility_url + "/" + encodeURIComponent(id) + path;
  }

  /** The DOM event popup content sends when its size changed. */
  var POPUP_RESIZED = "fm-popup-resized";

  function resized(node) {
    node.dispatchEvent(new CustomEvent(POPUP_RESIZED, { bubbles: true }));
  }

  /** "Report a problem": a form posting to the service; the answer's number and status link. */
  function reportForm(doc, i) {
    var L10N = doc.labels;
    var box = el("div", "fm-report");
    var open = button("fm-report-open", L10N.report);
    box.appendChild(open);
    L.DomEvent.on(open, "click", function () {
      open.hidden = true;
      var form = el("form", "fm-report-form");
      var label = el("label", "fm-report-label", L10N.report_type);
      var select = el("select", "fm-report-type");
      doc.report_types.forEach(function (type) {
        var option = el("option", null, type.label);
        option.value = type.key;
        select.appendChild(option);
      });
      label.appendChild(select);
      form.appendChild(label);
      var note = el("textarea", "fm-report-note");
      note.rows = 2;
      note.maxLength = 500;
      note.placeholder = L10N.report_note;
      note.setAttribute("aria-label", L10N.report_note);
      form.appendChild(note);
      var photoLabel = el("label", "fm-report-label", L10N.report_photo);
      var photo = el("input", "fm-report-photo");
      photo.type = "file";
      photo.accept = "image/*";
      photo.setAttribute("capture", ""); // a phone opens its camera
      photoLabel.appendChild(photo);
      form.appendChild(photoLabel);
      var send = el("button", "fm-report-send", L10N.report_send);
      send.type = "submit";
      form.appendChild(send);
      var message = el("p", "fm-report-message");
      message.setAttribute("role", "status");
      box.appendChild(form);
      box.appendChild(message);
      resized(box);
      L.DomEvent.on(form, "submit", function (event) {
        L.DomEvent.preventDefault(event);
        send.disabled = true;
        var body = { type: select.value };
        if (note.value.trim()) {
          body.note = note.value.trim();
        }
        fetch(facilityUrl(doc, doc.data.id[i], "/reports"), {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          credentials: "same-origin",
          body: JSON.stringify(body),
        })
          .then(function (response) {
            if (!response.ok) {
              throw new Error("HTTP " + response.status);
            }
            return response.json();
          })
          .then(function (answer) {
            var file = photo.files && photo.files[0];
            if (!file) {
              return [answer, true];
            }
            // the photo goes second, with the report's token: seen by staff and the reporter only;
            // shrunk here first to what the server keeps (photoshrink.js)
            return window.FinderPhotos.shrink(file, doc.photo_side_px)
              .then(function (upload) {
                return fetch(answer.photo_url, {
                  method: "POST",
                  headers: { "Content-Type": upload.type || "application/octet-stream" },
                  credentials: "same-origin",
                  body: upload,
                });
              })
              .then(
              function (response) {
                return [answer, response.ok];
              },
              function () {
                return [answer, false];
              }
            );
          })
          .then(function (sent) {
            var answer = sent[0];
            box.removeChild(form);
            message.textContent = fill(L10N.report_sent, String(answer.id));
            if (!sent[1]) {
              message.appendChild(el("span", "fm-report-photo-failed", " " + L10N.report_photo_failed));
            }
            var status = el("a", "fm-report-status", L10N.report_status);
            status.href = answer.status_url;
            status.target = "_blank";
            status.rel = "noopener noreferrer";
            message.appendChild(document.createTextNode(" "));
            message.appendChild(status);
            resized(box);
          })
          .catch(function () {
            send.disabled = false;
            message.textContent = L10N.report_failed;
          });
      });
    });
    return box;
  }

  /** Minutes since an ISO time, in words ("12分钟前"); "" without a time. */
  function agoText(L10N, iso) {
    if (!iso) {
      return "";
    }
    var minutes = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 60000));
    if (minutes < 1) {
      return L10N.just_now;
    }
    if (minutes < 120) {
      return fill(L10N.minutes_ago, String(minutes));
    }
    return fill(L10N.hours_ago, String(Math.round(minutes / 60)));
  }

  /**
   * The honest state of a facility from /nearest or /live ("有人使用 · 传感器 3分钟前"), and
   * when and how it was last verified with the confidence that leaves, said plainly.
   */
  function liveLine(doc, live) {
    var L10N = doc.labels;
    var box = el("span", "fm-live");
    var line = el("span", "fm-state-line");
    line.appendChild(el("span", "fm-state fm-live-" + live.live_state, L10N["live_state_" + live.live_state]));
    var source = L10N["live_source_" + live.live_source] || "";
    var when = agoText(L10N, live.live_since);
    // "多人报告锁门 用户报告 40分钟前 2人报告" (a reported-locked state says by how many)
    var parts = [source, when];
    if (live.reported_by) {
      parts.push(fill(L10N.reported_by, String(live.reported_by)));
    }
    if (live.report_confirmed_by_staff) {
      parts.push(L10N.report_confirmed_by_staff);
    }
    line.appendChild(el("span", "fm-next", parts.filter(Boolean).join(" ")));
    box.appendChild(line);
    if (live.last_verified_by) {
      var verified = fill(
        fill(L10N.last_verified, L10N["verified_by_" + live.last_verified_by]),
        agoText(L10N, live.last_verified_at) || live.last_verified_at.slice(0, 10)
      );
      box.appendChild(el("div", "fm-verified", verified));
    }
    box.appendChild(el("div", "fm-confidence fm-confidence-" + live.confidence_label, L10N["confidence_" + live.confidence_label]));
    return box;
  }

  function buildPopup(doc, i, live) {
    var d = doc.data;
    var L10N = doc.labels;
    var lon = d.lon[i] / 1e6;
    var lat = d.lat[i] / 1e6;
    var box = el("div", "fm-popup");
    box.appendChild(el("div", "fm-name", d.name[i]));
    if (doc.facility_url && d.photo[i] >= 0) {
      var photo = el("img", "fm-photo");
      photo.alt = fill(L10N.photo, d.name[i]);
      photo.onerror = function () { photo.remove(); }; // taken down since the page was made
      photo.src = facilityUrl(doc, d.id[i], "/photos/" + d.photo[i] + "?size=thumb");
      box.appendChild(photo);
    }
    var kind = doc.kinds[d.kind[i]];
    var meta = el("div", "fm-meta");
    meta.appendChild(el("span", "fm-swatch " + kindClasses(kind)));
    meta.appendChild(document.createTextNode(kind.label + " · " + doc.access[d.access[i]]));
    box.appendChild(meta);
    row(box, L10N.address, d.addr[i]);

    var hours = el("span");
    hours.appendChild(stateLine(doc, i));
    var words = d.hours[i] >= 0 ? d.hours_words[d.hours[i]] : L10N.no_hours;
    hours.appendChild(el("div", "fm-hours", words));
    if ((d.flags[i] & 8) !== 0) {
      hours.appendChild(el("div", "fm-provisional", L10N.provisional));
    }
    if (d.verified[i]) {
      hours.appendChild(el("div", "fm-verified", fill(L10N.verified, d.verified[i])));
    }
    row(box, L10N.hours, hours);
    if (live) {
      row(box, L10N.live, liveLine(doc, live));
    }

    var mask = d.amen[i];
    var names = [];
    for (var b = 0; b < doc.amenities.length; b++) {
      if (mask & (1 << b)) {
        names.push(doc.amenities[b]);
      }
    }
    row(box, L10N.amenities, names.join(L10N.list_separator));
    if (d.stars[i] > 0) {
      var stars = el("span", "fm-stars", "★★★★★".slice(0, d.stars[i]) + "☆☆☆☆☆".slice(d.stars[i]));
      stars.setAttribute("aria-label", d.stars[i] + " / 5");
      row(box, L10N.stars, stars);
    }
    if (d.phone[i]) {
      var phone = el("a", "fm-phone", d.phone[i]);
      phone.href = "tel:" + d.phone[i].replace(/[^0-9+]/g, "");
      row(box, L10N.phone, phone);
    }
    row(box, L10N.entry, entryBox(doc, d.entry[i], d.entry_phone[i], d.entry_note[i]));
    var links = navigationLinks(lon, lat, d.name[i], doc.nav_source, isMainland(d.flags[i]));
    var nav = el("div", "fm-nav");
    [["amap", L10N.nav_amap], ["baidu", L10N.nav_baidu], ["geo", L10N.nav_geo]].forEach(function (
      pair
    ) {
      var a = el("a", "fm-nav-" + pair[0], pair[1]);
      a.href = links[pair[0]];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      nav.appendChild(a);
    });
    box.appendChild(nav);
    if (doc.facility_url) {
      box.appendChild(reportForm(doc, i));
    }
    return box;
  }

  // ---- controls ----
  /** The legend: kinds with their counts, the faded "closed" marker, how to read a badge. */
  function legendControl(doc, counts, folded) {
    var control = L.control({ position: "bottomleft" });
    control.onAdd = function () {
      var box = el("div", "fm-legend leaflet-control" + (folded ? " fm-folded" : ""));
      var toggle = button("fm-legend-toggle");
      toggle.appendChild(el("span", "fm-legend-title", doc.labels.legend));
      toggle.appendChild(el("span", "fm-chevron"));
      toggle.setAttribute("aria-expanded", String(!folded));
      box.appendChild(toggle);
      var body = el("div", "fm-legend-body");
      doc.kinds.forEach(function (kind, k) {
        var line = el("div", "fm-legend-row");
        line.appendChild(el("span", "fm-swatch " + kindClasses(kind)));
        line.appendChild(el("span", "fm-legend-label", kind.label));
        line.appendChild(el("span", "fm-legend-count", String(counts[k])));
        body.appendChild(line);
      });
      var closed = el("div", "fm-legend-row");
      closed.appendChild(el("span", "fm-swatch " + kindClasses(doc.kinds[0]) + " fm-closed"));
      closed.appendChild(el("span", "fm-legend-label", doc.labels.closed_now));
      body.appendChild(closed);
      var mix = el("div", "fm-legend-row");
      var sample = el("span", "fm-swatch fm-swatch-mix");
      sample.style.background = mixBackground(counts.map(function () { return 1; }), doc);
      mix.appendChild(sample);
      mix.appendChild(el("span", "fm-legend-label", doc.labels.cluster_legend));
      body.appendChild(mix);
      box.appendChild(body);
      L.DomEvent.on(toggle, "click", function () {
        var nowFolded = box.classList.toggle("fm-folded");
        toggle.setAttribute("aria-expanded", String(!nowFolded));
      });
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  function locateControl(map, state) {
    var doc = state.doc;
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = el("div", "fm-locate leaflet-bar leaflet-control");
      var locate = button("fm-locate-button", doc.labels.locate);
      locate.title = doc.labels.locate_title;
      var message = el("div", "fm-locate-message");
      box.appendChild(locate);
      box.appendChild(message);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(locate, "click", function () {
        if (!navigator.geolocation) {
          message.textContent = doc.labels.locate_unavailable;
          return;
        }
        message.textContent = doc.labels.locating;
        navigator.geolocation.getCurrentPosition(
          function (position) {
            message.textContent = "";
            state.setMe(position.coords.longitude, position.coords.latitude, position.coords.accuracy);
            if (!doc.nearby) {
              map.setView(state.me, Math.max(map.getZoom(), 16));
            }
          },
          function () {
            message.textContent = doc.labels.locate_failed;
          },
          { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
        );
      });
      return box;
    };
    return control;
  }

  // Start loading the embedded CJK font now (this script runs in <head>) and build our
  // controls only once it is there: text laid out before it loaded may keep the fallback font.
  var CJK_FAMILY = "FacilityMap CJK";
  var fontsLoaded =
    document.fonts && document.fonts.load
      ? document.fonts.load('16px "' + CJK_FAMILY + '"', "\u4e2d").catch(function () {
          return [];
        })
      : Promise.resolve([]);

  // ---- markers and clusters ----
  // One supercluster index (vendored, supercluster.min.js) holds the facilities that pass the
  // kind tab and the "open now" toggle, whatever their kind: a cluster counts each kind and its
  // badge shows the mix as a ring. supercluster keeps points CLUSTER_PX apart at each zoom, but
  // a cluster sits at its members' centroid, so two badges can still touch; separate() merges
  // any badge or marker whose box meets another's, so nothing drawn ever overlaps. From
  // UNCLUSTER_ZOOM on, facilities are drawn on their own (still separated).
  var CLUSTER_PX = 60;
  // a popup is its content's width plus the content's margins (facilitymap.css) and border
  var POPUP_MARGINS_PX = 52;
  /** Height of a popup's tip below its box, with a little room, CSS pixels. */
  var POPUP_TIP_PX = 30;
  var UNCLUSTER_ZOOM = 17;
  var MARKER_PX = 20;
  var GAP_PX = 2;

  function badgeSize(count) {
    return count < 10 ? 36 : count < 100 ? 40 : count < 1000 ? 46 : count < 10000 ? 52 : 58;
  }

  /** A conic gradient of the kinds' colours (CSS variables --fm-c-KIND) by their counts. */
  function mixBackground(kindCounts, doc) {
    var total = 0;
    kindCounts.forEach(function (c) {
      total += c;
    });
    var stops = [];
    var start = 0;
    doc.kinds.forEach(function (kind, k) {
      if (kindCounts[k] > 0) {
        var end = start + (360 * kindCounts[k]) / total;
        stops.push("var(--fm-c-" + kind.key + ") " + start.toFixed(1) + "deg " + end.toFixed(1) + "deg");
        start = end;
      }
    });
    return "conic-gradient(" + stops.join(", ") + ")";
  }

  function clusterIcon(doc, item) {
    var size = badgeSize(item.count);
    var badge = el("div", "fm-badge");
    badge.style.background = mixBackground(item.kinds, doc);
    badge.appendChild(el("span", null, String(item.count)));
    return L.divIcon({ html: badge, className: "fm-cluster", iconSize: L.point(size, size) });
  }

  function markerIcon(kind, closed) {
    return L.divIcon({
      className: "fm-marker " + kindClasses(kind) + (closed ? " fm-closed" : ""),
      iconSize: [MARKER_PX, MARKER_PX],
      iconAnchor: [MARKER_PX / 2, MARKER_PX / 2],
      popupAnchor: [0, -MARKER_PX / 2],
    });
  }

  function radiusOf(item) {
    return (item.count === 1 ? MARKER_PX : badgeSize(item.count)) / 2;
  }

  /**
   * Merge items (clusters and single facilities at pixel positions x, y) until no two boxes
   * meet; the bigger item absorbs the smaller and moves to their weighted centre.
   */
  function separate(items, map, z) {
    items.sort(function (a, b) {
      return b.count - a.count;
    });
    for (var pass = 0; pass < 20; pass++) {
      var kept = [];
      var merged = false;
      for (var i = 0; i < items.length; i++) {
        var item = items[i];
        var r = radiusOf(item);
        var host = null;
        for (var j = 0; j < kept.length; j++) {
          var other = kept[j];
          var reach = r + radiusOf(other) + GAP_PX;
          if (Math.abs(other.x - item.x) < reach && Math.abs(other.y - item.y) < reach) {
            host = other;
            break;
          }
        }
        if (host === null) {
          kept.push(item);
          continue;
        }
        merged = true;
        var total = host.count + item.count;
        host.x = (host.x * host.count + item.x * item.count) / total;
        host.y = (host.y * host.count + item.y * item.count) / total;
        host.count = total;
        host.kinds = host.kinds.map(function (c, k) {
          return c + item.kinds[k];
        });
        host.clusters = host.clusters.concat(item.clusters);
        host.singles = host.singles.concat(item.singles);
      }
      items = kept;
      if (!merged) {
        break;
      }
    }
    items.forEach(function (item) {
      var at = map.unproject([item.x, item.y], z);
      item.lat = at.lat;
      item.lng = at.lng;
    });
    return items;
  }

  var FacilityLayer = L.Layer.extend({
    initialize: function (state) {
      this._state = state;
    },

    onAdd: function (map) {
      this._layers = L.layerGroup().addTo(map);
      map.on("moveend", this.redraw, this);
      this.redraw();
    },

    onRemove: function (map) {
      map.off("moveend", this.redraw, this);
      this._layers.remove();
    },

    /** What is drawn at zoom z in bounds: {lat, lng, count, kinds, clusters, singles}. */
    itemsAt: function (z, bounds) {
      var s = this._state;
      var map = this._map;
      var west = Math.max(bounds.getWest(), -180);
      var east = Math.min(bounds.getEast(), 180);
      var found = s.index.getClusters([west, bounds.getSouth(), east, bounds.getNorth()], z);
      var items = found.map(function (f) {
        var c = f.geometry.coordinates;
        var p = map.project([c[1], c[0]], z);
        var props = f.properties;
        if (props.cluster) {
          return {
            x: p.x, y: p.y, count: props.point_count,
            kinds: s.doc.kinds.map(function (kind, k) {
              return props["k" + k];
            }),
            clusters: [props.cluster_id], singles: [],
          };
        }
        return {
          x: p.x, y: p.y, count: 1, kinds: oneHot(s.doc.kinds.length, s.doc.data.kind[props.i]),
          clusters: [], singles: [props.i],
        };
      });
      return separate(items, map, z);
    },

    redraw: function () {
      var map = this._map;
      if (!map) {
        return;
      }
      var z = map.getZoom();
      var s = this._state;
      var items = this.itemsAt(z, map.getBounds().pad(0.2));
      var layers = items.map(function (item) {
        if (item.count === 1) {
          return s.markerFor(item.singles[0]);
        }
        return s.clusterMarker(item, z);
      });
      this._layers.clearLayers();
      layers.forEach(function (layer) {
        this._layers.addLayer(layer);
      }, this);
    },
  });

  function oneHot(n, k) {
    var out = new Array(n).fill(0);
    out[k] = 1;
    return out;
  }

  // ---- the nearby panel ----
  function formatDistance(labels, metres) {
    if (metres < 1000) {
      return fill(labels.metres, String(Math.round(metres)));
    }
    return fill(labels.kilometres, (metres / 1000).toFixed(1));
  }

  var OPEN_STATES = { unknown: 0, open: STATE_OPEN, closed: STATE_CLOSED };

  function buildPanel(map, state) {
    var doc = state.doc;
    var L10N = doc.labels;
    var panel = el("section", "fm-panel");
    // without a service to ask (a standalone file) the panel only searches
    var title = doc.nearby ? L10N.nearby : L10N.find;
    panel.setAttribute("aria-label", title);
    var head = el("div", "fm-panel-head");
    head.appendChild(el("h2", "fm-panel-title", title));
    var fold = button("fm-fold", L10N.fold);
    fold.setAttribute("aria-expanded", "true");
    head.appendChild(fold);
    panel.appendChild(head);
    var body = el("div", "fm-panel-body");
    panel.appendChild(body);

    var tabs = el("div", "fm-tabs");
    tabs.setAttribute("role", "tablist");
    var choices = [{ k: -1, label: L10N.all_kinds }];
    doc.kinds.forEach(function (kind, k) {
      if (kind.count > 0) {
        choices.push({ k: k, label: kind.label, kind: kind });
      }
    });
    var tabButtons = choices.map(function (choice) {
      var tab = button("fm-tab", choice.label);
      tab.setAttribute("role", "tab");
      tab.setAttribute("aria-selected", String(choice.k === -1));
      if (choice.kind) {
        tab.insertBefore(el("span", "fm-swatch " + kindClasses(choice.kind)), tab.firstChild);
      }
      L.DomEvent.on(tab, "click", function () {
        tabButtons.forEach(function (other) {
          other.setAttribute("aria-selected", String(other === tab));
        });
        state.setFilter({ kind: choice.k });
      });
      tabs.appendChild(tab);
      return tab;
    });
    body.appendChild(tabs);

    var tools = el("div", "fm-tools");
    var toggle = el("label", "fm-toggle");
    var openNow = el("input", "fm-open-now");
    openNow.type = "checkbox";
    toggle.appendChild(openNow);
    toggle.appendChild(el("span", null, L10N.open_now));
    L.DomEvent.on(openNow, "change", function () {
      state.setFilter({ openNow: openNow.checked });
    });
    tools.appendChild(toggle);
    var search = el("input", "fm-search");
    search.type = "search";
    search.placeholder = L10N.search;
    search.setAttribute("aria-label", L10N.search_label);
    search.setAttribute("enterkeyhint", "search");
    tools.appendChild(search);
    body.appendChild(tools);

    var message = el("p", "fm-list-message");
    body.appendChild(message);
    var list = el("ol", "fm-list");
    body.appendChild(list);

    function setFolded(folded) {
      panel.classList.toggle("fm-folded", folded);
      fold.textContent = folded ? L10N.unfold : L10N.fold;
      fold.setAttribute("aria-expanded", String(!folded));
    }
    L.DomEvent.on(fold, "click", function () {
      setFolded(!panel.classList.contains("fm-folded"));
    });
    var typing = null;
    L.DomEvent.on(search, "input", function () {
      clearTimeout(typing);
      typing = setTimeout(state.refreshList, 150);
    });
    L.DomEvent.disableClickPropagation(panel);
    L.DomEvent.disableScrollPropagation(panel);
    L.DomEvent.on(panel, "keydown keyup keypress", L.DomEvent.stopPropagation);
    map.getContainer().appendChild(panel);
    return { panel: panel, list: list, message: message, search: search, setFolded: setFolded };
  }

  /** One entry of the list: name, kind, distance and walk (when known), state, address. */
  function listEntry(state, entry) {
    var doc = state.doc;
    var L10N = doc.labels;
    var item = el("li");
    var target = button("fm-item");
    target.appendChild(el("span", "fm-item-name", entry.name));
    var meta = el("span", "fm-item-meta");
    var kind = doc.kinds[entry.kind];
    meta.appendChild(el("span", "fm-swatch " + kindClasses(kind)));
    var parts = [kind.label];
    if (entry.distance_m !== undefined) {
      parts.push(formatDistance(L10N, entry.distance_m));
      parts.push(fill(L10N.walk_minutes, String(Math.max(1, Math.round(entry.walk_s / 60)))));
    }
    meta.appendChild(document.createTextNode(parts.join(" · ")));
    target.appendChild(meta);
    // /nearest's open state is of this minute; the page's (and its next change) of when the
    // page was built: the page's line is shown only while the two agree
    var code = OPEN_STATES[entry.open_state];
    if (entry.index !== undefined && (code === undefined || code === stateOf(doc.data.flags[entry.index]))) {
      target.appendChild(stateLine(doc, entry.index));
    } else {
      var line = el("span", "fm-state-line");
      line.appendChild(el("span", "fm-state " + STATE_CLASSES[code || 0], doc.states[code || 0]));
      target.appendChild(line);
    }
    var live = (state.live && state.live.get(entry.id)) || entry.live;
    if (live) {
      target.appendChild(liveLine(doc, live));
    }
    if (entry.address) {
      target.appendChild(el("span", "fm-item-address", entry.address));
    }
    if (entry.entry >= 0) {
      target.appendChild(el("span", "fm-item-entry", doc.entry_methods[entry.entry]));
    }
    if (entry.id) {
      target.setAttribute("data-id", entry.id);
    }
    L.DomEvent.on(target, "click", function () {
      state.showFacility(entry);
    });
    item.appendChild(target);
    return item;
  }

  /**
   * Put one clustered layer of every kind into the folium feature group, the controls and the
   * nearby panel on the map. Returns a Promise of the state object, also FacilityMap.instance.
   */
  function init(map, groups, payloadId) {
    return Promise.all([readPayload(payloadId), fontsLoaded]).then(function (results) {
      var doc = results[0];
      performance.mark("fm-payload");
      if (doc.fit) {
        map.fitBounds(doc.fit, { padding: [24, 24], maxZoom: 16, animate: false });
      }
      var d = doc.data;
      var n = d.lon.length;
      region = doc.mainland;
      var positions = { lat: new Float64Array(n), lng: new Float64Array(n) };
      var gcj = doc.crs === "gcj02";
      var counts = doc.kinds.map(function () {
        return 0;
      });
      var byId = new Map();
      for (var i = 0; i < n; i++) {
        var lon = d.lon[i] / 1e6;
        var lat = d.lat[i] / 1e6;
        if (gcj) {
          var shifted = wgs84ToGcj02(lon, lat, isMainland(d.flags[i]));
          lon = shifted[0];
          lat = shifted[1];
        }
        positions.lat[i] = lat;
        positions.lng[i] = lon;
        counts[d.kind[i]] += 1;
        if (d.id[i]) {
          byId.set(d.id[i], i);
        }
      }
      var icons = doc.kinds.map(function (kind) {
        return [markerIcon(kind, false), markerIcon(kind, true)];
      });
      var markers = new Map();
      var container = map.getContainer();
      var popup = L.popup({ maxWidth: 300, minWidth: 200 });
      var sheetFoldedForPopup = false;

      function cornerSize(selector) {
        var corner = container.querySelector(selector);
        return corner ? [corner.offsetWidth, corner.offsetHeight] : [0, 0];
      }

      /**
       * Before a popup opens: on a phone, fold the bottom sheet and the legend (the popup needs
       * the height; the sheet comes back when the popup closes), and keep the popup clear of the
       * controls: as wide as the space between the left and right control columns.
       */
      function makeRoomForPopup() {
        if (ui && panelInset()[1] > 0 && !ui.panel.classList.contains("fm-folded")) {
          ui.setFolded(true);
          sheetFoldedForPopup = true;
        }
        var legend = container.querySelector(".fm-legend");
        if (legend && panelInset()[1] > 0) {
          legend.classList.add("fm-folded");
        }
        var topLeft = cornerSize(".leaflet-top.leaflet-left");
        var topRight = cornerSize(".leaflet-top.leaflet-right");
        var bottom = Math.max(
          cornerSize(".leaflet-bottom.leaflet-left")[1],
          cornerSize(".leaflet-bottom.leaflet-right")[1]
        );
        var tl, br, width;
        if (panelInset()[1] > 0) {
          // a phone: the popup spans the width, below the top controls
          tl = [10, Math.max(topLeft[1], topRight[1]) + 8];
          br = [10, panelInset()[1] + bottom + 10];
          width = container.clientWidth - 20;
        } else {
          // wide: the popup stays between the left controls and the right controls and panel
          tl = [topLeft[0] + 8, 10];
          br = [Math.max(topRight[0], panelInset()[0]) + 8, bottom + 10];
          width = container.clientWidth - tl[0] - br[0];
        }
        width = Math.max(160, Math.min(300, width - POPUP_MARGINS_PX));
        popup.options.maxWidth = width;
        // never taller than the room between the paddings: a long popup scrolls inside
        popup.options.maxHeight = Math.max(
          160,
          container.clientHeight - tl[1] - br[1] - POPUP_TIP_PX
        );
        popup.options.minWidth = Math.min(200, width);
        popup.options.autoPanPaddingTopLeft = tl;
        popup.options.autoPanPaddingBottomRight = br;
      }

      // content that grew (the report form opened, the report sent): lay the popup out again and
      // pan it clear of the controls, as when it opened
      container.addEventListener(POPUP_RESIZED, function () {
        if (popup.isOpen()) {
          popup.update();
        }
      });
      map.on("popupclose", function () {
        if (sheetFoldedForPopup) {
          sheetFoldedForPopup = false;
          ui.setFolded(false);
        }
      });
      var state = {
        map: map,
        doc: doc,
        positions: positions,
        byId: byId,
        filter: { kind: -1, openNow: false },
        index: null,
        shown: 0,
        located: L.layerGroup().addTo(map),
        me: null,
        meWgs84: null,
        nearby: null,
        live: new Map(),
        popupIndex: null,
        ready: false,
      };

      function toDisplay(lon, lat) {
        return gcj ? wgs84ToGcj02(lon, lat) : [lon, lat];
      }

      function openPopup(index) {
        var at = L.latLng(positions.lat[index], positions.lng[index]);
        makeRoomForPopup();
        state.popupIndex = index;
        popup.setLatLng(at).setContent(buildPopup(doc, index, state.live.get(d.id[index]))).openOn(map);
      }

      // the live state of doors and sensors, pushed by the service (/live, server-sent events):
      // an open popup and the list follow it
      if (doc.nearby && doc.nearby.live && window.EventSource) {
        var liveCount = 0;
        new EventSource(doc.nearby.live).addEventListener("state", function (message) {
          var live = JSON.parse(message.data);
          state.live.set(live.id, live);
          var index = byId.get(live.id);
          if (index !== undefined && index === state.popupIndex && popup.isOpen()) {
            // only the live line changes: a report being written in the popup stays
            var shown = popup.getContent();
            var old = shown && shown.querySelector ? shown.querySelector(".fm-live") : null;
            if (old) {
              old.parentNode.replaceChild(liveLine(doc, live), old);
            } else if (!(shown && shown.querySelector && shown.querySelector(".fm-report-form"))) {
              popup.setContent(buildPopup(doc, index, live));
            }
          }
          if (ui && state.nearby && state.nearby.indexOf(live.id) >= 0) {
            state.refreshList();
          }
          container.setAttribute("data-fm-live", String(++liveCount));
        });
      }

      state.markerFor = function (index) {
        var marker = markers.get(index);
        if (marker === undefined) {
          marker = L.marker([positions.lat[index], positions.lng[index]], {
            icon: icons[d.kind[index]][stateOf(d.flags[index]) === STATE_CLOSED ? 1 : 0],
            title: d.name[index],
          });
          marker.on("click", function () {
            openPopup(index);
          });
          markers.set(index, marker);
        }
        return marker;
      };

      /** A group of facilities too close to tell apart at the deepest zoom: a list popup. */
      function groupPopup(item) {
        var box = el("div", "fm-popup fm-group");
        box.appendChild(el("div", "fm-name", fill(doc.labels.group, String(item.count))));
        var entries = el("ol", "fm-list");
        item.singles.forEach(function (index) {
          entries.appendChild(
            listEntry(state, {
              index: index, id: d.id[index], name: d.name[index], kind: d.kind[index],
              address: d.addr[index], entry: d.entry[index],
            })
          );
        });
        box.appendChild(entries);
        makeRoomForPopup();
        popup.setLatLng([item.lat, item.lng]).setContent(box).openOn(map);
      }

      state.clusterMarker = function (item, z) {
        var title = doc.kinds
          .map(function (kind, k) {
            return item.kinds[k] ? kind.label + " " + item.kinds[k] : null;
          })
          .filter(Boolean)
          .join(doc.labels.list_separator);
        var marker = L.marker([item.lat, item.lng], {
          icon: clusterIcon(doc, item),
          title: title,
          riseOnHover: true,
        });
        marker.on("click", function () {
          if (z >= map.getMaxZoom() && item.clusters.length === 0) {
            groupPopup(item);
            return;
          }
          var target = z + 1;
          if (item.clusters.length === 1 && item.singles.length === 0) {
            target = Math.max(target, state.index.getClusterExpansionZoom(item.clusters[0]));
          }
          map.setView([item.lat, item.lng], Math.min(target, map.getMaxZoom()));
        });
        return marker;
      };

      function rebuildIndex() {
        var k = state.filter.kind;
        var features = [];
        for (var j = 0; j < n; j++) {
          if ((k < 0 || d.kind[j] === k) && (!state.filter.openNow || stateOf(d.flags[j]) === STATE_OPEN)) {
            features.push({
              type: "Feature",
              properties: { i: j },
              geometry: { type: "Point", coordinates: [positions.lng[j], positions.lat[j]] },
            });
          }
        }
        // cluster properties hold one number per kind ("k0", "k1", ...): supercluster copies
        // them shallowly from zoom to zoom, so an array would be shared and counted twice
        var kinds = doc.kinds.length;
        state.index = new Supercluster({
          radius: CLUSTER_PX,
          extent: 256,
          maxZoom: UNCLUSTER_ZOOM - 1,
          map: function (props) {
            var out = {};
            for (var q = 0; q < kinds; q++) {
              out["k" + q] = d.kind[props.i] === q ? 1 : 0;
            }
            return out;
          },
          reduce: function (into, props) {
            for (var q = 0; q < kinds; q++) {
              into["k" + q] += props["k" + q];
            }
          },
        });
        state.index.load(features);
        state.shown = features.length;
      }

      /** Space the panel covers at the bottom (phone) or right (desktop), pixels [x, y]. */
      function panelInset() {
        if (!ui || ui.panel.offsetParent === null) {
          return [0, 0];
        }
        var box = ui.panel.getBoundingClientRect();
        var area = container.getBoundingClientRect();
        if (box.width >= area.width - 1) {
          return [0, area.bottom - box.top];
        }
        return [area.right - box.left, 0];
      }

      state.showFacility = function (entry) {
        var at;
        if (entry.index !== undefined) {
          at = L.latLng(positions.lat[entry.index], positions.lng[entry.index]);
        } else {
          var shown = toDisplay(entry.lon, entry.lat);
          at = L.latLng(shown[1], shown[0]);
        }
        var inset = panelInset();
        map.setView(at, Math.max(map.getZoom(), UNCLUSTER_ZOOM), { animate: false });
        map.panBy([inset[0] / 2, inset[1] / 2], { animate: false });
        if (entry.index !== undefined) {
          openPopup(entry.index);
        }
      };

      state.setMe = function (lon, lat, accuracy) {
        var shown = toDisplay(lon, lat);
        var latlng = L.latLng(shown[1], shown[0]);
        state.located.clearLayers();
        if (accuracy) {
          L.circle(latlng, { radius: accuracy, className: "fm-accuracy", interactive: false })
            .addTo(state.located);
        }
        L.circleMarker(latlng, { radius: 8, className: "fm-me", interactive: false })
          .addTo(state.located);
        state.me = latlng;
        state.meWgs84 = [lon, lat];
        state.refreshList({ fit: true });
      };

      var ui = null;
      var asked = 0;

      function showEntries(entries, text) {
        ui.list.textContent = "";
        ui.message.textContent = text;
        entries.forEach(function (entry) {
          ui.list.appendChild(listEntry(state, entry));
        });
      }

      function searchEntries(text) {
        var needle = text.toLowerCase();
        var found = [];
        for (var j = 0; j < n && found.length < 20; j++) {
          var k = state.filter.kind;
          if (k >= 0 && d.kind[j] !== k) {
            continue;
          }
          if (state.filter.openNow && stateOf(d.flags[j]) !== STATE_OPEN) {
            continue;
          }
          if (d.name[j].toLowerCase().indexOf(needle) >= 0 || d.addr[j].toLowerCase().indexOf(needle) >= 0) {
            found.push({ index: j, id: d.id[j], name: d.name[j], kind: d.kind[j], address: d.addr[j], entry: d.entry[j] });
          }
        }
        return found;
      }

      function nearbyUrl() {
        var query = new URLSearchParams();
        query.set("lon", state.meWgs84[0].toFixed(7));
        query.set("lat", state.meWgs84[1].toFixed(7));
        query.set("crs", "wgs84");
        query.set("k", String(doc.nearby.k));
        var kinds = state.filter.kind >= 0 ? [doc.kinds[state.filter.kind].key] : doc.nearby.kind;
        if (state.filter.kind >= 0 || kinds.length < doc.kinds.length) {
          kinds.forEach(function (key) {
            query.append("kind", key);
          });
        }
        doc.nearby.amenity.forEach(function (key) {
          query.append("amenity", key);
        });
        if (state.filter.openNow) {
          query.set("open_now", "true");
        }
        return doc.nearby.url + "?" + query.toString();
      }

      function kindCode(key) {
        for (var k = 0; k < doc.kinds.length; k++) {
          if (doc.kinds[k].key === key) {
            return k;
          }
        }
        return 0;
      }

      /** The list: search results, else the /nearest answer for the viewer's position. */
      state.refreshList = function (options) {
        var ask = ++asked;
        var text = ui.search.value.trim();
        if (text) {
          var found = searchEntries(text);
          showEntries(found, found.length ? "" : doc.labels.no_results);
          return Promise.resolve(found);
        }
        if (!doc.nearby || state.meWgs84 === null) {
          showEntries([], doc.nearby ? doc.labels.locate_hint : "");
          return Promise.resolve([]);
        }
        container.setAttribute("data-fm-nearby", "loading");
        return fetch(nearbyUrl(), { headers: { Accept: "application/geo+json" }, credentials: "same-origin" })
          .then(function (response) {
            if (!response.ok) {
              throw new Error("HTTP " + response.status);
            }
            return response.json();
          })
          .then(function (answer) {
            if (ask !== asked) {
              return null;
            }
            var entries = answer.features.map(function (f) {
              var p = f.properties;
              return {
                index: byId.get(String(f.id)), id: String(f.id), name: p.name, kind: kindCode(p.kind),
                address: p.address, entry: doc.entry_keys.indexOf(p.entry_method),
                distance_m: p.distance_m, walk_s: p.walk_s_est,
                open_state: p.open_state, lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1],
                live: p.live_state ? p : undefined,
              };
            });
            state.nearby = entries.map(function (e) {
              return e.id;
            });
            showEntries(entries, entries.length ? "" : doc.labels.no_results);
            if (options && options.fit && entries.length) {
              var bounds = L.latLngBounds([state.me]);
              entries.forEach(function (e) {
                var shown = e.index !== undefined ? [positions.lng[e.index], positions.lat[e.index]] : toDisplay(e.lon, e.lat);
                bounds.extend([shown[1], shown[0]]);
              });
              var inset = panelInset();
              map.fitBounds(bounds, {
                paddingTopLeft: [60, 60],
                paddingBottomRight: [40 + inset[0], 40 + inset[1]],
                maxZoom: UNCLUSTER_ZOOM,
                animate: false,
              });
            }
            container.setAttribute("data-fm-nearby", "ready");
            return entries;
          })
          .catch(function () {
            if (ask === asked) {
              showEntries([], doc.labels.nearby_failed);
              container.setAttribute("data-fm-nearby", "failed");
            }
            return [];
          });
      };

      state.setFilter = function (change) {
        Object.keys(change).forEach(function (key) {
          state.filter[key] = change[key];
        });
        rebuildIndex();
        state.layer.redraw();
        return state.refreshList();
      };

      FacilityMap.instance = state;
      rebuildIndex();
      state.layer = new FacilityLayer(state);
      groups[0].addLayer(state.layer);
      var narrow = container.clientWidth < 600;
      legendControl(doc, counts, narrow).addTo(map);
      locateControl(map, state).addTo(map);
      L.control.scale({ metric: true, imperial: false }).addTo(map);
      // Leaflet 1.9's prefix carries a flag; the attribution names the library without one
      map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
      doc.attributions.forEach(function (text) {
        // attribution HTML: pass the text through a text node to escape it
        map.attributionControl.addAttribution(el("span", null, text).outerHTML);
      });
      ui = buildPanel(map, state);
      if (window.ResizeObserver) {
        // on a phone the panel is a bottom sheet: lift the bottom controls above it
        new ResizeObserver(function () {
          container.style.setProperty("--fm-inset-bottom", panelInset()[1] + "px");
        }).observe(ui.panel);
      }
      if (doc.origin) {
        state.setMe(doc.origin[0], doc.origin[1], 0);
      } else {
        state.refreshList();
      }
      state.ready = true;
      performance.mark("fm-ready");
      state.readyMs = performance.now();
      container.setAttribute("data-fm-ready", "1");
      return state;
    });
  }

  window.FacilityMap = {
    init: init,
    wgs84ToGcj02: wgs84ToGcj02,
    wgs84ToBd09: wgs84ToBd09,
    gcj02ToBd09: gcj02ToBd09,
    navigationLinks: navigationLinks,
    inMainland: inMainland,
    CLUSTER_PX: CLUSTER_PX,
    UNCLUSTER_ZOOM: UNCLUSTER_ZOOM,
    instance: null,
  };
})();
