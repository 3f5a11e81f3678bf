// yeswidget runs table: one row per training run, sortable by any column,
// click a row to select it (the selection is synced back to Python).
//
// An ES module for anywidget: no build step, no network. Its one import,
// ./shared.js, is put in front of it by Python (see shared.js); the zone
// colours and words come from the model's `zones` trait (Python's
// zone_definitions()). Every DOM node is created through `el.ownerDocument`,
// so the module also runs under jsdom in the unit tests (js/test/).

import { DASH, formatDb, formatLr, formatsOf, toNumber, zoneTable } from "./shared.js";

/**
 * The table's columns, in display order. `type` picks the sort order:
 * "number" (numeric), "string" (natural, case-insensitive), "zone" (bad to
 * good: red, yellow, green, then no verdict). The keys must match
 * RUNS_TABLE_COLUMNS in yeswidget/widgets/tables.py.
 */
export const COLUMNS = Object.freeze([
  { key: "id", label: "#", type: "number", title: "run id" },
  { key: "label", label: "run", type: "string", title: "run label (the swatch is the line colour in the chart)" },
  { key: "lr", label: "lr", type: "number", title: "learning rate" },
  { key: "batch_size", label: "batch", type: "number", title: "batch size" },
  { key: "optimizer", label: "optimizer", type: "string", title: "optimizer" },
  { key: "schedule", label: "schedule", type: "string", title: "learning-rate schedule" },
  { key: "seed", label: "seed", type: "number", title: "random seed" },
  { key: "final_loss_db", label: "final loss", type: "number", title: "loss at the last epoch, in dB" },
  { key: "final_zone", label: "zone", type: "zone", title: "zone at the last epoch" },
  { key: "epochs_to_green", label: "to green", type: "number", title: "first epoch in the green zone" },
  { key: "wall_time", label: "time", type: "number", title: "wall-clock time" },
  { key: "status", label: "status", type: "string", title: "run status" },
]);

