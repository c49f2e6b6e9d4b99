/*
 * Facility map (maps.webmap.facility_map): grid-clustered markers per kind, lazy popups,
 * a legend and a "locate me" control, on a Leaflet map built by folium.
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

  var STATE_CLASSES = ["fm-unknown", "fm-open", "fm-closed"];
  // payload "flags": bits 0-1 the open state (0 unknown, 1 open, 2 closed), bit 2 mainland China,
  // bit 3 the open state rests on the provisional holiday calendar
  function stateOf(flags) {
    return flags & 3;
  }
  function isMainland(flags) {
    return (flags & 4) !== 0;
  }

  function buildPopup(doc, i) {
    var d = doc.data;
    var L10N = doc.labels;
    var lon = d.lon[i] / 1e6;
    var lat = d.lat[i] / 1e6;
    var box = el("div", "fm-popup");
    box.appendChild(el("div", "fm-name", d.name[i]));
    var kind = doc.kinds[d.kind[i]];
    var meta = el("div", "fm-meta");
    var swatch = el("span", "fm-swatch fm-k-" + kind.key);
    meta.appendChild(swatch);
    meta.appendChild(document.createTextNode(kind.label + " · " + doc.access[d.access[i]]));
    box.appendChild(meta);
    row(box, L10N.address, d.addr[i]);

    var hours = el("span");
    var state = stateOf(d.flags[i]);
    hours.appendChild(el("span", "fm-state " + STATE_CLASSES[state], doc.states[state]));
    var expr = d.hours[i] >= 0 ? d.hours_values[d.hours[i]] : L10N.no_hours;
    hours.appendChild(el("span", "fm-hours", expr));
    if ((d.flags[i] & 8) !== 0) {
      hours.appendChild(el("div", "fm-provisional", L10N.provisional));
    }
    row(box, L10N.hours, hours);

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
    return box;
  }

  // ---- controls ----
  function legendControl(doc, counts) {
    var control = L.control({ position: "bottomleft" });
    control.onAdd = function () {
      var box = el("div", "fm-legend leaflet-control");
      box.appendChild(el("div", "fm-legend-title", doc.labels.legend));
      doc.kinds.forEach(function (kind, k) {
        var line = el("div", "fm-legend-row");
        line.appendChild(el("span", "fm-swatch fm-k-" + kind.key));
        line.appendChild(el("span", "fm-legend-label", kind.label));
        line.appendChild(el("span", "fm-legend-count", String(counts[k])));
        box.appendChild(line);
      });
      var closed = el("div", "fm-legend-row");
      closed.appendChild(el("span", "fm-swatch fm-k-" + doc.kinds[0].key + " fm-closed"));
      closed.appendChild(el("span", "fm-legend-label", doc.labels.closed_now));
      box.appendChild(closed);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    return control;
  }

  function locateControl(map, doc, state) {
    var control = L.control({ position: "topleft" });
    control.onAdd = function () {
      var box = el("div", "fm-locate leaflet-bar leaflet-control");
      var button = el("button", "fm-locate-button", doc.labels.locate);
      button.type = "button";
      button.title = doc.labels.locate_title;
      var message = el("div", "fm-locate-message");
      box.appendChild(button);
      box.appendChild(message);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(button, "click", function () {
        if (!navigator.geolocation) {
          message.textContent = doc.labels.locate_unavailable;
          return;
        }
        message.textContent = doc.labels.locating;
        navigator.geolocation.getCurrentPosition(
          function (position) {
            message.textContent = "";
            var lon = position.coords.longitude;
            var lat = position.coords.latitude;
            var shown = doc.crs === "gcj02" ? wgs84ToGcj02(lon, lat) : [lon, lat];
            var latlng = L.latLng(shown[1], shown[0]);
            state.located.clearLayers();
            L.circle(latlng, {
              radius: position.coords.accuracy || 0,
              className: "fm-accuracy",
              interactive: false,
            }).addTo(state.located);
            L.circleMarker(latlng, { radius: 8, className: "fm-me", interactive: false }).addTo(
              state.located
            );
            state.located.addTo(map);
            state.me = latlng;
            map.setView(latlng, Math.max(map.getZoom(), 16));
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
  // Leaflet.markercluster builds a cluster tree for every zoom level as markers are added:
  // 100,000 markers take many seconds. This layer clusters on a pixel grid instead, for the
  // current zoom only (a few milliseconds per zoom level, cached), and draws only what is in
  // view. Points sharing a grid cell (CLUSTER_PX square) form one cluster, drawn at their mean
  // position; from UNCLUSTER_ZOOM on, every facility is drawn on its own.
  var CLUSTER_PX = 60;
  var UNCLUSTER_ZOOM = 17;

  function clusterIcon(kindKey, count) {
    var size = count < 100 ? 34 : count < 1000 ? 40 : count < 10000 ? 46 : 54;
    return L.divIcon({
      html: "<span>" + String(count) + "</span>",
      className: "fm-cluster fm-k-" + kindKey,
      iconSize: L.point(size, size),
    });
  }

  function markerIcon(kindKey, closed) {
    return L.divIcon({
      className: "fm-marker fm-k-" + kindKey + (closed ? " fm-closed" : ""),
      iconSize: [20, 20],
      iconAnchor: [10, 10],
      popupAnchor: [0, -10],
    });
  }

  var GridClusterLayer = L.Layer.extend({
    /**
     * members: indexes of the facilities of this layer; lat, lng: display positions of all
     * facilities; x, y: their Web Mercator positions in [0, 1); markerFor(i): the marker of i.
     */
    initialize: function (kindKey, members, positions, markerFor) {
      this._kind = kindKey;
      this._members = members;
      this._pos = positions;
      this._markerFor = markerFor;
      this._cache = {};
    },

    size: function () {
      return this._members.length;
    },

    onAdd: function (map) {
      this._layers = L.layerGroup().addTo(map);
      map.on("moveend", this._draw, this);
      this._draw();
    },

    onRemove: function (map) {
      map.off("moveend", this._draw, this);
      this._layers.remove();
    },

    /** Clusters at zoom z: {lat, lng, count, first, south, west, north, east} (cached). */
    clustersAt: function (z) {
      if (this._cache[z]) {
        return this._cache[z];
      }
      var p = this._pos;
      var m = this._members;
      var out = [];
      if (z >= UNCLUSTER_ZOOM) {
        for (var k = 0; k < m.length; k++) {
          var j = m[k];
          out.push({ lat: p.lat[j], lng: p.lng[j], count: 1, first: j });
        }
      } else {
        var scale = (256 * Math.pow(2, z)) / CLUSTER_PX;
        var cells = new Map();
        for (var a = 0; a < m.length; a++) {
          var i = m[a];
          var key = Math.floor(p.x[i] * scale) * 4194304 + Math.floor(p.y[i] * scale);
          var c = cells.get(key);
          if (c === undefined) {
            c = { sumLat: 0, sumLng: 0, count: 0, first: i, south: 90, west: 180, north: -90, east: -180 };
            cells.set(key, c);
            out.push(c);
          }
          var lat = p.lat[i];
          var lng = p.lng[i];
          c.sumLat += lat;
          c.sumLng += lng;
          c.count += 1;
          if (lat < c.south) c.south = lat;
          if (lat > c.north) c.north = lat;
          if (lng < c.west) c.west = lng;
          if (lng > c.east) c.east = lng;
        }
        for (var b = 0; b < out.length; b++) {
          out[b].lat = out[b].sumLat / out[b].count;
          out[b].lng = out[b].sumLng / out[b].count;
        }
      }
      this._cache[z] = out;
      return out;
    },

    _draw: function () {
      var map = this._map;
      if (!map) {
        return;
      }
      var z = map.getZoom();
      var view = map.getBounds().pad(0.2);
      var south = view.getSouth(), north = view.getNorth(), west = view.getWest(), east = view.getEast();
      var clusters = this.clustersAt(z);
      var layers = [];
      for (var i = 0; i < clusters.length; i++) {
        var c = clusters[i];
        if (c.lat < south || c.lat > north || c.lng < west || c.lng > east) {
          continue;
        }
        if (c.count === 1) {
          layers.push(this._markerFor(c.first));
        } else {
          layers.push(this._clusterMarker(c, z));
        }
      }
      this._layers.clearLayers();
      for (var k = 0; k < layers.length; k++) {
        this._layers.addLayer(layers[k]);
      }
    },

    _clusterMarker: function (c, z) {
      var map = this._map;
      var marker = L.marker([c.lat, c.lng], { icon: clusterIcon(this._kind, c.count) });
      marker.on("click", function () {
        var bounds = L.latLngBounds([c.south, c.west], [c.north, c.east]);
        var target = Math.max(z + 1, Math.min(map.getBoundsZoom(bounds), UNCLUSTER_ZOOM));
        map.setView(bounds.getCenter(), Math.min(target, map.getMaxZoom()));
      });
      return marker;
    },
  });

  /**
   * Put one clustered layer per kind (payload order) into the folium feature groups.
   * Returns a Promise of the state object, also kept as FacilityMap.instance.
   */
  function init(map, groups, payloadId) {
    return Promise.all([readPayload(payloadId), fontsLoaded]).then(function (results) {
      var doc = results[0];
      performance.mark("fm-payload");
      var d = doc.data;
      var n = d.lon.length;
      region = doc.mainland;
      var positions = {
        lat: new Float64Array(n),
        lng: new Float64Array(n),
        x: new Float64Array(n),
        y: new Float64Array(n),
      };
      var gcj = doc.crs === "gcj02";
      var perKind = doc.kinds.map(function () {
        return [];
      });
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
        var sinLat = Math.sin((lat * PI) / 180);
        positions.x[i] = (lon + 180) / 360;
        positions.y[i] = 0.5 - Math.log((1 + sinLat) / (1 - sinLat)) / (4 * PI);
        perKind[d.kind[i]].push(i);
      }
      var icons = doc.kinds.map(function (kind) {
        return [markerIcon(kind.key, false), markerIcon(kind.key, true)];
      });
      var popup = L.popup({ maxWidth: 300, minWidth: 200, autoPanPadding: [16, 16] });
      var markers = new Map();
      function markerFor(index) {
        var marker = markers.get(index);
        if (marker === undefined) {
          marker = L.marker([positions.lat[index], positions.lng[index]], {
            icon: icons[d.kind[index]][stateOf(d.flags[index]) === 2 ? 1 : 0],
            title: d.name[index],
          });
          marker.on("click", function () {
            popup.setLatLng(marker.getLatLng()).setContent(buildPopup(doc, index)).openOn(map);
          });
          markers.set(index, marker);
        }
        return marker;
      }
      var state = {
        map: map,
        doc: doc,
        positions: positions,
        markerFor: markerFor,
        layers: [],
        located: L.layerGroup(),
        me: null,
        ready: false,
      };
      FacilityMap.instance = state;
      doc.kinds.forEach(function (kind, k) {
        var layer = new GridClusterLayer(kind.key, perKind[k], positions, markerFor);
        state.layers.push(layer);
        groups[k].addLayer(layer);
      });
      legendControl(
        doc,
        perKind.map(function (list) {
          return list.length;
        })
      ).addTo(map);
      locateControl(map, doc, state).addTo(map);
      doc.attributions.forEach(function (text) {
        // attribution HTML: pass the text through a text node to escape it
        map.attributionControl.addAttribution(el("span", null, text).outerHTML);
      });
      state.ready = true;
      performance.mark("fm-ready");
      state.readyMs = performance.now();
      map.getContainer().setAttribute("data-fm-ready", "1");
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
