// yeswidget zone timeline: a badge with the current zone and its headline,
// and a strip with one coloured cell per epoch (red / yellow / green).
// With more epochs than `max_cells`, epochs are grouped into buckets and each
// cell shows the worst zone of its bucket.
//
// A plain ES module for anywidget: no imports, no build step, no network.
// Every DOM node is created through `el.ownerDocument` (jsdom-testable).

/** Paper colours of the three zones (YES-BOUNDS.md). */
export const ZONE_COLORS = Object.freeze({
  red: "#FFB6C1",
  yellow: "#FFD700",
  green: "#00FF7F",
});

/** What each zone means (YES-BOUNDS.md), used when `headline` is empty. */
export const DEFAULT_HEADLINES = Object.freeze({
  red: "ineffective training: the data has not shaped the weights",
  yellow: "inside the cloud: meaningful training, certainly not optimal; caution",
  green: "effective training, potentially near-optimal",
});

/** Worse zones have higher severity; unknown / missing zones have none. */
const SEVERITY = Object.freeze({ green: 1, yellow: 2, red: 3 });
const ZONES = ["red", "yellow", "green"];
const DASH = "\u2013";
const MIN_CELLS = 10;

function toNumber(value) {
  if (value === null || value === undefined || value === "" || typeof value === "boolean") {
    return null;
  }
  const number = typeof value === "number" ? value : Number(value);
  return Number.isNaN(number) ? null : number;
}

function severity(zone) {
  return Object.hasOwn(SEVERITY, zone) ? SEVERITY[zone] : 0;
}

/** A value in dB with one decimal, e.g. `-12.3 dB`. */
export function formatDb(value) {
  const number = toNumber(value);
  if (number === null) return DASH;
  if (number === Infinity) return "+\u221e dB";
  if (number === -Infinity) return "-\u221e dB";
  const rounded = Math.abs(number) < 0.05 ? 0 : number;
  return `${rounded.toFixed(1)} dB`;
}

function epochOf(record, index) {
  const epoch = toNumber(record.epoch);
  return epoch === null ? index + 1 : epoch;
}

/**
 * Group `records` into at most `maxCells` cells of consecutive epochs.
 * Each cell: { zone (worst in the bucket, or null), first, last (records),
 * firstEpoch, lastEpoch, counts: {red, yellow, green}, size }.
 */
export function bucketRecords(records, maxCells) {
  const limit = Math.max(MIN_CELLS, Math.floor(toNumber(maxCells) ?? 400));
  const size = records.length > limit ? Math.ceil(records.length / limit) : 1;
  const cells = [];
  for (let start = 0; start < records.length; start += size) {
    const group = records.slice(start, start + size);
    const counts = { red: 0, yellow: 0, green: 0 };
    let zone = null;
    for (const record of group) {
      if (Object.hasOwn(counts, record.zone)) counts[record.zone] += 1;
      if (severity(record.zone) > severity(zone)) zone = record.zone;
    }
    cells.push({
      zone,
      counts,
      size: group.length,
      first: group[0],
      last: group[group.length - 1],
      firstEpoch: epochOf(group[0], start),
      lastEpoch: epochOf(group[group.length - 1], start + group.length - 1),
    });
  }
  return cells;
}

/** "loss X dB · YES-0 Y dB · lower edge Z dB" for one record. */
function readings(record) {
  return (
    `loss ${formatDb(record.loss_db)} \u00b7 YES-0 ${formatDb(record.upper_db)}` +
    ` \u00b7 lower edge ${formatDb(record.lower_db)}`
  );
}

/** The tooltip text of one cell. */
export function cellText(cell) {
  if (cell.size === 1) {
    const zone = Object.hasOwn(SEVERITY, cell.zone) ? cell.zone : "no zone";
    return `epoch ${cell.firstEpoch} \u00b7 ${readings(cell.first)} \u00b7 ${zone}`;
  }
  const counts = ZONES.filter((zone) => cell.counts[zone] > 0)
    .map((zone) => `${zone} ${cell.counts[zone]}`)
    .join(", ");
  const worst = cell.zone ? `worst zone ${cell.zone}` : "no zone";
  return (
    `epochs ${cell.firstEpoch}\u2013${cell.lastEpoch} \u00b7 ${worst}` +
    (counts ? ` (${counts})` : "") +
    ` \u00b7 at epoch ${cell.lastEpoch}: ${readings(cell.last)}`
  );
}

