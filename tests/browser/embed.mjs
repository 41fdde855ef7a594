// Opens camgate's embed page in headless Chromium (Debian's, through
// playwright-core's executablePath) and reports how far the video played.
//   node embed.mjs URL ws|hls
// `hls` makes every WebSocket to /live/ close at once, so the page has to
// fall back to LL-HLS. Prints one JSON line; exits non-zero on failure.
import { chromium } from "playwright-core";

const [url, mode] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CAMGATE_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage();
  const external = [];
  const logs = [];
  page.on("console", (m) => logs.push(m.type() + ": " + m.text()));
  page.on("response", (r) => { if (r.status() >= 400) logs.push(r.status() + " " + r.url()); });
  page.on("request", (r) => {
    const u = new URL(r.url());
    // blob: and data: URLs (hls.js's worker) never leave the page.
    if (u.protocol === "blob:" || u.protocol === "data:") return;
    if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost") external.push(r.url());
  });
  if (mode === "hls") {
    await page.routeWebSocket(/\/live\//, (ws) => ws.close());
  }
  await page.goto(url);
  const time = () => page.evaluate(() => document.querySelector("video").currentTime);
  try {
    await page.waitForFunction(() => document.querySelector("video").currentTime > 0, null, { timeout: 20000 });
  } catch (e) {
    const state = await page.evaluate(() => {
      const v = document.querySelector("video");
      return { transport: document.body.dataset.transport, src: v.src, readyState: v.readyState, networkState: v.networkState,
        error: v.error && v.error.message, native: v.canPlayType("application/vnd.apple.mpegurl"), paused: v.paused,
        buffered: v.buffered.length ? [v.buffered.start(0), v.buffered.end(v.buffered.length - 1)] : [] };
    });
    console.error("no playback:", JSON.stringify(state), "console:", JSON.stringify(logs));
    throw e;
  }
  const t0 = await time();
  const started = Date.now();
  let t1 = t0;
  while (Date.now() - started < 6000 && t1 - t0 < 3) {
    await page.waitForTimeout(250);
    t1 = await time();
  }
  const transport = await page.evaluate(() => document.body.dataset.transport);
  console.log(JSON.stringify({ t0, t1, advanced: t1 - t0, seconds: (Date.now() - started) / 1000, transport, external }));
} finally {
  await browser.close();
}