const COLUMN_BY_KEY = new Map(COLUMNS.map((column) => [column.key, column]));
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** Wall time: `12.3 s` under a minute, then `4 min 05 s`, then `2 h 03 min`. */
export function formatWallTime(value) {
  const seconds = toNumber(value);
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return DASH;
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) {
    return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
  }
  const minutes = Math.round(whole / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** `epochs_to_green`: the epoch, "never" once the run has ended, "–" while it runs. */
export function formatEpochsToGreen(value, status) {
  const number = toNumber(value);
  if (number !== null) return String(number);
  const ended = typeof status === "string" && status !== "" && status !== "running" && status !== "paused";
  return ended ? "never" : DASH;
}

function sortValue(column, row, zones) {
  const value = row[column.key];
  if (column.type === "number") return toNumber(value);
  if (column.type === "zone") return zones.rank(value);
  if (value === null || value === undefined || value === "") return null;
  return String(value);
}

/**
 * A sorted copy of `rows` by column `key`. Missing values (None, NaN, "")
 * come last in either direction; ties keep the order Python gave. `zones`
 * (a zoneTable) orders the zone column; "no verdict" sorts as missing.
 */
export function sortRows(rows, key, ascending = true, zones = zoneTable(null)) {
  const column = COLUMN_BY_KEY.get(key) || COLUMN_BY_KEY.get("id");
  const decorated = rows.map((row, index) => ({ row, index, value: sortValue(column, row, zones) }));
  decorated.sort((a, b) => {
    const aMissing = a.value === null;
    const bMissing = b.value === null;
    if (aMissing || bMissing) {
      if (aMissing && bMissing) return a.index - b.index;
      return aMissing ? 1 : -1;
    }
    let order;
    if (column.type === "string") {
      order = collator.compare(a.value, b.value);
    } else {
      order = a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
    }
    if (order !== 0) return ascending ? order : -order;
    return a.index - b.index;
  });
  return decorated.map((item) => item.row);
}

function validRows(value) {
  if (!Array.isArray(value)) return [];
  return value.filter((row) => row !== null && typeof row === "object" && !Array.isArray(row));
}

function render({ model, el }) {
  const doc = el.ownerDocument;
  const make = (tag, className, text) => {
    const node = doc.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const root = make("div", "yw-runs");
  const table = make("table", "yw-runs-table");
  const thead = make("thead");
  const tbody = make("tbody");
  table.append(thead, tbody);
  root.append(table);
  el.append(root);

  let disposed = false;
  let zones = zoneTable(model.get("zones"));
  let formats = formatsOf(model.get("formats"));

  function cellFor(column, row) {
    const td = make("td", `yw-col-${column.key}`);
    const value = row[column.key];
    switch (column.key) {
      case "label": {
        const swatch = make("span", "yw-swatch");
        if (typeof row.color === "string" && row.color !== "") {
          swatch.style.background = row.color;
          swatch.title = `line colour ${row.color}`;
        } else {
          swatch.classList.add("yw-swatch-none");
        }
        const text = value === null || value === undefined || value === "" ? `run ${row.id}` : String(value);
        td.append(swatch, make("span", "yw-label", text));
        break;
      }
      case "lr":
        td.textContent = formatLr(value, formats);
        break;
      case "final_loss_db":
        td.textContent = formatDb(value, formats);
        break;
      case "wall_time":
        td.textContent = formatWallTime(value);
        if (toNumber(value) !== null) td.title = `${toNumber(value)} s`;
        break;
      case "epochs_to_green":
        td.textContent = formatEpochsToGreen(value, row.status);
        break;
      case "final_zone": {
        const style = zones.style(value);
        if (style !== null) {
          const dot = make("span", `yw-dot yw-dot-${value}`);
          dot.style.background = style.band;
          td.append(dot, make("span", "yw-zone-word", zones.label(value)));
          td.dataset.zone = value;
          if (typeof style.meaning === "string") td.title = style.meaning;
        } else {
          td.textContent = DASH;
        }
        break;
      }
      case "status":
        td.textContent = value ? String(value) : DASH;
        if (value) td.classList.add(`yw-status-${String(value).replace(/[^a-z0-9_-]/gi, "")}`);
        break;
      default:
        td.textContent = value === null || value === undefined || value === "" ? DASH : String(value);
    }
    if (column.type === "number") td.classList.add("yw-num");
    return td;
  }

  function renderHeader(sortBy, ascending) {
    const tr = make("tr");
    for (const column of COLUMNS) {
      const th = make("th", `yw-th yw-col-${column.key}`);
      th.dataset.key = column.key;
      th.tabIndex = 0;
      th.title = `${column.title}: click to sort`;
      th.setAttribute("role", "columnheader");
      const label = make("span", "yw-th-label", column.label);
      const arrow = make("span", "yw-sort-arrow");
      if (column.key === sortBy) {
        th.classList.add("yw-sorted");
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        arrow.textContent = ascending ? "\u25b2" : "\u25bc";
      } else {
        th.setAttribute("aria-sort", "none");
      }
      if (column.type === "number") th.classList.add("yw-num");
      th.append(label, arrow);
      tr.append(th);
    }
    thead.replaceChildren(tr);
  }

  function renderBody(rows, sortBy, ascending, selected) {
    const body = [];
    if (rows.length === 0) {
      const tr = make("tr", "yw-empty");
      const td = make("td", "", "no runs yet");
      td.colSpan = COLUMNS.length;
      tr.append(td);
      body.push(tr);
    }
    for (const row of sortRows(rows, sortBy, ascending, zones)) {
      const tr = make("tr", "yw-row");
      tr.dataset.id = String(row.id);
      tr.tabIndex = 0;
      const isSelected = row.id === selected;
      tr.setAttribute("aria-selected", isSelected ? "true" : "false");
      if (isSelected) tr.classList.add("yw-selected");
      for (const column of COLUMNS) tr.append(cellFor(column, row));
      body.push(tr);
    }
    tbody.replaceChildren(...body);
  }

  function rerender() {
    if (disposed) return;
    // keep keyboard focus on the same header / row across the rebuild
    const active = doc.activeElement;
    let refocus = null;
    if (active && root.contains(active)) {
      if (active.dataset.key) refocus = `th[data-key="${active.dataset.key}"]`;
      else if (active.dataset.id) refocus = `tr[data-id="${active.dataset.id}"]`;
    }
    zones = zoneTable(model.get("zones"));
    formats = formatsOf(model.get("formats"));
    const sortBy = COLUMN_BY_KEY.has(model.get("sort_by")) ? model.get("sort_by") : "id";
    const ascending = model.get("sort_ascending") !== false;
    const selected = toNumber(model.get("selected"));
    renderHeader(sortBy, ascending);
    renderBody(validRows(model.get("rows")), sortBy, ascending, selected === null ? -1 : selected);
    if (refocus) root.querySelector(refocus)?.focus();
  }

  function sortBy(key) {
    if (!COLUMN_BY_KEY.has(key)) return;
    if (model.get("sort_by") === key) {
      model.set("sort_ascending", model.get("sort_ascending") === false);
    } else {
      model.set("sort_by", key);
      model.set("sort_ascending", true);
    }
    model.save_changes();
  }

  function select(id) {
    const number = toNumber(id);
    if (number === null || !Number.isInteger(number)) return;
    model.set("selected", number);
    model.save_changes();
  }

  function activate(target) {
    if (!target || typeof target.closest !== "function") return false;
    const th = target.closest("th[data-key]");
    if (th && root.contains(th)) {
      sortBy(th.dataset.key);
      return true;
    }
    const tr = target.closest("tr[data-id]");
    if (tr && root.contains(tr)) {
      select(tr.dataset.id);
      return true;
    }
    return false;
  }

  const onClick = (event) => {
    activate(event.target);
  };
  const onKeyDown = (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    if (activate(event.target)) event.preventDefault();
  };
  root.addEventListener("click", onClick);
  root.addEventListener("keydown", onKeyDown);

  const events = ["change:rows", "change:selected", "change:sort_by", "change:sort_ascending", "change:zones"];
  for (const name of events) model.on(name, rerender);
  rerender();

  return () => {
    disposed = true;
    for (const name of events) model.off(name, rerender);
    root.removeEventListener("click", onClick);
    root.removeEventListener("keydown", onKeyDown);
    root.remove();
  };
}

export default { render };
