// <skin-scan>: the SkinScan UI as a custom element, for embedding in other pages.
//
//   <script type="module" src="https://example.org/skinscan/widget.js"></script>
//   <skin-scan></skin-scan>
//
// The UI is ui.js (the same module the page uses) inside a shadow root, so the host page's CSS
// cannot break it. The worker, wasm, models and stylesheet resolve relative to this script unless
// the element sets base="…" (a folder URL). The widget registers no service worker on the host.
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
    const { engine } = mountUI(shadow, {
      loadOptions: { base },
      // Only catch pastes aimed at this widget when the host page has other widgets or fields.
      pasteTarget: this.hasAttribute("page-paste") ? document : this,
    });
    this.ready = engine;
  }
}

if (!customElements.get("skin-scan")) customElements.define("skin-scan", SkinScanElement);
export { SkinScanElement };
