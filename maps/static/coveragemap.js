/*
 * Coverage map (maps.coveragemap.coverage_map), on the Leaflet map folium builds: district
 * labels, a metric scale, and a legend folded on narrow screens.
 *
 * Labels are read from the choropleth features (properties name, covered_pct, label_lon,
 * label_lat) and written with textContent, never as HTML. Where labels overlap at the current
 * zoom, the larger district's label is kept. When everything is drawn (the embedded CJK font
 * loaded, labels placed), <html> gets the attribute data-coverage-ready.
 */
(function () {
  "use strict";

  var FOLD_BELOW_PX = 600;
  var maps = [];

  L.Map.addInitHook(function () {
    maps.push(this);
  });

  function labelMarker(props) {
    var box = document.createElement("div");
    box.className = "coverage-label";
    box.setAttribute("data-adcode", String(props.adcode));
    var name = document.createElement("b");
    name.textContent = props.name;
    var share = document.createElement("span");
    share.textContent = props.covered_pct;
    box.appendChild(name);
    box.appendChild(share);
    var icon = L.divIcon({ html: box, className: "coverage-label-anchor", iconSize: null });
    return L.marker([props.label_lat, props.label_lon], {
      icon: icon,
      pane: "coverage-labels",
      interactive: false,
      keyboard: false,
    });
  }

  function overlaps(a, b) {
    return !(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top);
  }

  // show every label, then hide each one that overlaps a label of a larger district
  function declutter(labels) {
    labels.forEach(function (label) {
      label.marker.getElement().style.display = "";
    });
    var kept = [];
    labels.forEach(function (label) {
      var element = label.marker.getElement();
      var box = element.firstChild.getBoundingClientRect();
      if (kept.some(function (other) { return overlaps(box, other); })) {
        element.style.display = "none";
      } else {
        kept.push(box);
      }
    });
  }

  function addLabels(map) {
    var labels = [];
    map.eachLayer(function (layer) {
      var props = layer.feature && layer.feature.properties;
      if (props && props.label_lon !== undefined && layer.getBounds) {
        var bounds = layer.getBounds();
        var size = (bounds.getEast() - bounds.getWest()) * (bounds.getNorth() - bounds.getSouth());
        labels.push({ marker: labelMarker(props), size: size });
      }
    });
    if (!labels.length) {
      return;
    }
    map.createPane("coverage-labels").style.zIndex = 450; // above fills and gaps, below popups
    labels.sort(function (a, b) { return b.size - a.size; });
    labels.forEach(function (label) { label.marker.addTo(map); });
    declutter(labels);
    map.on("zoomend", function () { declutter(labels); });
  }

  function setUp() {
    var legend = document.querySelector(".coverage-legend");
    if (legend && window.matchMedia("(max-width: " + FOLD_BELOW_PX + "px)").matches) {
      legend.open = false;
    }
    maps.forEach(function (map) {
      L.control.scale({ imperial: false }).addTo(map);
      if (map.attributionControl) {
        map.attributionControl.setPrefix("Leaflet");
      }
    });
    var fonts = document.fonts ? document.fonts.load('bold 13px "FacilityMap CJK"', "区") : null;
    Promise.resolve(fonts).catch(function () {}).then(function () {
      maps.forEach(addLabels);
      document.documentElement.setAttribute("data-coverage-ready", "");
    });
  }

  document.addEventListener("DOMContentLoaded", setUp);
})();
