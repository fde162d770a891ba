// Drives Purser's MCP server with the official MCP TypeScript SDK
// (@modelcontextprotocol/sdk), over stdio (`purser mcp`) and over streamable HTTP
// (`/mcp` on `purser serve`), through a whole story: list the tools, draft a
// mandate, be refused until the owner signs it, owner approves (REST, as the
// human would on the sign page), pay a paid URL, check the remaining budget,
// pay a 402 by hand (request_x402_payment + report_x402_result), manage payment
// links, ask for a payout; then the owner revokes the agent and both clients
// are refused.
//
// Env: PURSER_BIN, PURSER_SERVER, OWNER_TOKEN, AGENT_ID, AGENT_CREDENTIAL,
// PAY_URL (a paid URL on 127.0.0.1), PRICE (its price, e.g. "0.05").
// Prints one line per check and a final JSON summary; exits non-zero on failure.

import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BIN = env("PURSER_BIN");
const SERVER = env("PURSER_SERVER");
const OWNER_TOKEN = env("OWNER_TOKEN");
const AGENT_ID = env("AGENT_ID");
const CREDENTIAL = env("AGENT_CREDENTIAL");
const PAY_URL = env("PAY_URL");
const PRICE = env("PRICE");
// The payee host a mandate names: host and (non-default) port of the paid URL.
const HOST = new URL(PAY_URL).host;

const EXPECTED_TOOLS = [
  "get_agent_status", "create_intent_mandate", "get_mandate_status", "list_mandates",
  "get_eligible_mandates", "request_x402_payment", "report_x402_result", "fetch_paid_url",
  "request_payout", "get_payout_status", "create_payment_link", "list_payment_links",
  "get_payment_link", "update_payment_link", "disable_payment_link",
  "list_received_payments", "get_recent_transactions",
];

const summary = { transports: {} };
const ok = (what) => console.log(`ok ${what}`);

