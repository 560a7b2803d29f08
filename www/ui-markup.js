// The UI's markup (issue 13: the UI split by job): the HTML of one mounted instance, in the parts
// the user meets them in, and the map of the elements the wiring (ui.js) and the rendering
// (ui-render.js) use. No behaviour here.
import { photoTypeMarkup, questionsMarkup } from "./questions.js";

/** The whole UI; `id(name)` makes an id unique to this instance (the page may hold several widgets). */
export function markup(id) {
  return `
    <div class="ss-error ss-unsupported" data-testid="unsupported" role="alert" hidden></div>
${loaderMarkup(id)}

${dropMarkup(id)}
${sameSpotMarkup(id)}

    ${questionsMarkup(id)}

    ${photoTypeMarkup(id)}

${metaMarkup(id)}

${outputMarkup(id)}`;
}

function loaderMarkup(id) {
  return `
    <div class="ss-loader" data-testid="loader">
      <label for="${id("progress")}">Loading the classifier onto this device…</label>
      <progress id="${id("progress")}" max="1" data-testid="progress"></progress>
      <span class="ss-progress-text" aria-hidden="true"></span>
    </div>
    <p class="ss-visually-hidden" role="status" aria-live="polite" data-testid="progress-status"></p>`;
}

function dropMarkup(id) {
  return `
    <div class="ss-drop" data-testid="dropzone">
      <p class="ss-drop-title">Drop a photo of the spot here, paste it, or</p>
      <div class="ss-buttons">
        <button type="button" class="ss-choose">Choose a photo</button>
        <button type="button" class="ss-camera">Take a photo</button>
      </div>
      <p class="ss-hint">JPEG, PNG, WebP, BMP or GIF. The photo stays on this device.</p>
      <input type="file" accept="image/*" class="ss-file ss-visually-hidden" tabindex="-1"
             aria-label="Photo of the skin spot" id="${id("file")}">
    </div>`;
}

/**
 * "Same spot?" (issue 22): asked on "Start over" or a new photo when the last check had answers.
 * Only "same spot" keeps them; the other choice clears every answer and detail.
 */
function sameSpotMarkup(id) {
  return `
    <div class="ss-samespot" data-testid="same-spot" role="group" aria-labelledby="${id("same-q")}" tabindex="-1" hidden>
      <p class="ss-samespot-q" id="${id("same-q")}">Is the next photo of the same spot?</p>
      <p class="ss-samespot-what">Your answers were for the last spot: <span class="ss-samespot-list"></span>.
        They are kept only if the next photo is of the same spot.</p>
      <div class="ss-buttons">
        <button type="button" class="ss-same" data-testid="same-spot-yes">Same spot: keep my answers</button>
        <button type="button" class="ss-other ss-secondary" data-testid="same-spot-no">Another spot: clear my answers</button>
      </div>
    </div>`;
}

function metaMarkup(id) {
  return `
    <details class="ss-meta">
      <summary>Add age, sex and body site (optional, improves the estimate)</summary>
      <div class="ss-meta-fields" role="group" aria-label="Optional details">
        <div class="ss-field" data-field="age">
          <label for="${id("age")}">Age in years</label>
          <input type="number" id="${id("age")}" name="age" inputmode="numeric" min="0" max="120" step="1" autocomplete="off">
        </div>
        <div class="ss-field" data-field="sex">
          <label for="${id("sex")}">Sex</label>
          <select id="${id("sex")}" name="sex"><option value="">Not given</option></select>
        </div>
        <div class="ss-field" data-field="site">
          <label for="${id("site")}">Body site</label>
          <select id="${id("site")}" name="site"><option value="">Not given</option></select>
        </div>
      </div>
      <p class="ss-hint">Used only for this estimate, never stored or sent anywhere.</p>
    </details>`;
}

