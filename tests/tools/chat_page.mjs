// chat_page.mjs - drives the chat page of a running `shardpipe serve` in
// headless Chromium (playwright-core, Debian's /usr/bin/chromium) like a
// user: the page shows the server's 401 until the API key is typed under
// Settings; a question typed and sent with Enter gets an answer equal to the
// server's non-streamed answer to the same request, each SSE piece appended
// (serve sends what gathered every 20 ms, so a fast model's answer may come
// in one piece); a second question carries the first turn; HTML in a message
// stays text; a system prompt leads the request; an error answer (max_tokens
// past the context) shows the API's message. Then on the page of a slower
// server (SLOW_URL, long answers): the answer shows while it streams, Stop
// cuts it, the server frees its slot (shardpipe_requests_running back to 0),
// and the next question is answered with the cut turn in its history; "New
// chat" while an answer streams starts a conversation of its own.
// Screenshots (desktop and phone width) go to OUT_DIR.
//   node chat_page.mjs URL SLOW_URL API_KEY OUT_DIR
// Prints PASS:/FAIL: lines like tests/tools/lib.sh and exits 1 on a failure.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, slowUrl, key, outDir] = process.argv.slice(2);
const longMax = 1500;
let failed = 0;
function check(name, ok, detail = "") {
  console.log(`${ok ? "PASS" : "FAIL"}: ${name}${!ok && detail ? " (" + detail + ")" : ""}`);
  if (!ok) failed++;
}

// The page sends {messages, stream, model, temperature, max_tokens, seed};
// the reference is the same request without stream.
async function reference(body) {
  const res = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
    body: JSON.stringify({ ...body, stream: false }),
  });
  const j = await res.json();
  if (!res.ok) throw new Error("reference request failed: " + JSON.stringify(j));
  return { text: j.choices[0].message.content, tokens: j.usage.completion_tokens };
}

