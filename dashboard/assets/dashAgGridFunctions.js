// Cell formats for the dashboard's tables: whole numbers with separators, fractions to one decimal.
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});
dagfuncs.odnosFormat = function (params) {
  var v = params.value;
  if (typeof v !== "number") { return v === "" ? "(none)" : v; }
  if (Number.isInteger(v)) { return v.toLocaleString("en-US"); }
  return v.toLocaleString("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
};
// A country's two-letter code shown as its English name, from the browser's own list (the code stays
// the row's value, which a click filters by).
var odnosRegions = typeof Intl !== "undefined" && Intl.DisplayNames
  ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
dagfuncs.odnosCountry = function (params) {
  var v = params.value;
  if (!v) { return "(unknown)"; }
  try { return odnosRegions ? odnosRegions.of(v) : v; } catch (e) { return v; }
};
// A grid's row id: the row's key field as a string (AG Grid warns about, and casts, any other type).
dagfuncs.odnosRowId = function (value) {
  return String(value);
};
