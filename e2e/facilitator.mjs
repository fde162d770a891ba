// Reference x402 facilitator: @x402/core's x402Facilitator with @x402/evm's
// exact facilitator scheme (registerExactEvmScheme), served over node:http.
//
// Env: PORT (0 = free port), RPC_URL, FACILITATOR_KEY (0x.. key that pays gas),
//      NETWORK (eip155:31337), POLL_MS (viem polling interval, default 100),
//      EXIT_ON_STDIN_CLOSE (optional, "1").
// Stdout: exactly one line `READY http://127.0.0.1:<port>`; nothing per request.
//
// HTTP (same shapes as the reference facilitator example in the x402 repo):
//   POST /verify   {x402Version, paymentPayload, paymentRequirements} -> 200 VerifyResponse
//   POST /settle   {x402Version, paymentPayload, paymentRequirements} -> 200 SettleResponse
//   GET  /supported                                                  -> 200 SupportedResponse
//   missing paymentPayload/paymentRequirements or bad JSON -> 400 {"error":...}
//   exception inside @x402 (e.g. no scheme registered for the network) -> 500 {"error":...}
import http from "node:http";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { createWalletClient, defineChain, http as viemHttp, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { env, envPort, evmChainId, installShutdown, listenAndAnnounce } from "./lib/lifecycle.mjs";

const PORT = envPort();
const RPC_URL = env("RPC_URL");
const FACILITATOR_KEY = env("FACILITATOR_KEY");
const NETWORK = env("NETWORK", "eip155:31337");
const POLL_MS = Number(env("POLL_MS", "100"));

const chain = defineChain({
  id: evmChainId(NETWORK),
  name: `devnet-${evmChainId(NETWORK)}`,
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [RPC_URL] } },
});

const account = privateKeyToAccount(FACILITATOR_KEY);
const viemClient = createWalletClient({
  account,
  chain,
  transport: viemHttp(RPC_URL, { retryCount: 0 }),
  pollingInterval: POLL_MS,
}).extend(publicActions);

// Transaction submission is serialized so that concurrent settlements (e.g. in
// a throughput benchmark) never race for the same account nonce: each send
// reads the pending nonce after the previous send was accepted by the node, and
// a failed send (e.g. gas estimation revert) leaves no nonce gap. Receipt waits
// are not serialized.
let sendQueue = Promise.resolve();
function serialized(fn) {
  const run = sendQueue.then(fn, fn);
  sendQueue = run.catch(() => {});
  return run;
}

const evmSigner = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (args) => viemClient.getCode(args),
  readContract: (args) => viemClient.readContract({ ...args, args: args.args || [] }),
  verifyTypedData: (args) => viemClient.verifyTypedData(args),
  writeContract: (args) =>
    serialized(() => viemClient.writeContract({ ...args, args: args.args || [] })),
  sendTransaction: (args) => serialized(() => viemClient.sendTransaction(args)),
  waitForTransactionReceipt: (args) => viemClient.waitForTransactionReceipt(args),
});

const facilitator = new x402Facilitator();
registerExactEvmScheme(facilitator, { signer: evmSigner, networks: NETWORK });

const MAX_BODY = 1 << 20;

function send(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error("request body too large"), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      } catch {
        reject(Object.assign(new Error("invalid JSON body"), { status: 400 }));
      }
    });
    req.on("error", reject);
  });
}

async function handlePayment(req, res, op) {
  let body;
  try {
    body = await readJson(req);
  } catch (err) {
    return send(res, err.status ?? 400, { error: err.message });
  }
  const { paymentPayload, paymentRequirements } = body ?? {};
  if (!paymentPayload || !paymentRequirements) {
    return send(res, 400, { error: "Missing paymentPayload or paymentRequirements" });
  }
  try {
    const result =
      op === "verify"
        ? await facilitator.verify(paymentPayload, paymentRequirements)
        : await facilitator.settle(paymentPayload, paymentRequirements);
    return send(res, 200, result);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // Same convention as the reference facilitator example: an aborted
    // settlement is answered as a SettleResponse, not as a 500.
    if (op === "settle" && message.includes("Settlement aborted:")) {
      return send(res, 200, {
        success: false,
        errorReason: message.replace("Settlement aborted: ", ""),
        network: paymentPayload?.accepted?.network ?? paymentRequirements?.network ?? "unknown",
        transaction: "",
      });
    }
    console.error(`[facilitator] ${op} error:`, message);
    return send(res, 500, { error: message });
  }
}

const server = http.createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method === "POST" && path === "/verify") return void handlePayment(req, res, "verify");
  if (req.method === "POST" && path === "/settle") return void handlePayment(req, res, "settle");
  if (req.method === "GET" && path === "/supported") {
    try {
      return send(res, 200, facilitator.getSupported());
    } catch (err) {
      console.error("[facilitator] supported error:", err);
      return send(res, 500, { error: String(err?.message ?? err) });
    }
  }
  if (req.method === "GET" && path === "/health") return send(res, 200, { ok: true });
  return send(res, 404, { error: "not found" });
});
server.keepAliveTimeout = 65_000;

installShutdown(server, "facilitator");
await listenAndAnnounce(server, PORT);
