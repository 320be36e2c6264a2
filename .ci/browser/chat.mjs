// The chat example in a real browser: `node chat.mjs CHAT_BINARY WORK_DIR`
// (WORK_DIR holds node_modules/playwright-core and receives chat.png).
// Run by .ci/browser.sh. Prints "N passed, M failed" last.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";

const [binary, workDir] = process.argv.slice(2);
if (!binary || !workDir) {
  console.error("usage: node chat.mjs CHAT_BINARY WORK_DIR");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(workDir), "package.json"));
const { chromium } = require("playwright-core");

const WAIT = 15_000;
let passed = 0;
let failed = 0;

/** Runs one named check; a failure is counted and reported, not thrown. */
async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${String(e && e.message ? e.message : e).split("\n")[0]}`);
    for (const p of pages) {
      const seen = await p.page
        .evaluate(() => ({
          status: document.querySelector("#status").textContent,
          typing: document.querySelector("#typing").textContent,
          users: [...document.querySelectorAll("#users li")].map((li) => li.textContent),
          last: [...document.querySelectorAll("#messages li")].slice(-3).map((li) => li.textContent),
        }))
        .catch((err) => String(err));
      console.log(`     ${p.name} sees ${JSON.stringify(seen)}`);
    }
  }
}

/** Open pages, for the report of a failed check. */
const pages = [];

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/** Retries `fn` until it stops throwing, for up to WAIT ms. */
async function eventually(fn) {
  const until = Date.now() + WAIT;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the chat server and waits for its "chat on http://" line. */
function startServer(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ["--addr", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "inherit"] });
    const timer = setTimeout(() => reject(new Error("server did not start")), WAIT);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("chat on http://")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Opens the page in a fresh context and joins `room` as `name`. */
async function join(browser, base, name, room) {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.log(`[${name}] page error: ${e.message}`));
  await page.goto(`${base}/?name=${encodeURIComponent(name)}&room=${encodeURIComponent(room)}`);
  await page.click("#join");
  const opened = { context, page, name };
  pages.push(opened);
  context.on("close", () => pages.splice(pages.indexOf(opened), 1));
  return opened;
}

const connected = (p) => p.page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout: WAIT, polling: 50 });
const waitUsers = (p, names) =>
  p.page.waitForFunction(
    (want) => {
      const got = [...document.querySelectorAll("#users li")].map((li) => li.textContent).sort();
      return JSON.stringify(got) === JSON.stringify([...want].sort());
    },
    names,
    { timeout: WAIT, polling: 50 },
  );
const waitText = (p, selector, text) =>
  p.page.waitForFunction(
    ([sel, t]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(t)),
    [selector, text],
    { timeout: WAIT, polling: 50 },
  );
async function say(p, text, to) {
  await p.page.selectOption("#to", to === undefined ? "" : { label: `Private: ${to}` });
  await p.page.fill("#text", text);
  await p.page.press("#text", "Enter");
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
let server = null;
let browser = null;
try {
  server = await startServer(port);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"],
  });

  let alice, bob;
  await check("alice and bob open the page and connect", async () => {
    alice = await join(browser, base, "alice", "test");
    bob = await join(browser, base, "bob", "test");
    await Promise.all([connected(alice), connected(bob)]);
  });

  await check("both see both in the user list", async () => {
    await Promise.all([waitUsers(alice, ["alice", "bob"]), waitUsers(bob, ["alice", "bob"])]);
  });

  await check("bob sees alice typing", async () => {
    await alice.page.fill("#text", "");
    await alice.page.type("#text", "hel", { delay: 20 });
    await waitText(bob, "#typing", "alice is typing");
  });

  await check("alice's message reaches bob, and shows on her side", async () => {
    await alice.page.fill("#text", "");
    await say(alice, "hello bob");
    await waitText(bob, "#messages .msg", "hello bob");
    await waitText(alice, "#messages .msg.me", "hello bob");
  });

  await check("bob's reply reaches alice", async () => {
    await say(bob, "hi alice!");
    await waitText(alice, "#messages .msg", "hi alice!");
  });

  await check("bob's private message reaches alice only", async () => {
    await say(bob, "just for you", "alice");
    await waitText(alice, "#messages .msg.private", "just for you");
  });

  await check("carol joins later and gets the room's history, but not the private message", async () => {
    const carol = await join(browser, base, "carol", "test");
    try {
      await connected(carol);
      await waitText(carol, "#messages .msg", "hi alice!");
      await waitText(carol, "#messages .msg", "hello bob");
      await waitUsers(alice, ["alice", "bob", "carol"]);
      const texts = await carol.page.$$eval("#messages .msg", (ms) => ms.map((m) => m.textContent));
      assert(!texts.some((t) => t.includes("just for you")), "carol saw the private message");
    } finally {
      await carol.context.close();
    }
    await waitUsers(alice, ["alice", "bob"]);
  });

  await check("/stats is JSON with the open connections", async () => {
    await eventually(async () => {
      const stats = await (await fetch(`${base}/stats`)).json();
      assert(stats.connections === 2, `connections ${stats.connections}`);
      assert(stats.rooms === 1 && stats.room_list[0].name === "test", JSON.stringify(stats.room_list));
      assert(stats.messages_received >= 3, `messages_received ${stats.messages_received}`);
    });
  });

  await check("a WebSocket without a valid token is refused", async () => {
    const result = await alice.page.evaluate(
      (url) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve("open");
          ws.onerror = () => resolve("refused");
        }),
      `ws://127.0.0.1:${port}/chat/test?token=forged`,
    );
    assert(result === "refused", result);
  });

  await check("the server restarts: both notice and reconnect", async () => {
    await stopServer(server);
    server = null;
    await Promise.all(
      [alice, bob].map((p) =>
        p.page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("reconnecting"), null, { timeout: WAIT, polling: 50 }),
      ),
    );
    server = await startServer(port);
    await Promise.all([connected(alice), connected(bob)]);
    await Promise.all([waitUsers(alice, ["alice", "bob"]), waitUsers(bob, ["alice", "bob"])]);
  });

  await check("after the restart they chat again", async () => {
    await say(alice, "still here?");
    await waitText(bob, "#messages .msg", "still here?");
    await say(bob, "yes, reconnected");
    await waitText(alice, "#messages .msg", "yes, reconnected");
    await bob.page.type("#text", "typing again", { delay: 20 });
    await waitText(alice, "#typing", "bob is typing");
  });

  await check("screenshot saved", async () => {
    const file = path.join(workDir, "chat.png");
    await alice.page.screenshot({ path: file });
    console.log(`     ${file}`);
  });
} catch (e) {
  failed += 1;
  console.log(`FAIL setup: ${e && e.message ? e.message : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopServer(server);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
