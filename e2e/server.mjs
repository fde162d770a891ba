// Reference x402 resource server (@x402/express + @x402/evm exact server scheme).
//
// Env: PORT (0 = free port), FACILITATOR_URL, NETWORK (eip155:31337), ASSET,
//      PAY_TO, PRICE_ATOMIC (10000), TOKEN_NAME ("USD Coin"), TOKEN_VERSION ("2"),
//      EXIT_ON_STDIN_CLOSE (optional, "1").
// Stdout: exactly one line `READY http://127.0.0.1:<port>`.
import http from "node:http";
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { env, envPort, installShutdown, listenAndAnnounce } from "./lib/lifecycle.mjs";

const PORT = envPort();
const FACILITATOR_URL = env("FACILITATOR_URL");
const NETWORK = env("NETWORK", "eip155:31337");
const ASSET = env("ASSET");
const PAY_TO = env("PAY_TO");
const PRICE_ATOMIC = env("PRICE_ATOMIC", "10000");
const TOKEN_NAME = env("TOKEN_NAME", "USD Coin");
const TOKEN_VERSION = env("TOKEN_VERSION", "2");

const resourceServer = new x402ResourceServer(
  new HTTPFacilitatorClient({ url: FACILITATOR_URL }),
).register(NETWORK, new ExactEvmScheme());

const accepts = {
  scheme: "exact",
  network: NETWORK,
  payTo: PAY_TO,
  price: {
    amount: PRICE_ATOMIC,
    asset: ASSET,
    extra: { name: TOKEN_NAME, version: TOKEN_VERSION },
  },
};

const routes = {
  "GET /paid": { accepts, description: "Purser e2e priced GET" },
  "POST /paid": { accepts, description: "Purser e2e priced POST" },
};

let served = 0;

const app = express();
app.disable("x-powered-by");
app.use(express.json({ limit: "1mb" }));
app.use(paymentMiddleware(routes, resourceServer));

app.get("/paid", (_req, res) => {
  served += 1;
  res.json({ paid: true, served });
});
app.post("/paid", (req, res) => {
  served += 1;
  res.json({ paid: true, served, echo: req.body ?? null });
});
app.get("/free", (_req, res) => res.json({ free: true }));
app.get("/stats", (_req, res) => res.json({ served }));

// eslint-disable-next-line no-unused-vars
app.use((err, _req, res, _next) => {
  console.error("[server] error:", err);
  if (!res.headersSent) res.status(err.status ?? 500).json({ error: String(err.message ?? err) });
});

const server = http.createServer(app);
installShutdown(server, "server");
await listenAndAnnounce(server, PORT);