async function rest(method, path, body) {
  const response = await fetch(SERVER + path, {
    method,
    headers: {
      authorization: `Bearer ${OWNER_TOKEN}`,
      "content-type": "application/json",
      "idempotency-key": `e2e-${Math.random().toString(36).slice(2)}`,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function call(client, name, args = {}) {
  const result = await client.callTool({ name, arguments: args });
  assert.ok(Array.isArray(result.content) && result.content.length > 0, `${name}: text content`);
  assert.equal(result.content[0].type, "text");
  return result;
}

async function succeed(client, name, args) {
  const result = await call(client, name, args);
  assert.notEqual(result.isError, true, `${name} failed: ${result.content[0].text}`);
  assert.ok(result.structuredContent, `${name}: structured content`);
  return result.structuredContent;
}

async function refused(client, name, args, code) {
  const result = await call(client, name, args);
  assert.equal(result.isError, true, `${name} should fail with ${code}`);
  const error = result.structuredContent?.error;
  assert.equal(error?.code, code, `${name}: ${result.content[0].text}`);
  assert.ok(error.instructions.length > 20, "instructions for the agent");
  return { error, text: result.content[0].text };
}

async function story(label, client) {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const name of EXPECTED_TOOLS) assert.ok(names.includes(name), `${label}: tool ${name} listed`);
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, "object", `${tool.name} has an object schema`);
    assert.ok(tool.description.length > 10, `${tool.name} is described`);
  }
  ok(`${label}: ${tools.length} tools listed with schemas`);

  const status = await succeed(client, "get_agent_status");
  assert.equal(status.agent.id, AGENT_ID);
  assert.equal(status.agent.status, "active");
  ok(`${label}: agent status, ${status.balances.available} USDC available`);

  const drafted = await succeed(client, "create_intent_mandate", {
    description: `e2e ${label}: pay for the paid test resource`,
    limitAmount: "1.00",
    maxAmountPerTx: "0.10",
    hostAllowlist: [HOST],
    validForSeconds: 3600,
  });
  assert.equal(drafted.status, "pending_signature");
  assert.match(drafted.signUrl, /\/mandates\/.+\/review$/);
  const mandateId = drafted.mandateId;
  ok(`${label}: drafted ${mandateId}, signUrl ${drafted.signUrl}`);

  // Not signed yet: the payment is not covered; the agent is told to ask its human.
  const early = await refused(
    client, "fetch_paid_url", { url: PAY_URL, maxAmount: PRICE, mandateId }, "mandate_not_signed");
  ok(`${label}: unsigned mandate refused (${early.error.code})`);

  await rest("POST", `/api/mandates/${mandateId}/approve`, {});
  const eligible = await succeed(client, "get_eligible_mandates", { host: HOST, amount: PRICE });
  assert.ok(eligible.items.some((m) => m.mandateId === mandateId), "the signed mandate is eligible");
  ok(`${label}: owner signed; eligible`);

  const paid = await succeed(client, "fetch_paid_url", { url: PAY_URL, maxAmount: PRICE, mandateId });
  assert.equal(paid.status, 200);
  assert.equal(paid.payment.status, "settled");
  assert.equal(paid.payment.reservation.amount, PRICE);
  ok(`${label}: paid ${PAY_URL} (${paid.payment.status})`);

  const after = await succeed(client, "get_mandate_status", { mandateId });
  assert.equal(after.spentAmount, PRICE);
  const remaining = (1_000_000 - Math.round(Number(PRICE) * 1_000_000)) / 1_000_000;
  assert.equal(Number(after.remainingAmount), remaining);
  ok(`${label}: remaining ${after.remainingAmount} of ${after.limitAmount}`);

  // By hand: read the 402, have the wallet sign, retry with the header, report.
  const first = await fetch(PAY_URL);
  assert.equal(first.status, 402);
  const paymentRequired = first.headers.get("payment-required");
  const signed = await succeed(client, "request_x402_payment", {
    paymentRequired, url: PAY_URL, mandateId, maxAmount: PRICE, purpose: "by hand",
  });
  const second = await fetch(PAY_URL, { headers: { [signed.headerName]: signed.headerValue } });
  assert.equal(second.status, 200);
  const reported = await succeed(client, "report_x402_result", {
    reservationId: signed.reservation.id,
    paymentResponse: second.headers.get("payment-response"),
  });
  assert.equal(reported.status, "settled");
  ok(`${label}: request_x402_payment + report_x402_result settled`);

  const over = await refused(
    client, "fetch_paid_url", { url: PAY_URL, maxAmount: "0.000001" }, "amount_above_max");
  ok(`${label}: price above maxAmount refused (${over.error.code})`);

  const link = await succeed(client, "create_payment_link", {
    amount: "0.02", description: `e2e ${label} link`, resourceContent: "secret", maxUses: 3,
  });
  const links = await succeed(client, "list_payment_links");
  assert.ok(links.items.some((l) => l.id === link.id));
  const got = await succeed(client, "get_payment_link", { linkId: link.id });
  assert.equal(got.amount, "0.02");
  const updated = await succeed(client, "update_payment_link", { linkId: link.id, maxUses: 5 });
  assert.equal(updated.maxUses, 5);
  const disabled = await succeed(client, "disable_payment_link", { linkId: link.id });
  assert.equal(disabled.status, "disabled");
  await succeed(client, "list_received_payments", { linkId: link.id });
  ok(`${label}: payment link create/list/get/update/disable`);

  const payoutId = `e2e-${label}-${Date.now()}`;
  const payout = await succeed(client, "request_payout", {
    payoutId, toAddress: "0x000000000000000000000000000000000000dEaD", amount: "0.01",
  });
  assert.equal(payout.status, "pending_authorization");
  assert.ok(payout.approvalUrl, "the payout waits for the human at approvalUrl");
  const payoutStatus = await succeed(client, "get_payout_status", { payoutId });
  assert.equal(payoutStatus.id, payoutId);
  ok(`${label}: payout waits for approval at ${payout.approvalUrl}`);

  const recent = await succeed(client, "get_recent_transactions", { limit: 5 });
  assert.ok(recent.items.length >= 1);
  const listed = await succeed(client, "list_mandates", { status: "signed" });
  assert.ok(listed.items.some((m) => m.mandateId === mandateId));
  ok(`${label}: recent transactions and mandates listed`);

  summary.transports[label] = { mandateId, spent: after.spentAmount, remaining: after.remainingAmount };
}

async function agentJwt() {
  const response = await fetch(`${SERVER}/api/agents/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ agentId: AGENT_ID, credential: CREDENTIAL }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

const stdio = new Client({ name: "purser-e2e-stdio", version: "1.0.0" });
await stdio.connect(new StdioClientTransport({
  command: BIN,
  args: ["mcp"],
  env: { ...process.env, PURSER_SERVER: SERVER, PURSER_TOKEN: CREDENTIAL, PURSER_AGENT_ID: AGENT_ID },
  stderr: "inherit",
}));
await story("stdio", stdio);

// Without a bearer token /mcp answers 401 before any MCP happens.
const anonymous = await fetch(`${SERVER}/mcp`, {
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
});
assert.equal(anonymous.status, 401);
ok("http: no bearer token, 401");

const http = new Client({ name: "purser-e2e-http", version: "1.0.0" });
await http.connect(new StreamableHTTPClientTransport(new URL(`${SERVER}/mcp`), {
  requestInit: { headers: { authorization: `Bearer ${await agentJwt()}` } },
}));
await story("http", http);

// The owner revokes the agent: both clients are refused on their next call.
await rest("POST", `/api/agents/${AGENT_ID}/revoke`, {});
for (const [label, client] of [["stdio", stdio], ["http", http]]) {
  const { text } = await refused(client, "get_agent_status", {}, "agent_revoked");
  assert.match(text, /revoked/);
  ok(`${label}: revoked agent refused`);
}
summary.revoked = true;

await stdio.close();
await http.close();
console.log(JSON.stringify(summary));
console.log("PASS: MCP TypeScript SDK over stdio and HTTP");