const profile = mkdtempSync(join(tmpdir(), "sp-chromium-"));
// removed however the script ends (a browser that fails to start throws
// before the try below)
process.on("exit", () => rmSync(profile, { recursive: true, force: true }));
// a fresh profile folder (playwright passes it as --user-data-dir)
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1000, height: 720 },
});
try {
  const page = browser.pages()[0] || await browser.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const external = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(url + "/") && !r.url().startsWith(slowUrl + "/")) external.push(r.url());
  });
  const sent = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/chat/completions")) sent.push(JSON.parse(r.postData()));
  });

  await page.goto(url + "/");
  check("the page loads with its title", (await page.title()) === "shardpipe chat");
  await page.waitForFunction(() => document.getElementById("model").textContent !== "connecting...");
  const noKey = await page.textContent("#model");
  check("without the key the page shows the server's 401 message", /HTTP 401/.test(noKey), noKey);

  // Settings: key (kept in localStorage), greedy, short answers, a seed.
  await page.click("#toggle-settings");
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", "32");
  await page.fill("#seed", "7");
  await page.fill("#api-key", key);
  await page.press("#api-key", "Tab"); // change event: remembered, models reloaded
  await page.waitForFunction(() => !/HTTP|connecting/.test(document.getElementById("model").textContent));
  const model = await page.textContent("#model");
  check("with the key the page names the model", model.length > 0 && !/unreachable/.test(model), model);
  check("the key is remembered in localStorage",
        (await page.evaluate(() => localStorage.getItem("shardpipe.api-key"))) === key);

  // Record every change of the answer's text: each SSE piece must be
  // appended on its own (the text before each change, growing), and the
  // observer's callbacks count the separate moments the page showed more.
  await page.evaluate(() => {
    window.__before = [];
    window.__moments = 0;
    new MutationObserver((recs) => {
      window.__moments++;
      for (const r of recs) if (r.type === "characterData") window.__before.push(r.oldValue.length);
    }).observe(document.getElementById("log"), { subtree: true, characterData: true, characterDataOldValue: true });
  });
  await page.fill("#input", "Once upon a time");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant[data-done='1']", { timeout: 60000 });
  const ans1 = await page.$eval(".msg.assistant", (e) => e.firstChild.data);
  const chunks = Number(await page.$eval(".msg.assistant", (e) => e.dataset.chunks || "0"));
  const before = await page.evaluate(() => window.__before);
  const moments = await page.evaluate(() => window.__moments);
  // (serve sends what gathered every 20 ms: on this fast model the whole
  // answer may come in one or two pieces; the slow server below streams many)
  const growing = before.length >= 1 && before[0] === 0 && before.every((n, i) => i === 0 || n > before[i - 1]);
  check(`the answer came as ${chunks} SSE piece(s), each appended to the text (shown at ${moments} moments)`,
        chunks >= 1 && growing && before.length === chunks, `lengths before each piece ${before.join(",")}`);
  const ref1 = await reference(sent[0]);
  check("the streamed answer equals the server's non-streamed answer", ans1 === ref1.text,
        JSON.stringify(ans1) + " vs " + JSON.stringify(ref1.text));
  const notes = await page.$eval(".msg.assistant", (e) => [...e.querySelectorAll(".note")].map((n) => n.textContent));
  check(`the answer's note gives the usage chunk's token count (${notes.join(" | ")})`,
        notes.some((n) => n.startsWith(`${ref1.tokens} tokens in `)), `expected ${ref1.tokens} tokens`);
  check("the request carried the settings", sent[0].stream === true && sent[0].temperature === 0 &&
        sent[0].stream_options && sent[0].stream_options.include_usage === true &&
        sent[0].max_tokens === 32 && sent[0].seed === 7 && sent[0].messages.length === 1);

  // Second turn: the history goes with it; HTML typed by the user stays text.
  await page.fill("#input", "<b>bold</b> and then?");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done='1']").length === 2,
                             null, { timeout: 60000 });
  const m = sent[1] && sent[1].messages;
  check("the second request carries the first turn", m && m.length === 3 && m[0].content === "Once upon a time" &&
        m[1].role === "assistant" && m[1].content === ans1 && m[2].content === "<b>bold</b> and then?",
        JSON.stringify(m));
  check("HTML in a message is shown as text", (await page.$$("#log b")).length === 0 &&
        (await page.$$eval(".msg.user", (es) => es[1].textContent)) === "<b>bold</b> and then?");
  const ans2 = await page.$$eval(".msg.assistant", (es) => es[1].firstChild.data);
  check("the second answer equals the server's answer to the same history",
        ans2 === (await reference(sent[1])).text);

  await page.screenshot({ path: join(outDir, "chat_page.png") });
  await page.setViewportSize({ width: 390, height: 760 });
  await page.screenshot({ path: join(outDir, "chat_page_phone.png") });
  await page.setViewportSize({ width: 1000, height: 720 });

  // A system prompt goes first in the request, and the answer follows it.
  await page.fill("#system", "You tell short stories about cats.");
  await page.fill("#input", "Tell me one.");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done='1']").length === 3,
                             null, { timeout: 60000 });
  const m3 = sent[2] && sent[2].messages;
  const ans3 = await page.$$eval(".msg.assistant", (es) => es[2].firstChild.data);
  check("the system prompt leads the request, and the answer is the server's to it",
        m3 && m3.length === 6 && m3[0].role === "system" && m3[0].content === "You tell short stories about cats." &&
        ans3 === (await reference(sent[2])).text, JSON.stringify(m3 && m3[0]));
  await page.fill("#system", "");

  // An error answer: max_tokens past the context -> the API's message (on
  // a new chat: later in a conversation the page asks again without it)
  await page.click("#clear");
  await page.fill("#max-tokens", "10000000");
  await page.fill("#input", "too long");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.error", { timeout: 30000 });
  const errText = await page.textContent(".msg.error");
  check("an error answer shows its HTTP status and the API's message", /^HTTP 4\d\d: .{8,}/.test(errText), errText);

  // Stop, on the slow server's page (another origin: the key again).
  await page.goto(slowUrl + "/");
  await page.click("#toggle-settings");
  await page.fill("#api-key", key);
  await page.press("#api-key", "Tab");
  await page.fill("#temperature", "1");
  await page.fill("#seed", "1"); // a seed whose answer runs to max_tokens (unseeded ones may end early)
  await page.fill("#max-tokens", String(longMax));
  await page.fill("#input", "Tell me a long story");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => Number(document.querySelector(".msg.assistant")?.dataset.chunks || 0) >= 3,
                             null, { timeout: 60000 });
  const early = await page.$eval(".msg.assistant", (e) => ({ n: Number(e.dataset.chunks), len: e.firstChild.data.length,
                                                             done: e.dataset.done === "1" }));
  check(`a long answer shows on the page while it streams (${early.n} pieces, ${early.len} characters so far)`,
        early.n >= 3 && early.len > 0 && !early.done);
  await page.click("#stop", { timeout: 5000 }).catch(async () => {
    throw new Error("Stop was not there to click: the answer ended first: " +
                    (await page.textContent(".msg.assistant")).slice(-80) + "; request: " +
                    JSON.stringify(sent[sent.length - 1]));
  });
  await page.waitForSelector(".msg.assistant[data-done='1']");
  const stopped = await page.textContent(".msg.assistant");
  const pieces = Number(await page.$eval(".msg.assistant", (e) => e.dataset.chunks));
  check(`Stop ends a long answer early (${pieces} of up to ${longMax} pieces) and says so`,
        /\(stopped\)$/.test(stopped) && pieces < longMax, stopped.slice(-60));
  check("after Stop the Send button is back", await page.isVisible("#send") && !(await page.isVisible("#stop")));
  let running = -1;
  for (let i = 0; i < 100 && running !== 0; i++) {
    const m = await (await fetch(slowUrl + "/metrics", { headers: { Authorization: "Bearer " + key } })).text();
    const hit = /^shardpipe_requests_running (\d+)/m.exec(m);
    running = hit ? Number(hit[1]) : -2;
    if (running !== 0) await new Promise((r) => setTimeout(r, 100));
  }
  check("the server freed the stopped answer's slot (shardpipe_requests_running 0)", running === 0,
        `running ${running}`);
  await page.fill("#max-tokens", "12");
  await page.fill("#input", "And now?");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done='1']").length === 2,
                             null, { timeout: 60000 });
  const next = await page.$$eval(".msg.assistant", (es) => ({ n: Number(es[1].dataset.chunks || 0),
                                                              t: es[1].textContent }));
  check("the question after Stop is answered", next.n > 0 && !/\(stopped\)$/.test(next.t), JSON.stringify(next));
  await page.screenshot({ path: join(outDir, "chat_page_stopped.png") });
  check("the request after Stop carries the stopped turn as shown", sent.length >= 2 &&
        sent[sent.length - 1].messages.length === 3 &&
        sent[sent.length - 1].messages[1].content === stopped.replace(/\(stopped\)$/, ""));

  // "New chat" while an answer streams: it stops, and the next question
  // starts a conversation of its own.
  await page.fill("#max-tokens", String(longMax));
  await page.fill("#input", "Another long one");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => Number(document.querySelectorAll(".msg.assistant")[2]?.dataset.chunks || 0) >= 2,
                             null, { timeout: 60000 });
  await page.click("#clear");
  await page.waitForSelector("#send", { state: "visible" });
  await page.fill("#max-tokens", "8");
  await page.fill("#input", "Hello again");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant[data-done='1']", { timeout: 60000 });
  const fresh = sent[sent.length - 1].messages;
  const bubbles = await page.$$eval(".msg", (es) => es.map((e) => e.className));
  check("New chat mid-answer: the next request holds only the new question, the page only the new turn",
        fresh.length === 1 && fresh[0].content === "Hello again" && bubbles.length === 2,
        JSON.stringify(fresh) + " " + bubbles.join(","));
  // A conversation that outgrows Max tokens (the slow server holds 2048
  // positions; seed 1's first answer takes all 1200): the second question
  // is asked again without max_tokens and gets the context that is left.
  await page.click("#clear");
  await page.fill("#max-tokens", "1200");
  await page.fill("#input", "Tell me a long story");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant[data-done='1']", { timeout: 120000 });
  const nSent = sent.length;
  await page.fill("#input", "And then?");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done='1']").length === 2,
                             null, { timeout: 120000 });
  const full = await page.$$eval(".msg", (es) => es.map((e) => ({
    cls: e.className, chunks: Number(e.dataset.chunks || 0),
    notes: [...e.querySelectorAll(".note")].map((n) => n.textContent) })));
  const second = full.filter((m) => /assistant/.test(m.cls))[1];
  check("past Max tokens' room the answer still comes, with a note saying it got the context left",
        full.every((m) => !/error/.test(m.cls)) && second && second.chunks > 0 &&
        second.notes.some((n) => /Max tokens \(1200\) did not fit beside the conversation/.test(n)), JSON.stringify(full.slice(-2)));
  check("... asked first with max_tokens, then without it", sent.length === nSent + 2 &&
        sent[nSent].max_tokens === 1200 && !("max_tokens" in sent[nSent + 1]) &&
        sent[nSent + 1].messages.length === 3, JSON.stringify(sent.slice(nSent).map((b) => b.max_tokens)));
  check("no request left the server's origin (no CDN)", external.length === 0, external.join(" "));
  check("no script error in the page", consoleErrors.length === 0, consoleErrors.join("; "));
} catch (e) {
  check("the browser session ran to the end", false, e.stack || String(e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
