// Test helpers (no tests here): a fake anywidget model, a jsdom host element,
// and zone definitions shaped like Python's zone_definitions().
import { JSDOM } from "jsdom";

/**
 * Zone definitions in the shape of `yeswidget.core.zones.zone_definitions()`,
 * with colours and words made up for the tests: the widgets must draw
 * whatever the model's `zones` trait holds (the real colours live in Python
 * only; tests/test_tables.py renders the modules with them).
 */
export const ZONES = Object.freeze({
  order: ["red", "yellow", "green", "none"],
  band_opacity: 0.4,
  zones: {
    red: { name: "red", band: "#FF0000", edge: "#800000", word: "bad", meaning: "test meaning of red", code: 0 },
    yellow: { name: "yellow", band: "#FFFF00", edge: "#808000", word: "so-so", meaning: "test meaning of yellow", code: 1 },
    green: { name: "green", band: "#00FF00", edge: "#008000", word: "good", meaning: "test meaning of green", code: 2 },
    none: { name: "none", band: "#808080", edge: "#404040", word: "no verdict", meaning: "test meaning of none", code: -1 },
  },
});

/** `style.backgroundColor` as jsdom reports it for each colour of ZONES. */
export const RGB = Object.freeze({
  red: "rgb(255, 0, 0)",
  yellow: "rgb(255, 255, 0)",
  green: "rgb(0, 255, 0)",
  none: "rgb(128, 128, 128)",
});

/**
 * A stand-in for the anywidget model: get / set / on / off / save_changes.
 * `set` fires "change:<name>" listeners when the value changes, like the
 * Backbone model behind anywidget does.
 */
export function fakeModel(initial = {}) {
  const state = { ...initial };
  const listeners = new Map();
  const calls = { save_changes: 0, on: [], off: [], set: [] };
  return {
    state,
    calls,
    get(name) {
      return state[name];
    },
    set(name, value) {
      calls.set.push([name, value]);
      const old = state[name];
      state[name] = value;
      if (old !== value) {
        for (const callback of [...(listeners.get(`change:${name}`) || [])]) callback(value);
      }
    },
    on(name, callback) {
      calls.on.push(name);
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name).add(callback);
    },
    off(name, callback) {
      calls.off.push(name);
      listeners.get(name)?.delete(callback);
    },
    save_changes() {
      calls.save_changes += 1;
    },
    /** Python-side update: change the value and fire the change event. */
    update(name, value) {
      state[name] = value;
      for (const callback of [...(listeners.get(`change:${name}`) || [])]) callback(value);
    },
    listenerCount() {
      let count = 0;
      for (const set of listeners.values()) count += set.size;
      return count;
    },
  };
}

/** A fresh jsdom document with a host element for a widget view. */
export function host() {
  const dom = new JSDOM("<!doctype html><html><body></body></html>");
  const { document } = dom.window;
  const el = document.createElement("div");
  document.body.append(el);
  return { dom, window: dom.window, document, el };
}

/** Dispatch a bubbling event of `type` on `node`. */
export function fire(node, type, init = {}) {
  const window = node.ownerDocument.defaultView;
  const EventClass = type.startsWith("key") ? window.KeyboardEvent : window.MouseEvent;
  node.dispatchEvent(new EventClass(type, { bubbles: true, cancelable: true, ...init }));
}
