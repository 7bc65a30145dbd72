/* The 360 page's forms (sdr_console/templates/lead*.html): an htmx extension, "lead-json", that sends a form as
   the JSON body the API expects, typed where a plain form cannot say it (json-enc sends every field as a string):
     data-json="list"      the value as a one-element list ("" -> field left out)      tags: {"add": ["vip"]}
     data-json="datetime"  a datetime-local value with the browser's UTC offset ("" -> left out)   task due dates
     data-json="null"      "" -> null (clears the field)                               BANT
     data-json="omit"      "" -> left out                                              optional fields
   hx-vals on the element keep their JSON types (as with json-enc). Outcomes are shown by console.js. */
(function () {
  "use strict";
  var api;
  // Settling copies "style" attributes between the old and new copy of an element, which the CSP (no inline
  // style) reports as a violation; nothing on these pages is styled inline.
  htmx.config.attributesToSettle = ["class", "width", "height"];

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function withOffset(local) {
    var at = new Date(local);  // "2026-12-31T18:00" is read in the browser's time zone
    if (isNaN(at.getTime())) { return local; }  // the API explains what is wrong with it
    var minutes = -at.getTimezoneOffset();
    var sign = minutes >= 0 ? "+" : "-";
    minutes = Math.abs(minutes);
    return at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + "T" + pad(at.getHours()) +
      ":" + pad(at.getMinutes()) + ":00" + sign + pad(Math.floor(minutes / 60)) + ":" + pad(minutes % 60);
  }

  function typed(how, value) {
    if (how === "list") { return value === "" ? undefined : [value]; }
    if (how === "datetime") { return value === "" ? undefined : withOffset(value); }
    if (how === "null") { return value === "" ? null : value; }
    if (how === "omit") { return value === "" ? undefined : value; }
    return value;
  }

  htmx.defineExtension("lead-json", {
    init: function (apiRef) { api = apiRef; },
    onEvent: function (name, evt) {
      if (name === "htmx:configRequest") { evt.detail.headers["Content-Type"] = "application/json"; }
    },
    encodeParameters: function (xhr, parameters, elt) {
      xhr.overrideMimeType("text/json");
      var form = elt.closest("form") || elt;
      var object = {};
      parameters.forEach(function (value, key) {
        var input = form.querySelector("[name=\"" + CSS.escape(key) + "\"]");
        var value2 = typed(input ? input.getAttribute("data-json") : null, value);
        if (value2 !== undefined) { object[key] = value2; }
      });
      var vals = api.getExpressionVars(elt);
      Object.keys(vals).forEach(function (key) { object[key] = vals[key]; });
      return JSON.stringify(object);
    }
  });
})();
