import "./lib/elements.js";
import { originPattern, parsePairing } from "./lib/pairing.js";
import { READERS } from "./lib/readers.js";
import { getSettings, saveSettings } from "./lib/settings.js";
import { BUILT_IN_SITES, patternsFor, siteSwitch } from "./lib/sites.js";

const { el } = globalThis.topicfeedElements;
const $ = (id) => document.getElementById(id);

function say(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.className = kind;
}

/** The pairing as stored: who the extension is paired with, and the Unpair button when it is. */
async function showPairing() {
  const { pairing } = await getSettings();
  $("paired-with").textContent = pairing ? `Paired with ${pairing.server} as ${pairing.client}.` : "Not paired.";
  $("unpair").hidden = !pairing;
}

async function pair(event) {
  event.preventDefault();
  const text = $("pairing").value;
  let pairing;
  try {
    pairing = parsePairing(text);
  } catch (err) {
    say("pair-status", `Not paired: bad pairing string: ${err.message}`, "error");
    return;
  }
  const origins = [originPattern(pairing.server)];
  // Loopback is granted by the manifest. Any other server is requested before the first await:
  // Firefox grants permissions.request only while the click is being handled (an await loses
  // that), and a request for an origin already granted answers true without a prompt.
  let granted;
  try {
    granted = chrome.runtime.getManifest().host_permissions.includes(origins[0]) ||
      (await chrome.permissions.request({ origins }));
  } catch (err) {
    say("pair-status", `Not paired: could not ask for permission to reach ${pairing.server} (${err.message}).`, "error");
    return;
  }
  if (!granted) {
    say("pair-status", `Not paired: permission to reach ${pairing.server} was refused.`, "error");
    return;
  }
  $("pair-submit").disabled = true;
  say("pair-status", "Checking the server…");
  let answer;
  try {
    answer = await chrome.runtime.sendMessage({ type: "pair", pairing: text });
  } finally {
    $("pair-submit").disabled = false;
  }
  if (answer && answer.ok) {
    $("pairing").value = ""; // it holds the client secret: do not leave it on screen
    say("pair-status", `Paired with ${answer.server} as ${answer.client} (${answer.providers} providers, answers verified).`, "ok");
  } else {
    say("pair-status", `Not paired: ${answer ? answer.reason : "no answer from the extension"}`, "error");
  }
  await showPairing();
  await renderSites();
}

async function unpair() {
  await chrome.runtime.sendMessage({ type: "unpair" });
  say("pair-status", "Unpaired: the extension asks no server until you pair again.", "ok");
  await showPairing();
  await renderSites();
}

function siteRow(label, domain, checked, onChange) {
  const li = el("li");
  const input = el("input", { type: "checkbox", id: `site-${domain}`, "data-testid": `site-${domain}` });
  input.checked = checked;
  input.addEventListener("change", () => onChange(input));
  const lab = el("label", { for: input.id }, ` ${label}`);
  li.append(input, lab);
  return li;
}

async function setSite(domain, input) {
  if (input.checked && !BUILT_IN_SITES.includes(domain) && !(await chrome.permissions.request({ origins: patternsFor(domain) }))) {
    input.checked = false;
    return;
  }
  await chrome.runtime.sendMessage({ type: "set-site", domain, on: input.checked });
}

/** The site switches, built whole and swapped in at once (two renders may overlap: the last one wins, no doubles). */
async function renderSites() {
  const settings = await getSettings();
  const rows = BUILT_IN_SITES.map((domain) =>
    siteRow(domain, domain, siteSwitch(settings, domain).on, (input) => setSite(domain, input)));
  const answer = settings.pairing ? await chrome.runtime.sendMessage({ type: "providers" }) : null;
  if (settings.pairing && !(answer && answer.ok)) {
    rows.push(el("li", { class: "error" }, `Could not list the server's providers: ${answer ? answer.reason : "no answer"}`));
  }
  for (const provider of answer && answer.ok ? answer.providers : []) {
    if (BUILT_IN_SITES.includes(provider.domain)) continue;
    rows.push(siteRow(`${provider.name} (${provider.domain})`, provider.domain,
      siteSwitch(settings, provider.domain).on, (input) => setSite(provider.domain, input)));
  }
  $("sites").replaceChildren(...rows);
}

async function renderReaders() {
  const settings = await getSettings();
  const select = $("reader");
  for (const reader of READERS) {
    const option = el("option", { value: reader.id }, reader.name);
    option.selected = reader.id === settings.reader;
    select.appendChild(option);
  }
  $("miniflux").value = settings.readerBase.miniflux || "";
  $("freshrss").value = settings.readerBase.freshrss || "";
  $("custom").value = settings.customTemplate || "";
  const save = async () => {
    await saveSettings({ reader: select.value, customTemplate: $("custom").value.trim(),
      readerBase: { miniflux: $("miniflux").value.trim(), freshrss: $("freshrss").value.trim() } });
    say("reader-status", "Saved.", "muted");
  };
  for (const id of ["reader", "miniflux", "freshrss", "custom"]) $(id).addEventListener("change", save);
}

$("pair-form").addEventListener("submit", pair);
$("unpair").addEventListener("click", unpair);
showPairing();
renderSites();
renderReaders();
