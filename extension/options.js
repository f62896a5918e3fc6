import { originPattern, parsePairing } from "./lib/pairing.js";
import { READERS } from "./lib/readers.js";
import { getSettings, saveSettings } from "./lib/settings.js";
import { patternsFor } from "./lib/sites.js";

const $ = (id) => document.getElementById(id);

function say(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.className = kind;
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
  // Ask for the server's origin at runtime (loopback is granted by the manifest, no prompt).
  const granted = (await chrome.permissions.contains({ origins })) || (await chrome.permissions.request({ origins }));
  if (!granted) {
    say("pair-status", `Not paired: permission to reach ${pairing.server} was refused.`, "error");
    return;
  }
  say("pair-status", "Checking the server…");
  const answer = await chrome.runtime.sendMessage({ type: "pair", pairing: text });
  if (answer && answer.ok) {
    say("pair-status", `Paired with ${answer.server} as ${answer.client} (${answer.providers} providers, answers verified).`, "ok");
    await renderSites();
  } else {
    say("pair-status", `Not paired: ${answer ? answer.reason : "no answer from the extension"}`, "error");
  }
}

function siteSwitch(label, checked, onChange, testId) {
  const li = document.createElement("li");
  const input = document.createElement("input");
  input.type = "checkbox";
  input.checked = checked;
  input.id = `site-${testId}`;
  input.dataset.testid = `site-${testId}`;
  input.addEventListener("change", () => onChange(input));
  const lab = document.createElement("label");
  lab.htmlFor = input.id;
  lab.textContent = ` ${label}`;
  li.append(input, lab);
  return li;
}

async function renderSites() {
  const list = $("sites");
  list.replaceChildren();
  const settings = await getSettings();
  list.appendChild(siteSwitch("infoworld.com", !settings.disabledSites.includes("infoworld.com"), async (input) => {
    const s = await getSettings();
    const disabled = new Set(s.disabledSites);
    if (input.checked) disabled.delete("infoworld.com"); else disabled.add("infoworld.com");
    await saveSettings({ disabledSites: [...disabled] });
  }, "infoworld.com"));
  if (!settings.pairing) return;
  const answer = await chrome.runtime.sendMessage({ type: "providers" });
  if (!answer || !answer.ok) {
    const li = document.createElement("li");
    li.className = "error";
    li.textContent = `Could not list the server's providers: ${answer ? answer.reason : "no answer"}`;
    list.appendChild(li);
    return;
  }
  for (const provider of answer.providers) {
    if (provider.domain === "infoworld.com") continue;
    const on = settings.enabledProviders.includes(provider.domain);
    list.appendChild(siteSwitch(`${provider.name} (${provider.domain})`, on, async (input) => {
      if (input.checked) {
        const ok = await chrome.permissions.request({ origins: patternsFor(provider.domain) });
        if (!ok) {
          input.checked = false;
          return;
        }
      }
      await chrome.runtime.sendMessage({ type: "set-provider", domain: provider.domain, enabled: input.checked });
    }, provider.domain));
  }
}

async function renderReaders() {
  const settings = await getSettings();
  const select = $("reader");
  for (const reader of READERS) {
    const option = document.createElement("option");
    option.value = reader.id;
    option.textContent = reader.name;
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
renderSites();
renderReaders();
