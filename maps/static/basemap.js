/* The served vector base map: a restrained street map drawn by protomaps-leaflet (vendored in
 * vendor/protomaps-leaflet.js) from our own /basemap/{z}/{x}/{y}.mvt tiles (geodata/basemap.py
 * writes the layers and classes used here). Pale ground, white streets with a grey casing, muted
 * water and parks, grey labels: the facility markers are the strongest colours on the page.
 * Labels use the page's embedded CJK font ("FacilityMap CJK", see maps/assets.py) first. */
(function () {
  "use strict";
  var P = window.protomapsL;
  var FONT = '"FacilityMap CJK", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
  var INK = "#5c5853";
  var HALO = "#ffffff";

  var LANDUSE = {
    park: "#dcead2",
    wood: "#d3e4c8",
    grass: "#e1ecd8",
    industrial: "#ebe7e3",
    commercial: "#f0eae4",
    education: "#efe9dc",
  };
  // road class: [first display zoom, width at zoom 16 (px), fill, casing]
  var ROADS = {
    motorway: [6, 9, "#fbecc8", "#e3c27e"],
    trunk: [6, 8, "#fbecc8", "#e3c27e"],
    primary: [8, 8, "#ffffff", "#cfc8bf"],
    secondary: [10, 7, "#ffffff", "#d3ccc3"],
    tertiary: [11, 6, "#ffffff", "#d7d1c9"],
    minor: [12, 4.5, "#ffffff", "#dcd6cf"],
    service: [13, 2.5, "#ffffff", "#dcd6cf"],
    path: [14, 1.2, "#e9e4dc", null],
  };
  var ORDER = ["path", "service", "minor", "tertiary", "secondary", "primary", "trunk", "motorway"];

  function cls(f) {
    return f.props["class"];
  }
  function is(value) {
    return function (z, f) {
      return cls(f) === value;
    };
  }
  // width halves every zoom out from 16, but never below a hairline
  function scaled(w16, least) {
    return function (z) {
      return Math.max(least, w16 * Math.pow(2, (z - 16) * 0.75));
    };
  }

  function paintRules() {
    var rules = [
      { dataLayer: "landuse", symbolizer: new P.PolygonSymbolizer({
        fill: function (z, f) { return LANDUSE[cls(f)] || "#ece9e4"; } }) },
      { dataLayer: "water", symbolizer: new P.PolygonSymbolizer({ fill: "#c6dbe9" }) },
      { dataLayer: "waterways", symbolizer: new P.LineSymbolizer({
        color: "#b3cfe3", width: function (z, f) {
          return cls(f) === "river" ? scaled(6, 1)(z) : scaled(2, 0.6)(z); } }) },
      { dataLayer: "buildings", symbolizer: new P.PolygonSymbolizer({
        fill: "#e4dfd8", opacity: 0.9, stroke: "#d8d1c8", width: 0.5 }) },
    ];
    ORDER.forEach(function (name) { // casings under every fill
      var r = ROADS[name];
      if (r[3]) {
        rules.push({ dataLayer: "roads", minzoom: r[0], filter: is(name),
          symbolizer: new P.LineSymbolizer({ color: r[3], width: function (z) {
            return scaled(r[1], 0.8)(z) + (z >= 13 ? 1.5 : 0.5); } }) });
      }
    });
    ORDER.forEach(function (name) {
      var r = ROADS[name];
      rules.push({ dataLayer: "roads", minzoom: r[0], filter: is(name),
        symbolizer: new P.LineSymbolizer({ color: r[2], width: scaled(r[1], 0.6) }) });
    });
    rules.push(
      { dataLayer: "railways", filter: is("rail"), symbolizer: new P.LineSymbolizer({
        color: "#b9b3ac", width: scaled(2.5, 1), dash: [6, 4], dashColor: "#ffffff", dashWidth: 1 }) },
      { dataLayer: "railways", filter: function (z, f) { return cls(f) !== "rail"; },
        symbolizer: new P.LineSymbolizer({ color: "#a9a2c0", width: scaled(2, 0.8), dash: [4, 3] }) }
    );
    return rules;
  }

  function labelRules() {
    var text = { labelProps: ["name"], fill: INK, stroke: HALO, width: 3 };
    function font(size, weight) {
      return (weight || "") + " " + size + "px " + FONT;
    }
    return [
      { dataLayer: "places", filter: function (z, f) {
          return ["city", "district", "town"].indexOf(cls(f)) >= 0; },
        symbolizer: new P.CenteredTextSymbolizer(Object.assign({}, text, {
          font: font(15, "600"), fill: "#4a4642" })) },
      { dataLayer: "places", minzoom: 12, filter: function (z, f) {
          return ["city", "district", "town"].indexOf(cls(f)) < 0; },
        symbolizer: new P.CenteredTextSymbolizer(Object.assign({}, text, {
          font: font(13), fill: "#6d6862" })) },
      { dataLayer: "roads", minzoom: 13, filter: function (z, f) {
          return ["motorway", "trunk", "primary", "secondary", "tertiary", "minor"]
            .indexOf(cls(f)) >= 0; },
        symbolizer: new P.LineLabelSymbolizer(Object.assign({}, text, {
          font: function (z) { return font(z >= 16 ? 13 : 12); } })) },
      { dataLayer: "waterways", minzoom: 13, symbolizer: new P.LineLabelSymbolizer(
        Object.assign({}, text, { font: font(12), fill: "#5a86a8" })) },
      { dataLayer: "railways", minzoom: 14, symbolizer: new P.LineLabelSymbolizer(
        Object.assign({}, text, { font: font(11), fill: "#7d7596" })) },
    ];
  }

  /* Add the base map under everything else of `map`.
   * options: url (tile URL template), maxDataZoom, attribution (HTML). */
  function add(map, options) {
    var layer = P.leafletLayer({
      url: options.url,
      maxDataZoom: options.maxDataZoom,
      attribution: options.attribution,
      paintRules: paintRules(),
      labelRules: labelRules(),
      backgroundColor: "#f3f1ed",
      // wait for the embedded CJK font, so no label is drawn with a fallback font (tofu)
      tasks: document.fonts ? [document.fonts.load("12px " + FONT, "路")] : [],
    });
    layer.addTo(map);
    layer.bringToBack();
    return layer;
  }

  window.FacilityBasemap = { add: add };
})();