function validRecords(value) {
  if (!Array.isArray(value)) return [];
  return value.filter((record) => record !== null && typeof record === "object" && !Array.isArray(record));
}

function render({ model, el }) {
  const doc = el.ownerDocument;
  const make = (tag, className, text) => {
    const node = doc.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const root = make("div", "yw-timeline");
  const badge = make("div", "yw-badge");
  const pill = make("span", "yw-pill");
  const headline = make("span", "yw-headline");
  badge.append(pill, headline);
  const strip = make("div", "yw-strip");
  const readout = make("div", "yw-readout");
  readout.setAttribute("aria-live", "polite");
  root.append(badge, strip, readout);
  el.append(root);

  let disposed = false;
  let idleText = "";

  function renderBadge(records) {
    let zone = model.get("zone") || "";
    if (!zone && records.length > 0) zone = records[records.length - 1].zone || "";
    const known = Object.hasOwn(ZONE_COLORS, zone);
    pill.textContent = known ? zone : "no verdict yet";
    pill.className = `yw-pill ${known ? `yw-pill-${zone}` : "yw-pill-none"}`;
    pill.style.background = known ? ZONE_COLORS[zone] : "";
    badge.dataset.zone = known ? zone : "";
    let text = String(model.get("headline") || "");
    // the pill already names the zone: drop a leading "yellow:" from the headline
    if (known && text.toLowerCase().startsWith(`${zone}:`)) text = text.slice(zone.length + 1).trim();
    if (!text && known) text = DEFAULT_HEADLINES[zone];
    headline.textContent = text;
  }

  function renderStrip(records) {
    const cells = bucketRecords(records, model.get("max_cells"));
    const nodes = cells.map((cell, index) => {
      const node = make("span", "yw-cell");
      node.dataset.index = String(index);
      node.dataset.zone = cell.zone || "";
      if (cell.zone) node.style.background = ZONE_COLORS[cell.zone];
      else node.classList.add("yw-cell-none");
      node.title = cellText(cell);
      return node;
    });
    strip.replaceChildren(...nodes);
    strip.classList.toggle("yw-strip-dense", cells.length > 60);
    strip.dataset.bucketSize = String(cells.length > 0 ? cells[0].size : 1);
    const totals = { red: 0, yellow: 0, green: 0 };
    for (const record of records) if (Object.hasOwn(totals, record.zone)) totals[record.zone] += 1;
    strip.setAttribute("role", "img");
    strip.setAttribute(
      "aria-label",
      `${records.length} epochs: red ${totals.red}, yellow ${totals.yellow}, green ${totals.green}`,
    );
    idleText = cells.length > 0 ? `latest: ${cellText(cells[cells.length - 1])}` : "no epochs yet";
    readout.textContent = idleText;
  }

  function rerender() {
    if (disposed) return;
    const records = validRecords(model.get("records"));
    renderBadge(records);
    renderStrip(records);
  }

  // hovering a cell shows its text in the readout line (the title attribute
  // gives the same text as a native tooltip)
  const onOver = (event) => {
    const cell = event.target && typeof event.target.closest === "function" ? event.target.closest(".yw-cell") : null;
    if (cell && strip.contains(cell)) {
      readout.textContent = cell.title;
      cell.classList.add("yw-cell-hover");
    }
  };
  const onOut = (event) => {
    const cell = event.target && typeof event.target.closest === "function" ? event.target.closest(".yw-cell") : null;
    if (cell) cell.classList.remove("yw-cell-hover");
    readout.textContent = idleText;
  };
  strip.addEventListener("mouseover", onOver);
  strip.addEventListener("mouseout", onOut);

  const events = ["change:records", "change:zone", "change:headline", "change:max_cells"];
  for (const name of events) model.on(name, rerender);
  rerender();

  return () => {
    disposed = true;
    for (const name of events) model.off(name, rerender);
    strip.removeEventListener("mouseover", onOver);
    strip.removeEventListener("mouseout", onOut);
    root.remove();
  };
}

export default { render };
