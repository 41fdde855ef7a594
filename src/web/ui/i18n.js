// Messages: zh-CN by default, English on request; every string the UI
// shows comes from messages/<lang>.json.

const LANGS = ['zh-CN', 'en'];
let lang = 'zh-CN';
let messages = {};

/** Loads the saved language (or zh-CN) and its messages. */
export async function initI18n() {
  const saved = localStorage.getItem('camgate.lang');
  lang = LANGS.includes(saved) ? saved : 'zh-CN';
  await load(lang);
}

async function load(l) {
  const r = await fetch(`/ui/messages/${l}.json`);
  messages = await r.json();
  lang = l;
  document.documentElement.lang = l;
}

export function currentLang() {
  return lang;
}

/** Switches the language and remembers it. */
export async function setLang(l) {
  localStorage.setItem('camgate.lang', l);
  await load(l);
}

/** Whether there is a message `key` (for keys built from server codes). */
export function has(key) {
  return key in messages;
}

/** The message `key` with `{name}` placeholders filled from `vars`. */
export function t(key, vars) {
  let s = messages[key];
  if (s === undefined) {
    console.warn('missing message', key);
    s = key;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}
