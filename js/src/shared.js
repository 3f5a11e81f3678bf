// yeswidget shared front-end code: number formatting and the zone lookup.
//
// The zone colours and words are NOT defined here: Python sends them in each
// widget's synced `zones` trait (yeswidget/core/zones.py, zone_definitions()),
// and `zoneTable(model.get("zones"))` reads them.
//
// anywidget loads a widget's `_esm` as one module, so this file is not
// imported at run time: Python puts its text in front of each widget module
// (yeswidget/widgets/tables.py, `compose_esm`) and drops the module's
// `import ... from "./shared.js"` line. Node's unit tests import it directly.

/** Shown for "no value". */
export const DASH = "\u2013"; // en dash

/**
 * A finite-or-infinite number, or null for "no value" (null, undefined, "",
 * NaN, booleans, non-numeric text). Python sends non-finite floats as the
 * strings "NaN" / "Infinity" / "-Infinity"; Number() parses those.
 */
export function toNumber(value) {
  if (value === null || value === undefined || value === "" || typeof value === "boolean") {
    return null;
  }
  const number = typeof value === "number" ? value : Number(value);
  return Number.isNaN(number) ? null : number;
}

/**
 * The number formats: Python sends them in each widget's synced `formats` trait
 * (yeswidget/core/formats.py, format_definitions()); `formatsOf(model.get("formats"))`
 * reads them. FORMAT_FALLBACK only serves a model that has no such trait.
 */
export const FORMAT_FALLBACK = Object.freeze({ db_decimals: 1, lr_significant: 3 });

/** `{db_decimals, lr_significant}` from the `formats` trait (bad or missing fields: the fallback). */
export function formatsOf(definitions) {
  const given = isObject(definitions) ? definitions : {};
  const pick = (key, low, high) => {
    const value = given[key];
    return Number.isInteger(value) && value >= low && value <= high ? value : FORMAT_FALLBACK[key];
  };
  return { db_decimals: pick("db_decimals", 0, 6), lr_significant: pick("lr_significant", 1, 8) };
}

/** A value in dB, e.g. `-12.3 dB` (decimals from `formats`); `±∞ dB`; a dash for no value. */
export function formatDb(value, formats = FORMAT_FALLBACK) {
  const number = toNumber(value);
  if (number === null) return DASH;
  if (number === Infinity) return "+\u221e dB";
  if (number === -Infinity) return "-\u221e dB";
  const decimals = formatsOf(formats).db_decimals;
  const rounded = Math.abs(number) < 0.5 * 10 ** -decimals ? 0 : number; // no "-0.0"
  return `${rounded.toFixed(decimals)} dB`;
}

/** A learning rate as `1e-3`, `2.5e-4`, `0` (at most `formats.lr_significant` significant digits). */
export function formatLr(value, formats = FORMAT_FALLBACK) {
  const number = toNumber(value);
  if (number === null) return DASH;
  if (number === 0) return "0";
  if (!Number.isFinite(number)) return number > 0 ? "inf" : "-inf";
  const [mantissa, exponent] = number.toExponential(formatsOf(formats).lr_significant - 1).split("e");
  return `${Number(mantissa)}e${Number(exponent)}`;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The zone lookup built from the `zones` trait, i.e. Python's
 * `zone_definitions()`: `{order: [...], band_opacity, zones: {name: {name,
 * band, edge, word, meaning, code}}}`. Malformed or missing input gives an
 * empty table (every zone unknown: drawn as "no zone"), never an exception.
 *
 * - `order`: the zone names, bad to good, then "no verdict" (Python's VERDICTS);
 * - `style(name)`: that zone's style object, or null for an unknown name;
 * - `color(name)`: its band colour (the paper's), or null;
 * - `label(name)`: the word to show: the zone's name, or for a zone without
 *   a verdict (code < 0, e.g. "none") its word ("no verdict"); null if unknown;
 * - `severity(name)`: how bad the zone is: red > yellow > green > no verdict
 *   > unknown (0); the worst zone of a group has the highest severity;
 * - `rank(name)`: sort key, bad to good (the zone's code); null for no
 *   verdict and unknown names (they sort last, like missing values).
 */
export function zoneTable(definitions) {
  const source = isObject(definitions) && isObject(definitions.zones) ? definitions.zones : {};
  const styles = new Map();
  for (const [name, style] of Object.entries(source)) {
    if (isObject(style) && typeof style.band === "string" && Number.isFinite(style.code)) {
      styles.set(name, Object.freeze({ ...style, name }));
    }
  }
  const given = isObject(definitions) && Array.isArray(definitions.order) ? definitions.order : [];
  const order = given.filter((name) => styles.has(name));
  for (const name of styles.keys()) if (!order.includes(name)) order.push(name);
  const codes = [...styles.values()].map((style) => style.code);
  const best = codes.length > 0 ? Math.max(...codes) : 0;

  const style = (name) => (typeof name === "string" && styles.has(name) ? styles.get(name) : null);
  return Object.freeze({
    order: Object.freeze(order),
    style,
    color: (name) => style(name)?.band ?? null,
    label: (name) => {
      const found = style(name);
      if (found === null) return null;
      return found.code < 0 && typeof found.word === "string" ? found.word : found.name;
    },
    severity: (name) => {
      const found = style(name);
      if (found === null) return 0;
      return found.code < 0 ? 1 : 2 + best - found.code;
    },
    rank: (name) => {
      const found = style(name);
      return found === null || found.code < 0 ? null : found.code;
    },
  });
}
