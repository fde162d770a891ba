// End-to-end self-check using ONLY reference x402 parts:
// anvil + TestUSDC, facilitator.mjs, server.mjs, client.mjs.
// Prints one line per check and a PASS/FAIL summary; exits non-zero on failure.
// All child processes (anvil included) are killed before exit.
// VERBOSE=1 also prints the facilitator's /supported, the client line and the
// replay answer.
import {
  DEV_KEYS,
  addressOf,
  balanceOf,
  deployTestUsdc,
  installExitHooks,
  killAll,
  loadTestUsdcArtifact,
  mint,
  runScript,
  spawnReady,
  startAnvil,
} from "./lib/devnet.mjs";

const VERBOSE = process.env.VERBOSE === "1";
const NETWORK = "eip155:31337";
const PRICE = 10_000n;
const MINT = 1_000_000n;
const [DEPLOYER_KEY, FACILITATOR_KEY, PAYER_KEY, PAYEE_KEY] = DEV_KEYS;
const PAYER = addressOf(PAYER_KEY);
const PAYEE = addressOf(PAYEE_KEY);

const results = [];
function check(name, ok, detail = "") {
  results.push({ name, ok: !!ok });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail ? ` — ${detail}` : ""}`);
  return !!ok;
}
const verbose = (label, v) => {
  if (VERBOSE) console.log(`  ${label}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
};

async function getJson(url) {
  const res = await fetch(url);
  return { status: res.status, json: await res.json().catch(() => null) };
}

