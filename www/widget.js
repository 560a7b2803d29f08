// <skin-scan>: the SkinScan UI as a custom element, for embedding in other pages.
//
//   <script type="module" src="https://example.org/skinscan/widget.js"></script>
//   <skin-scan></skin-scan>
//
// The UI is ui.js (the same module the page uses) inside a shadow root, so the host page's CSS
// cannot break it. The worker, wasm, models and stylesheet resolve relative to this script unless
// the element sets base="…" (a folder URL). The widget registers no service worker on the host.
// It stores nothing: saved history (issue 14) is only offered when the host page opts in with
// <skin-scan history>, and then lives in the host page's IndexedDB.
import { mountUI } from "./ui.js";

class SkinScanElement extends HTMLElement {
  connectedCallback() {
    if (this.shadowRoot) return;
    const shadow = this.attachShadow({ mode: "open" });
    const base = new URL(this.getAttribute("base") ?? ".", import.meta.url);
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = new URL("style.css", base).href;
    shadow.append(css);
    const { root, engine } = mountUI(shadow, {
      loadOptions: { base },
      // Only catch pastes aimed at this widget when the host page has other widgets or fields.
      pasteTarget: this.hasAttribute("page-paste") ? document : this,
    });
    this.ready = engine;
    // history-ui.js is not even loaded without the opt-in.
    if (this.hasAttribute("history")) import("./history-ui.js").then((m) => m.mountHistory(root, { engine }));
  }
}

if (!customElements.get("skin-scan")) customElements.define("skin-scan", SkinScanElement);
export { SkinScanElement };
