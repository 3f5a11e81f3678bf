// yeswidget zone timeline: a badge with the current zone and its headline,
// and a strip with one coloured cell per epoch (red / yellow / green, grey
// for "no verdict").
// With more epochs than `max_cells`, epochs are grouped into buckets and each
// cell shows the worst zone of its bucket.
//
// An ES module for anywidget: no build step, no network. Its one import,
// ./shared.js, is put in front of it by Python (see shared.js); the zone
// colours, words and meanings come from the model's `zones` trait (Python's
// zone_definitions()). Every DOM node is created through `el.ownerDocument`
// (jsdom-testable).

import { formatDb, formatsOf, toNumber, zoneTable } from "./shared.js";

const MIN_CELLS = 10;

function epochOf(record, index) {
  const epoch = toNumber(record.epoch);
  return epoch === null ? index + 1 : epoch;
}

/**
 * Group `records` into at most `maxCells` cells of consecutive epochs.
 * Each cell: { zone (worst in the bucket by `zones.severity`, or null), first,
 * last (records), firstEpoch, lastEpoch, counts: {zone name: epochs}, size }.
 * `zones` is a zoneTable; zone names it does not know count as "no zone".
 */
export function bucketRecords(records, maxCells, zones) {
  const limit = Math.max(MIN_CELLS, Math.floor(toNumber(maxCells) ?? 400));
  const size = records.length > limit ? Math.ceil(records.length / limit) : 1;
  const cells = [];
  for (let start = 0; start < records.length; start += size) {
    const group = records.slice(start, start + size);
    const counts = zoneCounts(group, zones);
    let zone = null;
    for (const record of group) {
      if (zones.severity(record.zone) > zones.severity(zone)) zone = record.zone;
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

/** How many of `records` are in each zone of `zones.order` (unknown zones are not counted). */
function zoneCounts(records, zones) {
  const counts = Object.fromEntries(zones.order.map((name) => [name, 0]));
  for (const record of records) if (zones.style(record.zone) !== null) counts[record.zone] += 1;
  return counts;
}

/** "loss X dB · YES-0 Y dB · lower edge Z dB" for one record (`formats`: the `formats` trait's). */
function readings(record, formats) {
  return (
    `loss ${formatDb(record.loss_db, formats)} \u00b7 YES-0 ${formatDb(record.upper_db, formats)}` +
    ` \u00b7 lower edge ${formatDb(record.lower_db, formats)}`
  );
}

/** The tooltip text of one cell (`zones`: the zoneTable the cell was made with). */
export function cellText(cell, zones) {
  if (cell.size === 1) {
    const zone = zones.label(cell.zone) ?? "no zone";
    return `epoch ${cell.firstEpoch} \u00b7 ${readings(cell.first, zones.formats)} \u00b7 ${zone}`;
  }
  const counts = zones.order
    .filter((zone) => cell.counts[zone] > 0)
    .map((zone) => `${zones.label(zone)} ${cell.counts[zone]}`)
    .join(", ");
  const worst = cell.zone ? `worst zone ${zones.label(cell.zone)}` : "no zone";
  return (
    `epochs ${cell.firstEpoch}\u2013${cell.lastEpoch} \u00b7 ${worst}` +
    (counts ? ` (${counts})` : "") +
    ` \u00b7 at epoch ${cell.lastEpoch}: ${readings(cell.last, zones.formats)}`
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

  function renderBadge(records, zones) {
    let zone = model.get("zone") || "";
    if (!zone && records.length > 0) zone = records[records.length - 1].zone || "";
    const style = zones.style(zone);
    const known = style !== null;
    pill.textContent = known ? zones.label(zone) : "no verdict yet";
    pill.className = `yw-pill ${known ? `yw-pill-${zone}` : "yw-pill-none"}`;
    pill.style.background = known ? style.band : "";
    badge.dataset.zone = known ? zone : "";
    let text = String(model.get("headline") || "");
    // the pill already names the zone: drop a leading "yellow:" from the headline
    if (known && text.toLowerCase().startsWith(`${zone}:`)) text = text.slice(zone.length + 1).trim();
    if (!text && known && typeof style.meaning === "string") text = style.meaning;
    headline.textContent = text;
  }

  function renderStrip(records, zones) {
    const cells = bucketRecords(records, model.get("max_cells"), zones);
    const nodes = cells.map((cell, index) => {
      const node = make("span", "yw-cell");
      node.dataset.index = String(index);
      node.dataset.zone = cell.zone || "";
      if (cell.zone) node.style.background = zones.color(cell.zone);
      else node.classList.add("yw-cell-none");
      node.title = cellText(cell, zones);
      return node;
    });
    strip.replaceChildren(...nodes);
    strip.classList.toggle("yw-strip-dense", cells.length > 60);
    strip.dataset.bucketSize = String(cells.length > 0 ? cells[0].size : 1);
    const totals = zoneCounts(records, zones);
    const named = zones.order.filter((zone) => zones.rank(zone) !== null || totals[zone] > 0);
    strip.setAttribute("role", "img");
    strip.setAttribute(
      "aria-label",
      `${records.length} epochs: ${named.map((zone) => `${zones.label(zone)} ${totals[zone]}`).join(", ")}`,
    );
    idleText = cells.length > 0 ? `latest: ${cellText(cells[cells.length - 1], zones)}` : "no epochs yet";
    readout.textContent = idleText;
  }

  function rerender() {
    if (disposed) return;
    const records = validRecords(model.get("records"));
    // the cells' tooltips read the formats with the zones
    const zones = { ...zoneTable(model.get("zones")), formats: formatsOf(model.get("formats")) };
    renderBadge(records, zones);
    renderStrip(records, zones);
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

  const events = ["change:records", "change:zone", "change:headline", "change:max_cells", "change:zones"];
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