async function main() {
  installExitHooks();
  const t0 = Date.now();
  loadTestUsdcArtifact(); // fail fast (before starting anvil) if contracts/ is not built

  const anvil = await startAnvil();
  const rpcUrl = anvil.rpcUrl;
  check("anvil up", true, rpcUrl);

  const token = await deployTestUsdc({ rpcUrl, key: DEPLOYER_KEY, name: "USD Coin" });
  await mint({ rpcUrl, token, to: PAYER, amount: MINT, key: DEPLOYER_KEY });
  const bal = async () => ({
    payer: await balanceOf({ rpcUrl, token, address: PAYER }),
    payee: await balanceOf({ rpcUrl, token, address: PAYEE }),
  });
  const b0 = await bal();
  check("TestUSDC deployed and minted", b0.payer === MINT && b0.payee === 0n, `token ${token}`);

  const fac = await spawnReady(
    "facilitator.mjs",
    { PORT: "0", RPC_URL: rpcUrl, FACILITATOR_KEY, NETWORK },
    { name: "facilitator" },
  );
  const supported = await getJson(`${fac.url}/supported`);
  verbose("facilitator /supported", supported.json);
  check(
    "facilitator /supported lists exact/eip155:31337 v2",
    supported.status === 200 &&
      supported.json?.kinds?.some(
        (k) => k.x402Version === 2 && k.scheme === "exact" && k.network === NETWORK,
      ),
    fac.url,
  );

  const srv = await spawnReady(
    "server.mjs",
    {
      PORT: "0",
      FACILITATOR_URL: fac.url,
      NETWORK,
      ASSET: token,
      PAY_TO: PAYEE,
      PRICE_ATOMIC: PRICE.toString(),
    },
    { name: "server" },
  );
  const free = await getJson(`${srv.url}/free`);
  check("server GET /free", free.status === 200 && free.json?.free === true, srv.url);
  const unpaid = await fetch(`${srv.url}/paid`);
  await unpaid.arrayBuffer();
  check(
    "unpaid GET /paid answers 402 with PAYMENT-REQUIRED",
    unpaid.status === 402 && !!unpaid.headers.get("payment-required"),
    `status ${unpaid.status}`,
  );

  // ---- paid request through the reference client
  const tPay = Date.now();
  const run = await runScript(
    "client.mjs",
    { URL: `${srv.url}/paid`, PAYER_KEY, NETWORK, ASSET: token },
    { name: "client" },
  );
  const payMs = Date.now() - tPay;
  if (run.stderr) process.stderr.write(run.stderr.replace(/^/gm, "[client] "));
  const out = run.json;
  verbose("client line", out ?? run.stdout);
  check("client exit 0 with one JSON line", run.code === 0 && out !== null, `exit ${run.code}`);
  check("paid GET /paid status 200", out?.status === 200, `status ${out?.status}, ${payMs} ms`);
  let body = null;
  try {
    body = JSON.parse(out?.body ?? "null");
  } catch {}
  check("paid body {paid:true,served:1}", body?.paid === true && body?.served === 1, out?.body);
  const pr = out?.paymentResponse;
  check(
    "PAYMENT-RESPONSE success with tx hash",
    pr?.success === true && /^0x[0-9a-fA-F]{64}$/.test(pr?.transaction ?? ""),
    JSON.stringify(pr),
  );
  check(
    "payment header captured",
    !!out?.paymentHeader?.name && !!out?.paymentHeader?.value,
    out?.paymentHeader?.name,
  );
  const b1 = await bal();
  check("payer balance -10000", b0.payer - b1.payer === PRICE, `${b0.payer} -> ${b1.payer}`);
  check("payee balance +10000", b1.payee - b0.payee === PRICE, `${b0.payee} -> ${b1.payee}`);
  const stats1 = await getJson(`${srv.url}/stats`);
  check("server /stats served == 1", stats1.json?.served === 1, JSON.stringify(stats1.json));

  // ---- replay the captured payment header with plain fetch
  if (out?.paymentHeader) {
    const replay = await fetch(`${srv.url}/paid`, {
      headers: { [out.paymentHeader.name]: out.paymentHeader.value },
    });
    const replayText = await replay.text();
    verbose("replay answer", {
      status: replay.status,
      body: replayText,
      paymentRequired: replay.headers.get("payment-required")
        ? JSON.parse(Buffer.from(replay.headers.get("payment-required"), "base64").toString())
        : null,
    });
    check("replay answers 402", replay.status === 402, `status ${replay.status}`);
    const b2 = await bal();
    check(
      "balances unchanged after replay",
      b2.payer === b1.payer && b2.payee === b1.payee,
      `${b2.payer}/${b2.payee}`,
    );
    const stats2 = await getJson(`${srv.url}/stats`);
    check("served unchanged after replay", stats2.json?.served === 1, JSON.stringify(stats2.json));
  } else {
    check("replay answers 402", false, "no payment header captured");
  }

  // ---- paid POST with a JSON body (echo)
  const sent = { hello: "purser", n: 7 };
  const runPost = await runScript(
    "client.mjs",
    { URL: `${srv.url}/paid`, METHOD: "POST", BODY: JSON.stringify(sent), PAYER_KEY, NETWORK, ASSET: token },
    { name: "client-post" },
  );
  if (runPost.stderr) process.stderr.write(runPost.stderr.replace(/^/gm, "[client-post] "));
  let postBody = null;
  try {
    postBody = JSON.parse(runPost.json?.body ?? "null");
  } catch {}
  check(
    "paid POST /paid echoes body, served 2",
    runPost.json?.status === 200 &&
      postBody?.paid === true &&
      postBody?.served === 2 &&
      JSON.stringify(postBody?.echo) === JSON.stringify(sent) &&
      runPost.json?.paymentResponse?.success === true,
    runPost.json?.body,
  );
  const b3 = await bal();
  check("POST moved exactly 10000", b1.payer - b3.payer === PRICE && b3.payee - b1.payee === PRICE);

  return Date.now() - t0;
}

let elapsed = null;
let crashed = null;
try {
  elapsed = await main();
} catch (err) {
  crashed = err;
  console.error("selfcheck error:", err?.stack ?? err);
}
await killAll();

const failed = results.filter((r) => !r.ok);
if (crashed || failed.length > 0 || results.length === 0) {
  const parts = [];
  if (failed.length) parts.push(`${failed.length} of ${results.length} checks failed (${failed.map((f) => f.name).join("; ")})`);
  if (crashed) parts.push(`aborted after ${results.length} checks: ${crashed?.message ?? crashed}`);
  console.log(`FAIL: ${parts.join("; ") || "no checks ran"}`);
  process.exit(1);
}
console.log(`PASS: ${results.length} checks in ${(elapsed / 1000).toFixed(1)} s`);
process.exit(0);