/** The result: photo and heatmap, photo check, tier, gauge, diagnoses, inputs used, warnings. */
function outputMarkup(id) {
  return `
    <section class="ss-output" aria-labelledby="${id("result-h")}">
      <div class="ss-error" data-testid="error" role="alert" hidden></div>
      <p class="ss-announce ss-visually-hidden" role="status" aria-live="polite"></p>
      <p class="ss-busy" hidden>Analysing the photo on this device…</p>
      <div class="ss-result" data-testid="result" hidden>
        <h2 class="ss-h2 ss-result-h" id="${id("result-h")}" tabindex="-1">Your result</h2>
        <div class="ss-photo">
          <div class="ss-photo-frame">
            <canvas class="ss-preview" width="0" height="0" role="img" aria-label="The photo you chose"></canvas>
            <canvas class="ss-heatmap" data-testid="heatmap" width="0" height="0" hidden role="img"
                    aria-label="Heatmap: where the model saw signs of the malignant lesion types"></canvas>
          </div>
          <button type="button" class="ss-heatmap-toggle" data-testid="heatmap-toggle" aria-pressed="false">Show where the model looked</button>
          <p class="ss-heatmap-note" hidden>Warmer colours mark the parts of the photo that pushed the estimate
            towards the malignant types most. It explains the estimate; it is not a diagnosis.</p>
        </div>
        <div class="ss-quality" data-testid="quality" data-verdict="">
          <p class="ss-quality-title"></p>
          <p class="ss-quality-advice"></p>
          <button type="button" class="ss-reveal" data-testid="reveal" hidden>Show the result anyway</button>
        </div>
        <div class="ss-verdict-gated">
          <p class="ss-unreliable" data-testid="unreliable" tabindex="-1" hidden>Unreliable: this photo did not pass the
            photo check, so no risk tier is given and the number below may be wrong. Take a clearer close-up for a
            meaningful estimate.</p>
          <div class="ss-summary" data-testid="summary">
            <p class="ss-tier-line"><span class="ss-tier-label"></span>
              <span class="ss-visually-hidden">, tier:</span>
              <span class="ss-tier" data-testid="risk-tier"></span></p>
            <p class="ss-advice" data-testid="advice"></p>
          </div>
          <div class="ss-gauge-block" data-testid="gauge">
            <div class="ss-gauge" aria-hidden="true">
              <span class="ss-band ss-band-low">Low</span><span class="ss-band ss-band-moderate">Moderate</span><span class="ss-band ss-band-high">High</span>
              <span class="ss-gauge-mark"></span>
            </div>
            <p class="ss-prob-text" data-testid="probability"></p>
          </div>
          <div class="ss-dx-block" data-testid="diagnoses">
            <h3 class="ss-h">Most likely lesion types</h3>
            <ol class="ss-dx"></ol>
            <p class="ss-dx-note"></p>
          </div>
          <h3 class="ss-h">What this estimate used</h3>
          <ul class="ss-inputs" data-testid="inputs-used"></ul>
          <p class="ss-photo-type" data-testid="photo-type"></p>
          <p class="ss-meta-used" data-testid="metadata-used"></p>
        </div>
        <ul class="ss-warnings"></ul>
        <p class="ss-timing" data-testid="timing"></p>
        <button type="button" class="ss-reset">Start over</button>
      </div>
      <p class="ss-warning" data-testid="closeup-warning"></p>
    </section>`;
}

/** The elements the wiring and the rendering touch, by role. */
export function elements(root) {
  const $ = (sel) => root.querySelector(sel);
  return {
    loader: $(".ss-loader"), progress: $("progress"), progressText: $(".ss-progress-text"),
    progressStatus: $('[data-testid="progress-status"]'),
    drop: $(".ss-drop"), file: $(".ss-file"), choose: $(".ss-choose"), camera: $(".ss-camera"),
    age: $('[name="age"]'), sex: $('[name="sex"]'), site: $('[name="site"]'),
    error: $('[data-testid="error"]'), unsupported: $('[data-testid="unsupported"]'), announce: $(".ss-announce"), busy: $(".ss-busy"), result: $(".ss-result"), preview: $(".ss-preview"),
    tierLabel: $(".ss-tier-label"), tier: $(".ss-tier"), advice: $(".ss-advice"),
    probText: $(".ss-prob-text"), mark: $(".ss-gauge-mark"), summary: $(".ss-summary"),
    dxBlock: $(".ss-dx-block"), dx: $(".ss-dx"), dxNote: $(".ss-dx-note"), inputs: $(".ss-inputs"),
    metaUsed: $(".ss-meta-used"), warnings: $(".ss-warnings"), resultHeading: $(".ss-result-h"),
    sameSpot: $(".ss-samespot"), sameList: $(".ss-samespot-list"), same: $(".ss-same"), other: $(".ss-other"),
    photoType: $(".ss-photo-type"),
    timing: $(".ss-timing"), reset: $(".ss-reset"), warning: $(".ss-warning"),
    heatmap: $(".ss-heatmap"), heatmapToggle: $(".ss-heatmap-toggle"), heatmapNote: $(".ss-heatmap-note"),
    quality: $(".ss-quality"), qualityTitle: $(".ss-quality-title"), qualityAdvice: $(".ss-quality-advice"),
    reveal: $(".ss-reveal"), gated: $(".ss-verdict-gated"), unreliable: $(".ss-unreliable"),
  };
}
